//! `ladon run` with fixed seeds writes byte-identical files: the SHA-256 of
//! `history.jsonl`, `report.json` and `messages.jsonl` of every simulated
//! adapter (reference with every strategy and a few options, toy with and
//! without a bug) and every workload, against the table committed in
//! `tests/snapshots/run_digests.txt`. The table was written on the code
//! before the run-pipeline refactor (issue 10), so a refactor that changes
//! any byte of these files fails here. `report.json` holds no timestamps or
//! paths, so nothing is normalised.
//!
//! After a change that is meant to alter a history (explain it in the
//! commit), rewrite the table with `LADON_BLESS=1 cargo test -p
//! ladon-harness --test run_digests`.

use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

const TABLE: &str = "tests/snapshots/run_digests.txt";

/// Every configuration: a name and the flags after `ladon run`.
fn configurations() -> Vec<(String, Vec<String>)> {
    let workloads = ["register", "list-append", "set", "counter"];
    let strategies = [
        "lww",
        "lww-hlc",
        "version-vector",
        "crdt",
        "avoidance",
        "quorum",
    ];
    let mut out = Vec::new();
    let mut add = |name: String, flags: &[&str]| {
        out.push((name, flags.iter().map(|s| s.to_string()).collect()));
    };
    for w in workloads {
        for s in strategies {
            add(
                format!("reference-{s}-{w}"),
                &["--adapter", "reference", "--strategy", s, "--workload", w],
            );
        }
        add(format!("toy-{w}"), &["--adapter", "toy", "--workload", w]);
        add(
            format!("toy-no-anti-entropy-{w}"),
            &[
                "--adapter",
                "toy",
                "--workload",
                w,
                "--bug",
                "no-anti-entropy",
            ],
        );
    }
    add(
        "reference-followers-ring-any".into(),
        &[
            "--adapter",
            "reference",
            "--strategy",
            "lww",
            "--followers",
            "1",
            "--topology",
            "ring",
            "--read-from",
            "any",
            "--priority",
            "n2,n1,n3",
            "--lww-resolution",
            "1s",
            "--clients",
            "roaming",
        ],
    );
    add(
        "reference-star-bug-swarm".into(),
        &[
            "--adapter",
            "reference",
            "--topology",
            "star",
            "--bug",
            "no-causal-buffer",
            "--swarm",
            "--guarantees",
            "convergence,causal",
        ],
    );
    add(
        "reference-every-fault".into(),
        &[
            "--adapter",
            "reference",
            "--nemesis",
            "partition,clock,crash,pause,loss,dup,clog",
            "--partition-mode",
            "hold",
            "--loss",
            "0.05",
            "--duplicate",
            "0.05",
            "--reorder",
            "0.1",
            "--clock-drift-ppm",
            "200",
            "--txn-size",
            "3",
            "--keys",
            "3",
        ],
    );
    out
}

fn sha256(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Runs one configuration into `store` and returns its table line.
fn digest_line(store: &Path, name: &str, flags: &[String]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ladon"))
        .arg("run")
        .args(flags)
        .args([
            "--time-limit",
            "2s",
            "--nemesis-interval",
            "400ms",
            "--rate",
            "60",
            "--seed",
            "7",
            "--test",
            name,
            "--store",
        ])
        .arg(store)
        .output()
        .unwrap();
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "{name}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = std::fs::read_dir(store.join(name))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    let verdict = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Verdict: "))
        .and_then(|v| v.split(':').next())
        .unwrap_or("?")
        .to_string();
    format!(
        "{name} {verdict} history {} report {} messages {}",
        sha256(&dir.join("history.jsonl")),
        sha256(&dir.join("report.json")),
        sha256(&dir.join("messages.jsonl")),
    )
}

#[test]
fn fixed_seeds_write_the_same_bytes_as_the_committed_table() {
    let store = tempfile::tempdir().unwrap();
    let configs = configurations();
    // Four at a time: each run is a fraction of a second.
    let lines: Vec<String> = std::thread::scope(|s| {
        let chunks: Vec<_> = configs
            .chunks(configs.len().div_ceil(4))
            .map(|chunk| {
                let store = store.path();
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|(name, flags)| digest_line(store, name, flags))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        chunks.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let got = lines.join("\n") + "\n";
    let table = Path::new(env!("CARGO_MANIFEST_DIR")).join(TABLE);
    if std::env::var_os("LADON_BLESS").is_some() {
        std::fs::write(&table, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&table).unwrap();
    let mismatches: Vec<String> = want
        .lines()
        .zip(got.lines())
        .filter(|(w, g)| w != g)
        .map(|(w, g)| format!("want {w}\n got {g}"))
        .collect();
    assert!(
        mismatches.is_empty() && want.lines().count() == got.lines().count(),
        "run outputs changed ({} of {} configurations):\n{}",
        mismatches.len(),
        got.lines().count(),
        mismatches.join("\n")
    );
    // The table is not trivially all-valid: planted bugs show.
    assert!(want.contains(" INVALID "), "{want}");
    assert!(want.contains(" VALID "), "{want}");
}
