//! The simulator's own timed events: what the run schedules on the world
//! besides the nodes' messages and timers.

use ladon_adapters::node::ReqId;

use crate::nemesis::Action;

#[derive(Debug)]
pub(crate) enum Tick {
    /// Client `c` invokes its next operation.
    Client(usize),
    /// A request's timeout.
    Timeout(ReqId),
    /// The drawn nemesis takes its next step.
    Nemesis,
    /// An explicit schedule's fault.
    Fault(Action),
    /// The faulty phase ends: heal, then the final phase.
    EndFaulty,
    /// One round of final reads.
    FinalRound,
}
