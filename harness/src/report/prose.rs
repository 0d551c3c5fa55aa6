//! Plain-English descriptions of each anomaly class and guarantee, for the
//! report's headings. The checker's examples explain each instance; these
//! say what the class means and why it matters.

use ladon_checker::report::{Anomaly, Guarantee};

pub fn anomaly(a: Anomaly) -> &'static str {
    match a {
        Anomaly::InvalidHistory => "The history file breaks the format, so nothing else could be checked.",
        Anomaly::CyclicCausality => "Operations each appear to happen before the other: a read saw a write that, through its own session, came after it.",
        Anomaly::Divergence => "After every fault was healed and writes stopped, nodes still hold different values for a key: replicas never converged.",
        Anomaly::LostWrite => "A write the system acknowledged is missing from a node's final state.",
        Anomaly::ConflictLoss => "Two writes raced; conflict resolution kept one and silently discarded the other, acknowledged, write.",
        Anomaly::CausalOverwrite => "A causally older value won over a newer one that depended on it (typically last-write-wins on skewed clocks).",
        Anomaly::Duplicate => "An element appears more than once in one read, or a counter counted more than was ever added.",
        Anomaly::Phantom => "A read returned a value no operation ever wrote.",
        Anomaly::FailedWriteVisible => "A read saw a value written only by an operation that reported failure.",
        Anomaly::FutureRead => "A read completed before the write it observed was even invoked.",
        Anomaly::StaleSibling => "A register returned sibling values where one causally supersedes the other.",
        Anomaly::CausalOrder => "A list shows an element before one that causally preceded it.",
        Anomaly::ReadYourWrites => "A client did not see its own earlier write.",
        Anomaly::MonotonicReads => "A client saw a write, then a later read of the same key no longer reflected it.",
        Anomaly::CausalVisibility => "A read missed a write in its causal past (a dependency arrived late).",
        Anomaly::Nonlinearizable => "A key's operations cannot be put in any one order that respects real time: a read returned a value already overwritten, or two updates both replaced the same value.",
    }
}

pub fn guarantee(g: Guarantee) -> &'static str {
    match g {
        Guarantee::Convergence => "replicas agree once faults heal (forbids divergence)",
        Guarantee::NoLostWrites => "acknowledged writes survive (forbids lost-write)",
        Guarantee::NoConflictLoss => "concurrent writes are both kept or merged (forbids conflict-loss)",
        Guarantee::Causal => "causal consistency (forbids causal-overwrite, causal-order, read-your-writes, monotonic-reads, causal-visibility)",
        Guarantee::Linearizable => "every register key behaves as one atomic register in real time (forbids nonlinearizable)",
    }
}
