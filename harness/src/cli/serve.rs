//! `ladon serve [DIR] [--port P]`: a small web server on 127.0.0.1 listing
//! the runs under `DIR` (default `results`) with their verdicts, and serving
//! each run's files (`report.html`, `summary.txt`, `report.json`, ...).
//!
//! Built on hyper (HTTP/1.1) over tokio: every connection is served by a
//! task of its own, so idle or slow clients never delay another's request.
//! Each connection carries one request (`Connection: close`); its head must
//! arrive within 5 s and whole exchange end within 30 s. GET and HEAD only,
//! and only regular files inside `DIR` are served.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::{TokioIo, TokioTimer};

use crate::report::escape::esc;

/// How long a client may take to send a request's head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one connection (one request and its response) may last.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(serve(listener, root, None))?;
    Ok(0)
}

/// Answers connections, each on its own task, until `max` have been
/// accepted (forever with `None`); then waits for those still open.
pub async fn serve(
    listener: TcpListener,
    root: PathBuf,
    max: Option<usize>,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let root = Arc::new(root);
    let mut open = tokio::task::JoinSet::new();
    let mut accepted = 0usize;
    while max.is_none_or(|m| accepted < m) {
        let (stream, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("serve: {e}");
                continue;
            }
        };
        accepted += 1;
        let root = root.clone();
        open.spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let root = root.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(root, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .keep_alive(false)
                .max_buf_size(8 * 1024)
                .serve_connection(TokioIo::new(stream), svc);
            if let Ok(Err(e)) = tokio::time::timeout(REQUEST_TIMEOUT, conn).await {
                if !e.is_timeout() && !e.is_incomplete_message() {
                    eprintln!("serve: {e}");
                }
            }
        });
        // Forget finished connections as we go.
        while open.try_join_next().is_some() {}
    }
    while open.join_next().await.is_some() {}
    Ok(())
}

/// One request's response: [`respond`] on a blocking thread (it reads the
/// file system), then the file's bytes.
async fn answer(
    root: Arc<PathBuf>,
    req: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let method = req.method().as_str().to_string();
    let target = req
        .uri()
        .path_and_query()
        .map_or("/".to_string(), |p| p.as_str().to_string());
    let head = method == "HEAD";
    let resp = tokio::task::spawn_blocking(move || {
        let r = respond(&root, &method, &target);
        let bytes = match r.body {
            Body::Bytes(b) => Ok(b),
            Body::File(ref p) => std::fs::read(p),
        };
        (r.status, r.content_type, bytes)
    })
    .await;
    let (status, content_type, body) = match resp {
        Ok((s, ct, Ok(b))) => (s, ct, b),
        _ => (
            500,
            "text/plain; charset=utf-8",
            b"cannot read the file\n".to_vec(),
        ),
    };
    let len = body.len();
    let body = if head {
        Bytes::new()
    } else {
        Bytes::from(body)
    };
    hyper::Response::builder()
        .status(status)
        .header("Content-Type", content_type)
        .header("Content-Length", len)
        .header("X-Content-Type-Options", "nosniff")
        .body(Full::new(body))
        .expect("a valid response")
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
    use std::io::{Read, Write};
    use std::net::TcpStream;

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

    /// Starts the server on a free loopback port in a thread of its own.
    fn start(
        max: usize,
    ) -> (
        std::net::SocketAddr,
        std::thread::JoinHandle<()>,
        tempfile::TempDir,
    ) {
        let dir = results();
        let root = dir.path().canonicalize().unwrap();
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(serve(listener, root, Some(max))).unwrap();
        });
        (addr, server, dir)
    }

    fn get(addr: std::net::SocketAddr, path: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        resp
    }

    #[test]
    fn answers_over_loopback() {
        let (addr, server, _dir) = start(1);
        let resp = get(addr, "/runs/lww/20260101T000000Z-seed7/report.html");
        server.join().unwrap();
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
        let lower = resp.to_ascii_lowercase();
        assert!(lower.contains("content-length: 13\r\n"), "{resp}");
        assert!(
            lower.contains("x-content-type-options: nosniff\r\n"),
            "{resp}"
        );
        assert!(resp.ends_with("\r\n\r\n<p>report</p>"));
    }

    #[test]
    fn idle_and_trickling_clients_do_not_delay_a_real_request() {
        let (addr, server, _dir) = start(5);
        // Three connections that send nothing, one that trickles a request.
        let idle: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let mut trickle = TcpStream::connect(addr).unwrap();
        trickle.write_all(b"GET / HT").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        // The real request is answered while the others are still open
        // (their 5 s head timeout has not passed: the server did not wait
        // for them to end first).
        let resp = get(addr, "/");
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
        assert!(resp.contains("20260101T000000Z-seed7"), "{resp}");
        trickle.write_all(b"TP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut slow = String::new();
        trickle.read_to_string(&mut slow).unwrap();
        assert!(slow.starts_with("HTTP/1.1 200 OK\r\n"), "{slow}");
        drop(idle);
        server.join().unwrap();
    }
}
