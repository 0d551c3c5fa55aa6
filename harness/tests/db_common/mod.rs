//! Helpers shared by the live database runs' tests (`postgres_run`'s own
//! are older and write no stdout file): the `ladon run` command for an
//! adapter, the run directory, the registry's entries, the output and the
//! report.
#![allow(dead_code)] // each test binary uses its own subset

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Whether a system's lookup (`find_bin`, `find_server`, ...) found it;
/// without it a test says so and passes, except under CI (`CI` set), where
/// that is a failure.
pub fn found<T, E: std::fmt::Display>(lookup: Result<T, E>) -> bool {
    match lookup {
        Ok(_) => true,
        Err(e) if std::env::var_os("CI").is_some() => panic!("{e}"),
        Err(e) => {
            eprintln!("skipped: {e}");
            false
        }
    }
}

/// Whether PostgreSQL with pglogical is here ([`found`]).
pub fn postgres_available() -> bool {
    found(ladon_adapters::db::postgres::find_bin())
}

/// `ladon run --adapter ADAPTER ARGS --store STORE`, with the registry at
/// `registry` and stdout/stderr in `STORE/stdout.txt`, `STORE/stderr.txt`.
pub fn ladon(adapter: &str, args: &[&str], store: &Path, registry: &Path) -> Command {
    std::fs::create_dir_all(store).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ladon"));
    cmd.arg("run")
        .args(["--adapter", adapter])
        .args(args)
        .arg("--store")
        .arg(store)
        .env("LADON_DB_REGISTRY", registry)
        .stdin(Stdio::null())
        .stdout(File::create(store.join("stdout.txt")).unwrap())
        .stderr(File::create(store.join("stderr.txt")).unwrap());
    cmd
}

pub fn run_dir(store: &Path, test: &str) -> Option<PathBuf> {
    std::fs::read_dir(store.join(test))
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.is_dir())
}

/// The registry's server entries: (process group, data directory).
pub fn registry_entries(registry: &Path) -> Vec<(i32, PathBuf)> {
    let Ok(rd) = std::fs::read_dir(registry) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let pgid = e.file_name().to_str()?.parse().ok()?;
            let text = std::fs::read_to_string(e.path()).ok()?;
            Some((pgid, PathBuf::from(text.lines().nth(1)?)))
        })
        .collect()
}

pub fn registry_files(registry: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(registry)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

pub fn output_of(store: &Path) -> String {
    let read = |f: &str| std::fs::read_to_string(store.join(f)).unwrap_or_default();
    format!("{}{}", read("stdout.txt"), read("stderr.txt"))
}

pub fn report_of(dir: &Path) -> serde_json::Value {
    serde_json::from_reader(File::open(dir.join("report.json")).unwrap()).unwrap()
}
