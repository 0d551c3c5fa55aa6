//! `ladon adapters`: the adapters `ladon run --adapter` accepts, and for the
//! reference store every strategy with the guarantees it declares, the
//! topologies, and the known-bug variants with the anomaly each must produce.

use std::fmt::Write;

use clap::Args;
use ladon_adapters::reference::{Bug, Config, Strategy, Topology};
use ladon_checker::report::Guarantee;

#[derive(Debug, Args)]
pub struct AdaptersArgs {}

/// The listing, as printed.
pub fn render() -> String {
    let mut s = String::new();
    let _ = writeln!(s, "adapters (ladon run --adapter NAME):");
    let adapters = crate::adapters::registry();
    // One column width for every name, so the modes and lines stay aligned.
    let width = adapters.iter().map(|a| a.name.len()).max().unwrap_or(0);
    for a in &adapters {
        let _ = writeln!(
            s,
            "  {:<width$} {:<10} {}",
            a.name,
            a.mode.as_str(),
            a.about
        );
    }
    let _ = writeln!(s);
    s.push_str(&render_reference());
    let _ = writeln!(s);
    s.push_str(&render_process());
    let _ = writeln!(s);
    s.push_str(&render_real_systems());
    s
}

/// The real databases: what each declares, what Ladon checks by default,
/// and how to install it.
pub fn render_real_systems() -> String {
    use ladon_adapters::db::{mariadb, postgres};
    let checked = crate::adapters::database_default_guarantees()
        .iter()
        .map(|g| g.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let systems: [(&str, &str, &str, &str); 3] = [
        (
            "postgres-pglogical",
            "ladon-harness/postgres",
            "convergence: conflicts resolved by last update wins on commit timestamps",
            postgres::INSTALL,
        ),
        (
            "mariadb",
            "ladon-harness/mariadb",
            "nothing on conflicts: row events applied as they come (STRICT stops on a \
             duplicate key, IDEMPOTENT overwrites the row)",
            mariadb::INSTALL,
        ),
        (
            "couchdb",
            "ladon-harness/couchdb",
            "convergence with every conflict kept: a deterministic winner by revision \
             (not by time), the losers kept as conflicting revisions",
            ladon_adapters::db::COUCHDB_INSTALL,
        ),
    ];
    let mut s = String::new();
    let _ = writeln!(
        s,
        "real systems (live, servers on this machine; docs/real-systems.md):"
    );
    for (name, feature, declares, install) in systems {
        let _ = writeln!(s, "  {name}");
        let _ = writeln!(s, "    declares:           {declares}");
        let _ = writeln!(
            s,
            "    checked by default: {checked} (--guarantees LIST to change)"
        );
        let _ = writeln!(s, "    install:            {install}");
        let _ = writeln!(s, "    build:              --features {feature}");
    }
    s
}

/// The `process` adapter: its flags, Maelstrom workloads and guarantees.
pub fn render_process() -> String {
    use ladon_adapters::process::Workload;
    use ladon_checker::history::KeyKind;

    let mut s = String::new();
    let _ = writeln!(
        s,
        "process    live: any program speaking Maelstrom's protocol, one process per node"
    );
    let _ = writeln!(
        s,
        "  ladon run --adapter process --bin PATH [--bin-arg ARG]... --workload NAME"
    );
    let _ = writeln!(
        s,
        "  live runs use wall-clock time: re-run the reproduce command, `ladon replay` refuses them"
    );
    let _ = writeln!(
        s,
        "  guarantees: what the node promises cannot be asked of a binary, so --guarantees LIST"
    );
    let _ = writeln!(
        s,
        "              chooses them (default {}; `none` checks nothing forbidden)",
        Guarantee::default_for_check()
            .iter()
            .map(|g| g.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "  --workload         checked as    RPCs");
    for w in Workload::ALL {
        let kind = match w.kind() {
            KeyKind::Register => "register",
            KeyKind::List => "list-append",
            KeyKind::Set => "set",
            KeyKind::Counter => "counter",
        };
        let _ = writeln!(s, "    {:<16} {:<13} {}", w.as_str(), kind, rpcs(w));
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "  flags:");
    for arg in crate::cli::run::process_arguments() {
        let Some(long) = arg.get_long() else {
            continue;
        };
        let value = arg
            .get_value_names()
            .and_then(|v| v.first())
            .map(|v| v.to_string())
            .unwrap_or_else(|| long.to_uppercase().replace('-', "_"));
        let process_default = crate::cli::run::PROCESS_DEFAULTS
            .iter()
            .find(|(id, _)| *id == arg.get_id().as_str());
        let default: Vec<String> = match process_default {
            Some((_, v)) => vec![v.to_string()],
            // Required with --adapter process: no default.
            None if arg.get_id() == "workload" => Vec::new(),
            None => arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect(),
        };
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        let _ = write!(s, "    --{long} {value}");
        if !default.is_empty() {
            let _ = write!(s, " (default {})", default.join(","));
        }
        let _ = writeln!(s);
        if !help.is_empty() {
            let _ = writeln!(s, "        {help}");
        }
    }
    s
}

/// The requests a node answers under workload `w`.
fn rpcs(w: ladon_adapters::process::Workload) -> &'static str {
    use ladon_adapters::process::Workload;
    match w {
        Workload::Broadcast => "topology, broadcast, read",
        Workload::GSet => "add, read",
        Workload::GCounter => "add, read",
        Workload::PnCounter => "add (negative too), read",
        Workload::TxnListAppend => "txn (r, append)",
        Workload::TxnRwRegister => "txn (r, w)",
        Workload::LinKv => "read, write (one per micro-op)",
    }
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
    let _ = writeln!(
        s,
        "           declares {}",
        crate::options::guarantee_list(&default.guarantees())
    );
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
            .iter()
            .map(|g| g.as_str())
            .collect::<Vec<_>>()
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
    fn process_listing() {
        insta::assert_snapshot!(super::render_process());
    }

    #[test]
    fn process_listing_names_every_flag_and_workload() {
        let out = super::render();
        for arg in crate::cli::run::process_arguments() {
            if let Some(long) = arg.get_long() {
                assert!(out.contains(&format!("    --{long} ")), "--{long} missing");
            }
        }
        for w in ladon_adapters::process::Workload::ALL {
            assert!(out.contains(&format!("    {:<16} ", w.as_str())), "{w}");
        }
        assert!(out.contains("    txn-list-append  list-append "), "{out}");
        assert!(out.contains("    broadcast        set "), "{out}");
    }

    #[test]
    fn lists_every_registered_adapter() {
        let out = super::render();
        for a in crate::adapters::registry() {
            assert!(
                out.lines()
                    .any(|l| l.trim_start().starts_with(&format!("{} ", a.name))),
                "{} missing:\n{out}",
                a.name
            );
        }
    }

    #[test]
    fn the_listing_keeps_its_columns_aligned_for_long_names() {
        let out = super::render();
        let rows: Vec<&str> = out.lines().skip(1).take_while(|l| !l.is_empty()).collect();
        assert_eq!(rows.len(), crate::adapters::registry().len(), "{out}");
        // The mode column ("simulation" or "live") starts at the same place
        // on every row, whatever the longest name (postgres-pglogical).
        let starts: Vec<usize> = rows
            .iter()
            .map(|l| {
                l.find(" simulation ")
                    .or_else(|| l.find(" live "))
                    .unwrap_or_else(|| panic!("no mode in {l:?}"))
            })
            .collect();
        assert!(starts.iter().all(|&c| c == starts[0]), "{out}");
        assert!(out.contains("  postgres-pglogical live "), "{out}");
        assert!(out.contains("  mariadb            live "), "{out}");
        assert!(out.contains("  couchdb            live "), "{out}");
    }

    #[test]
    fn real_systems_say_what_they_declare_what_is_checked_and_how_to_install() {
        let out = super::render_real_systems();
        for (name, install) in [
            (
                "postgres-pglogical",
                "apt-get install postgresql-15 postgresql-15-pglogical",
            ),
            ("mariadb", "apt-get install mariadb-server mariadb-client"),
            ("couchdb", ladon_adapters::db::COUCHDB_INSTALL),
        ] {
            let block: Vec<&str> = out
                .lines()
                .skip_while(|l| *l != format!("  {name}"))
                .skip(1)
                .take(4)
                .collect();
            assert!(block[0].starts_with("    declares:           "), "{out}");
            assert_eq!(
                block[1],
                "    checked by default: convergence (--guarantees LIST to change)"
            );
            assert_eq!(block[2], format!("    install:            {install}"));
        }
    }
}
