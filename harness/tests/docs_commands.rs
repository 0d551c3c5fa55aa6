//! Every command block of the docs marked runnable runs, and exits as the
//! docs say.
//!
//! The marker (described in README.md, "Runnable examples in the docs"): a
//! line `<!-- runnable -->` right before a fenced code block.
//! Each line of the block is one shell command, run by bash in a scratch
//! directory (with `examples/` and `suites/` of the repository linked in)
//! with `ladon` on the PATH; a leading `cargo run --release --` stands for
//! `ladon`. A command must exit 0 unless its line says `# exit N`. Blocks of
//! one file run in order in the same directory, so a later command can read
//! what an earlier one wrote (`results/latest`).
//!
//! Also: the docs link only to files inside the repository.

use std::path::{Path, PathBuf};
use std::process::Command;

const MARKER: &str = "<!-- runnable -->";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn doc_files() -> Vec<PathBuf> {
    let mut files = vec![repo().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// (line number, command, expected exit code) of every runnable block.
fn runnable_commands(text: &str) -> Vec<(usize, String, i32)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == MARKER {
            assert!(
                lines.get(i + 1).is_some_and(|l| l.starts_with("```")),
                "line {}: {MARKER} must come right before a ``` fence",
                i + 1
            );
            i += 2;
            while i < lines.len() && !lines[i].starts_with("```") {
                let line = lines[i].trim();
                if !line.is_empty() && !line.starts_with('#') {
                    let code = line
                        .split("# exit ")
                        .nth(1)
                        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0);
                    let cmd = match line.strip_prefix("cargo run --release -- ") {
                        Some(rest) => format!("ladon {rest}"),
                        None => line.to_string(),
                    };
                    out.push((i + 1, cmd, code));
                }
                i += 1;
            }
        }
        i += 1;
    }
    out
}

#[test]
fn the_marker_parser_reads_commands_and_exit_codes() {
    let text = "x\n<!-- runnable -->\n```sh\n# a comment\ncargo run --release -- check h  # exit 1: invalid\nladon run --seed 1\n```\n```sh\nladon not-runnable\n```\n";
    assert_eq!(
        runnable_commands(text),
        vec![
            (5, "ladon check h  # exit 1: invalid".to_string(), 1),
            (6, "ladon run --seed 1".to_string(), 0)
        ]
    );
}

#[test]
fn every_runnable_command_in_the_docs_exits_as_documented() {
    let bin_dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_ladon"), bin_dir.path().join("ladon")).unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut ran = 0;
    let mut failures = Vec::new();
    for file in doc_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let commands = runnable_commands(&text);
        if commands.is_empty() {
            continue;
        }
        let scratch = tempfile::tempdir().unwrap();
        for d in ["examples", "suites"] {
            std::os::unix::fs::symlink(repo().join(d), scratch.path().join(d)).unwrap();
        }
        for (line, cmd, want) in commands {
            let out = Command::new("bash")
                .args(["-c", &cmd])
                .current_dir(scratch.path())
                .env("PATH", &path)
                .output()
                .unwrap();
            ran += 1;
            if out.status.code() != Some(want) {
                failures.push(format!(
                    "{}:{line}: `{cmd}` exited {:?}, the docs say {want}\n{}{}",
                    file.strip_prefix(repo()).unwrap_or(&file).display(),
                    out.status.code(),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(ran >= 10, "only {ran} runnable commands in the docs");
}

#[test]
fn docs_link_only_to_files_in_the_repository() {
    let mut bad = Vec::new();
    for file in doc_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let dir = file.parent().unwrap();
        for (n, line) in text.lines().enumerate() {
            for part in line.split("](").skip(1) {
                let target = part.split(')').next().unwrap_or("");
                let target = target.split('#').next().unwrap_or("");
                if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                if !dir.join(target).exists() {
                    bad.push(format!("{}:{}: {target}", file.display(), n + 1));
                }
            }
            if line.contains("shared/spec/") {
                bad.push(format!(
                    "{}:{}: names shared/spec/, which is not in the repository",
                    file.display(),
                    n + 1
                ));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
