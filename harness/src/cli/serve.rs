//! `ladon serve [DIR] [--port P]`: a small web server on 127.0.0.1 listing
//! the runs under `DIR` (default `results`) with their verdicts, and serving
//! each run's files (`report.html`, `summary.txt`, `report.json`, ...).
//!
//! Deliberately small: std's `TcpListener`, one connection at a time, GET and
//! HEAD only, request heads capped at 8 KiB with a 5 s read timeout, and only
//! regular files inside `DIR` are served.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::report::escape::esc;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The results directory.
    #[arg(default_value = "results")]
    pub dir: PathBuf,
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
}

pub fn main(args: Args) -> anyhow::Result<u8> {
    let root = args
        .dir
        .canonicalize()
        .with_context(|| format!("failed to open results directory {}", args.dir.display()))?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, args.port))
        .with_context(|| format!("failed to listen on 127.0.0.1:{} (--port)", args.port))?;
    println!(
        "serving {} at http://{}/ (Ctrl-C to stop)",
        root.display(),
        listener.local_addr()?
    );
    serve(&listener, &root, None);
    Ok(0)
}

/// Answers connections until `max` have been handled (forever with `None`).
pub fn serve(listener: &TcpListener, root: &Path, max: Option<usize>) {
    for (n, stream) in listener.incoming().enumerate() {
        if let Ok(s) = stream {
            if let Err(e) = handle(s, root) {
                eprintln!("serve: {e}");
            }
        }
        if max.is_some_and(|m| n + 1 >= m) {
            break;
        }
    }
}

/// What to send back.
#[derive(Debug)]
pub enum Body {
    Bytes(Vec<u8>),
    File(PathBuf),
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Body,
}

fn text(status: u16, msg: &str) -> Response {
    Response {
        status,
        content_type: "text/plain; charset=utf-8",
        body: Body::Bytes(msg.as_bytes().to_vec()),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    }
}

fn handle(mut stream: TcpStream, root: &Path) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut head = Vec::new();
    let mut reader = BufReader::new((&stream).take(8 * 1024));
    loop {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let end = line == b"\r\n" || line == b"\n";
        head.extend_from_slice(&line);
        if end {
            break;
        }
    }
    let head = String::from_utf8_lossy(&head);
    let complete = head.ends_with("\r\n\r\n") || head.ends_with("\n\n");
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let resp = if !complete {
        text(431, "request head too large or incomplete\n")
    } else {
        respond(root, method, target)
    };
    let len = match &resp.body {
        Body::Bytes(b) => b.len() as u64,
        Body::File(p) => std::fs::metadata(p)?.len(),
    };
    write!(
        stream,
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {len}\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
        resp.status,
        reason(resp.status),
        resp.content_type
    )?;
    if method != "HEAD" {
        match resp.body {
            Body::Bytes(b) => stream.write_all(&b)?,
            Body::File(p) => {
                std::io::copy(&mut std::fs::File::open(p)?, &mut stream)?;
            }
        }
    }
    stream.flush()
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|c| {
            if c.is_ascii_alphanumeric() || b"-_.~/".contains(&c) {
                (c as char).to_string()
            } else {
                format!("%{c:02X}")
            }
        })
        .collect()
}

fn content_type(p: &Path) -> &'static str {
    match p.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("xml") => "application/xml",
        // history.jsonl, summary.txt, node logs: shown as text.
        _ => "text/plain; charset=utf-8",
    }
}

/// The response to `METHOD TARGET`, without touching the network.
pub fn respond(root: &Path, method: &str, target: &str) -> Response {
    if method != "GET" && method != "HEAD" {
        return text(405, "only GET and HEAD\n");
    }
    let path = target.split(['?', '#']).next().unwrap_or("");
    if path == "/" {
        return Response {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body: Body::Bytes(index(root).into_bytes()),
        };
    }
    let Some(rel) = path.strip_prefix("/runs/").and_then(percent_decode) else {
        return text(404, "not found\n");
    };
    let rel = Path::new(&rel);
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return text(400, "bad path\n");
    }
    let Ok(full) = root.join(rel).canonicalize() else {
        return text(404, "not found\n");
    };
    if !full.starts_with(root) || !full.is_file() {
        return text(404, "not found\n");
    }
    Response {
        status: 200,
        content_type: content_type(&full),
        body: Body::File(full),
    }
}

/// A run found under the results directory.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEntry {
    /// Path relative to the root, `/`-separated.
    pub rel: String,
    pub test: String,
    pub seed: String,
    pub verdict: String,
    pub anomalies: Vec<String>,
    pub has_html: bool,
}

/// Most runs the index lists.
pub const MAX_RUNS: usize = 2000;

/// Directories under `root` (not following symlinks, at most 6 levels) with
/// a `report.json` or `run.json`, newest path first.
pub fn find_runs(root: &Path) -> Vec<RunEntry> {
    fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
        if out.len() >= 4 * MAX_RUNS {
            return;
        }
        if dir.join("report.json").is_file() || dir.join("run.json").is_file() {
            out.push(dir.to_path_buf());
        }
        if depth == 0 {
            return;
        }
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&p, depth - 1, out);
            }
        }
    }
    let mut dirs = Vec::new();
    walk(root, 6, &mut dirs);
    dirs.sort_by(|a, b| b.cmp(a));
    dirs.truncate(MAX_RUNS);
    let json = |p: PathBuf| -> serde_json::Value {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(serde_json::Value::Null)
    };
    let s = |v: &serde_json::Value| match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    dirs.into_iter()
        .map(|d| {
            let report = json(d.join("report.json"));
            let run = json(d.join("run.json"));
            let rel = d
                .strip_prefix(root)
                .unwrap_or(&d)
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            RunEntry {
                test: s(&run["test"]),
                seed: s(&run["seed"]),
                verdict: s(&report["verdict"]),
                anomalies: report["anomalies"]
                    .as_object()
                    .map(|o| o.keys().cloned().collect())
                    .unwrap_or_default(),
                has_html: d.join("report.html").is_file(),
                rel,
            }
        })
        .collect()
}

/// The index page: one row per run.
pub fn index(root: &Path) -> String {
    let runs = find_runs(root);
    let mut h = String::from(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Ladon results</title><style>\
body{font:14px system-ui,sans-serif;margin:20px}table{border-collapse:collapse}td,th{padding:3px 10px;text-align:left;border-bottom:1px solid #eee}\
.valid{color:#2e7d32;font-weight:600}.invalid{color:#c62828;font-weight:600}.unknown{color:#757575;font-weight:600}</style></head><body>",
    );
    let _ = write!(
        h,
        "<h1>Ladon results</h1><p>{} run(s) under <code>{}</code>{}</p><table><tr><th>run</th><th>test</th><th>seed</th><th>verdict</th><th>anomalies</th><th>files</th></tr>",
        runs.len(),
        esc(&root.display().to_string()),
        if runs.len() >= MAX_RUNS { " (newest shown)" } else { "" }
    );
    for r in &runs {
        let base = format!("/runs/{}", percent_encode(&r.rel));
        let main = if r.has_html {
            format!("{base}/report.html")
        } else {
            format!("{base}/summary.txt")
        };
        let verdict = if r.verdict.is_empty() {
            "-"
        } else {
            &r.verdict
        };
        let _ = write!(
            h,
            "<tr><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td><a href=\"{}/report.json\">report.json</a> <a href=\"{}/history.jsonl\">history</a></td></tr>",
            esc(&main),
            esc(&r.rel),
            esc(&r.test),
            esc(&r.seed),
            esc(verdict),
            esc(verdict),
            esc(&r.anomalies.join(", ")),
            esc(&base),
            esc(&base)
        );
    }
    h.push_str("</table></body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("lww/20260101T000000Z-seed7");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(
            run.join("report.json"),
            r#"{"verdict":"invalid","anomalies":{"lost-write":{},"<b>x</b>":{}}}"#,
        )
        .unwrap();
        std::fs::write(run.join("run.json"), r#"{"test":"lww","seed":7}"#).unwrap();
        std::fs::write(run.join("report.html"), "<p>report</p>").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "no").unwrap();
        dir
    }

    #[test]
    fn index_lists_runs_with_verdicts_and_links() {
        let dir = results();
        let root = dir.path().canonicalize().unwrap();
        let runs = find_runs(&root);
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].rel, "lww/20260101T000000Z-seed7");
        assert_eq!(runs[0].verdict, "invalid");
        let page = index(&root);
        assert!(page.contains("<a href=\"/runs/lww/20260101T000000Z-seed7/report.html\">"));
        assert!(page.contains("<td class=\"invalid\">invalid</td>"));
        assert!(page.contains("&lt;b&gt;x&lt;/b&gt;, lost-write"));
    }

    #[test]
    fn serves_only_files_inside_the_root() {
        let dir = results();
        let root = dir.path().canonicalize().unwrap();
        let r = respond(&root, "GET", "/runs/lww/20260101T000000Z-seed7/report.html");
        assert_eq!(
            (r.status, r.content_type),
            (200, "text/html; charset=utf-8")
        );
        assert_eq!(respond(&root, "GET", "/runs/../secret.txt").status, 400);
        assert_eq!(respond(&root, "GET", "/runs/%2e%2e/secret.txt").status, 400);
        assert_eq!(respond(&root, "GET", "/runs/lww").status, 404);
        assert_eq!(respond(&root, "POST", "/").status, 405);
        assert_eq!(respond(&root, "GET", "/etc/passwd").status, 404);
    }

    #[test]
    fn answers_over_loopback() {
        let dir = results();
        let root = dir.path().canonicalize().unwrap();
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || serve(&listener, &root, Some(1)));
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(
            b"GET /runs/lww/20260101T000000Z-seed7/report.html HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        server.join().unwrap();
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
        assert!(resp.contains("Content-Length: 13\r\n"));
        assert!(resp.ends_with("\r\n\r\n<p>report</p>"));
    }
}
