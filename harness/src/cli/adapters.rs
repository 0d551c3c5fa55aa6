//! `ladon adapters`: the adapters `ladon run --adapter` accepts, and for the
//! reference store every strategy with the guarantees it declares, the
//! topologies, and the known-bug variants with the anomaly each must produce.

use std::fmt::Write;

use clap::Args;
use ladon_adapters::reference::{Bug, Config, Strategy, Topology};

#[derive(Debug, Args)]
pub struct AdaptersArgs {}

/// The listing, as printed.
pub fn render() -> String {
    let mut s = String::new();
    let _ = writeln!(s, "adapters (ladon run --adapter NAME):");
    for a in crate::adapters::registry() {
        let _ = writeln!(s, "  {:<10} {:<10} {}", a.name, a.mode.as_str(), a.about);
    }
    let _ = writeln!(s);
    s.push_str(&render_reference());
    s
}

/// The reference store's strategies, topologies and bug variants.
pub fn render_reference() -> String {
    let mut s = String::new();
    let default = Config::default();
    let _ = writeln!(
        s,
        "reference  the reference multi-leader store (default adapter)"
    );
    let _ = writeln!(s, "  default: {}", default.describe());
    let _ = writeln!(s, "           declares {}", default.guarantees().join(","));
    let _ = writeln!(
        s,
        "  flags: --nodes N --followers F --topology T --strategy S --priority n1,n2,.."
    );
    let _ = writeln!(
        s,
        "         --read-from leader|follower|any --causal-delivery [true|false] --bug NAME"
    );
    let _ = writeln!(s, "         --lww-resolution D (default 1ms)");
    let _ = writeln!(
        s,
        "  --causal-delivery defaults to on for crdt and version-vector, off otherwise"
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "  --strategy      declared guarantees (without / with --causal-delivery)"
    );
    for st in Strategy::ALL {
        let g = |causal| {
            Config {
                strategy: *st,
                causal_delivery: causal,
                ..Config::default()
            }
            .guarantees()
            .join(",")
        };
        let _ = writeln!(s, "    {:<14} {}", st.as_str(), st.summary());
        let _ = writeln!(s, "    {:<14}   {} / {}", "", g(false), g(true));
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "  --topology");
    for t in Topology::ALL {
        let _ = writeln!(s, "    {:<14} {}", t.as_str(), t.summary());
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "  --bug           must produce   when");
    for b in Bug::ALL {
        let (anomaly, when) = b.expected();
        let _ = writeln!(s, "    {:<22} {:<18} {}", b.as_str(), anomaly, when);
        let _ = writeln!(s, "    {:<22} {}", "", b.explain());
    }
    s
}

pub fn run(_args: AdaptersArgs) -> anyhow::Result<std::process::ExitCode> {
    print!("{}", render());
    Ok(std::process::ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reference_listing() {
        insta::assert_snapshot!(super::render_reference());
    }

    #[test]
    fn lists_every_registered_adapter() {
        let out = super::render();
        for a in crate::adapters::registry() {
            assert!(
                out.contains(&format!("  {:<10} ", a.name)),
                "{} missing:\n{out}",
                a.name
            );
        }
    }
}
