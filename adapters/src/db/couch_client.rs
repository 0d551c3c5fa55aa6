//! Ladon's workloads over the CouchDB HTTP API (pouchdb-server), one
//! HTTP/1.1 connection per logical client (hyper).
//!
//! | micro-op | request |
//! |---|---|
//! | `["w", k, v]` | `GET /ladon/r:k?conflicts=true`, then `POST /ladon/_bulk_docs`: `{"v": v}` on the winning revision, and every conflicting revision deleted |
//! | `["d", k, null]` | the same, with the winner deleted too |
//! | `["add", k, e]` | `PUT /ladon/s:k:e` (a document per element) |
//! | `["append", k, e]` | `GET /ladon/l:k?conflicts=true`, then `_bulk_docs`: the winner's list with `e` appended, conflicting revisions deleted |
//! | `["r", k, _]` | register: `GET …?conflicts=true`, and each conflicting revision's value (siblings, sorted); set: `GET /ladon/_all_docs` over `s:k:`; list: the winner's list |
//!
//! A write resolves the siblings it saw, as an application resolving
//! CouchDB conflicts on update would: the conflicting revisions it read are
//! deleted in the same `_bulk_docs` request. What it did not see stays.
//!
//! **Outcomes.** `409 conflict` on the document written (another update
//! of the same revision got there first) is a definite `fail`, as is any
//! other 4xx. A 5xx, a lost connection or no answer within the timeout is
//! an indeterminate `info`. CouchDB has no transactions: a transaction is
//! one micro-operation (`--txn-size 1`; the run refuses more).

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use ladon_checker::history::{Key, KeyKind, Mop, ReadValue};
use serde_json::{json, Value};

use super::TxnOutcome;

/// The database every node holds.
pub const DB: &str = "ladon";

/// One HTTP/1.1 connection.
struct Conn {
    addr: SocketAddr,
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why a request did not get an answer.
#[derive(Debug)]
enum HttpError {
    /// Nothing was sent (the connection could not be made).
    NotSent(String),
    /// Sent, or perhaps sent: no answer.
    NoAnswer(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            HttpError::NotSent(e) | HttpError::NoAnswer(e) => f.write_str(e),
        }
    }
}

impl Conn {
    async fn open(addr: SocketAddr, timeout: Duration) -> Result<Conn, HttpError> {
        let stream = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| HttpError::NotSent(format!("connect to {addr}: timed out")))?
            .map_err(|e| HttpError::NotSent(format!("connect to {addr}: {e}")))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| HttpError::NotSent(format!("{addr}: {e}")))?;
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { addr, sender, task })
    }

    async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), HttpError> {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string())
            // Without it, a PUT answers ok and stores an empty document.
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| HttpError::NotSent(format!("{method} {path}: {e}")))?;
        if self.sender.ready().await.is_err() {
            return Err(HttpError::NotSent(format!(
                "{}: connection closed",
                self.addr
            )));
        }
        let resp = self
            .sender
            .send_request(req)
            .await
            .map_err(|e| HttpError::NoAnswer(format!("{method} {path}: {e}")))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| HttpError::NoAnswer(format!("{method} {path}: {e}")))?
            .to_bytes();
        let value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
        };
        Ok((status, value))
    }
}

/// One request on a fresh connection, all within `timeout`: the setup's
/// and the replicator's calls.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
    timeout: Duration,
) -> Result<(u16, Value), String> {
    let go = async {
        let mut c = Conn::open(addr, timeout).await?;
        c.request(method, path, body).await
    };
    match tokio::time::timeout(timeout, go).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!(
            "{method} {path} at {addr}: no answer within {timeout:?}"
        )),
    }
}

/// A key's text in a document id (`r:<k>`, `s:<k>:<e>`, `l:<k>`).
fn key_text(k: &Key) -> String {
    match k {
        Key::Int(i) => i.to_string(),
        Key::Str(s) => s
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect(),
    }
}

/// A request's failure inside a transaction.
enum Stop {
    Fail(String),
    Info(String),
}

impl From<HttpError> for Stop {
    fn from(e: HttpError) -> Stop {
        match e {
            // Nothing reached the server: nothing was done.
            HttpError::NotSent(e) => Stop::Fail(e),
            HttpError::NoAnswer(e) => Stop::Info(e),
        }
    }
}

/// One logical client's connection to one node.
pub struct CouchClient {
    conn: Conn,
    timeout: Duration,
    /// Of the current transaction: each register read as siblings, with
    /// the value a plain `GET` returns (CouchDB's winning revision).
    winners: Vec<(Key, i64)>,
}

impl CouchClient {
    /// Connects to the node at `addr`.
    pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<CouchClient, String> {
        let conn = Conn::open(addr, timeout).await.map_err(|e| e.to_string())?;
        Ok(CouchClient {
            conn,
            timeout,
            winners: Vec::new(),
        })
    }

    async fn get(&mut self, path: &str) -> Result<(u16, Value), Stop> {
        let (status, v) = self.conn.request("GET", path, None).await?;
        if status >= 500 {
            return Err(Stop::Fail(format!("GET {path}: {status} {v}")));
        }
        Ok((status, v))
    }

    /// The document `id` with its conflicts: `(winner, conflicting revs)`;
    /// `None` when there is none (never written, or deleted).
    async fn doc(&mut self, id: &str) -> Result<Option<(Value, Vec<String>)>, Stop> {
        let (status, doc) = self.get(&format!("/{}/{id}?conflicts=true", DB)).await?;
        match status {
            404 => Ok(None),
            200 => {
                let conflicts = doc["_conflicts"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|r| r.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(Some((doc, conflicts)))
            }
            s => Err(Stop::Fail(format!("GET {id}: {s} {doc}"))),
        }
    }

    /// Writes `new` (with `_id`) over what `doc` read, deleting the
    /// conflicting revisions it saw, in one `_bulk_docs` request.
    async fn put_resolving(
        &mut self,
        id: &str,
        mut new: Value,
        seen: Option<(Value, Vec<String>)>,
    ) -> Result<(), Stop> {
        new["_id"] = json!(id);
        let mut docs = Vec::new();
        if let Some((winner, conflicts)) = seen {
            new["_rev"] = winner["_rev"].clone();
            // The deletions first: `_bulk_docs` is not atomic, and a
            // reader that sees only part of it then sees fewer siblings,
            // never the new value beside a sibling it replaced.
            docs.extend(
                conflicts
                    .into_iter()
                    .map(|rev| json!({"_id": id, "_rev": rev, "_deleted": true})),
            );
            docs.push(new);
        } else {
            docs.push(new);
        }
        let body = json!({ "docs": docs });
        let path = format!("/{}/_bulk_docs", DB);
        let (status, answer) = self.conn.request("POST", &path, Some(&body)).await?;
        if status >= 500 {
            return Err(Stop::Info(format!("POST _bulk_docs: {status} {answer}")));
        }
        if status >= 400 {
            return Err(Stop::Fail(format!("POST _bulk_docs: {status} {answer}")));
        }
        // The new revision's result is the last one.
        match answer.as_array().and_then(|a| a.last()) {
            Some(first) if first.get("error").is_some() => Err(Stop::Fail(format!(
                "{id}: {} ({})",
                first["error"].as_str().unwrap_or("error"),
                first["reason"].as_str().unwrap_or("")
            ))),
            Some(_) => Ok(()),
            None => Err(Stop::Info(format!(
                "POST _bulk_docs: unexpected answer {answer}"
            ))),
        }
    }

    async fn mop(&mut self, kind: KeyKind, op: &Mop) -> Result<Mop, Stop> {
        let db = DB;
        Ok(match op {
            Mop::Write(k, v) => {
                let id = format!("r:{}", key_text(k));
                let seen = self.doc(&id).await?;
                self.put_resolving(&id, json!({ "v": v }), seen).await?;
                op.clone()
            }
            Mop::Delete(k) => {
                let id = format!("r:{}", key_text(k));
                if let Some(seen) = self.doc(&id).await? {
                    self.put_resolving(&id, json!({ "_deleted": true }), Some(seen))
                        .await?;
                }
                op.clone()
            }
            Mop::Add(k, e) => {
                let path = format!("/{db}/s:{}:{e}", key_text(k));
                let (status, answer) = self.conn.request("PUT", &path, Some(&json!({}))).await?;
                match status {
                    200..=299 => op.clone(),
                    500.. => return Err(Stop::Info(format!("PUT {path}: {status} {answer}"))),
                    _ => return Err(Stop::Fail(format!("PUT {path}: {status} {answer}"))),
                }
            }
            Mop::Append(k, e) => {
                let id = format!("l:{}", key_text(k));
                let seen = self.doc(&id).await?;
                let mut list: Vec<Value> = seen
                    .as_ref()
                    .and_then(|(d, _)| d["v"].as_array().cloned())
                    .unwrap_or_default();
                list.push(json!(e));
                self.put_resolving(&id, json!({ "v": list }), seen).await?;
                op.clone()
            }
            Mop::Incr(..) => {
                return Err(Stop::Fail(
                    "couchdb has no counters (no increment)".to_string(),
                ))
            }
            Mop::Read(k, _) => {
                let key = key_text(k);
                let value = match kind {
                    KeyKind::Register => {
                        let (value, winner) = self.read_register(&format!("r:{key}")).await?;
                        if let Some(w) = winner {
                            self.winners.push((k.clone(), w));
                        }
                        value
                    }
                    KeyKind::List => ReadValue::List(
                        self.doc(&format!("l:{key}"))
                            .await?
                            .and_then(|(d, _)| d["v"].as_array().cloned())
                            .unwrap_or_default()
                            .iter()
                            .filter_map(Value::as_i64)
                            .collect(),
                    ),
                    KeyKind::Set => {
                        let prefix = format!("s:{key}:");
                        // startkey="s:k:" endkey="s:k:\u{fff0}", JSON in the query.
                        let path = format!(
                            "/{db}/_all_docs?startkey=%22{}%22&endkey=%22{}%EF%BF%B0%22",
                            prefix.replace(':', "%3A"),
                            prefix.replace(':', "%3A")
                        );
                        let (status, all) = self.get(&path).await?;
                        if status != 200 {
                            return Err(Stop::Fail(format!("GET _all_docs: {status} {all}")));
                        }
                        let mut es: Vec<i64> = all["rows"]
                            .as_array()
                            .map(|rows| {
                                rows.iter()
                                    .filter_map(|r| r["id"].as_str())
                                    .filter_map(|id| id.strip_prefix(&prefix))
                                    .filter_map(|e| e.parse().ok())
                                    .collect()
                            })
                            .unwrap_or_default();
                        es.sort_unstable();
                        ReadValue::List(es)
                    }
                    KeyKind::Counter => {
                        return Err(Stop::Fail(
                            "couchdb has no counters (no increment)".to_string(),
                        ))
                    }
                };
                Mop::Read(k.clone(), value)
            }
        })
    }

    /// A register's value: the winner's, or with conflicts every leaf's
    /// (siblings, sorted) and the winner's value apart.
    async fn read_register(&mut self, id: &str) -> Result<(ReadValue, Option<i64>), Stop> {
        let Some((winner, conflicts)) = self.doc(id).await? else {
            return Ok((ReadValue::Null, None));
        };
        let Some(v) = winner["v"].as_i64() else {
            return Ok((ReadValue::Null, None));
        };
        if conflicts.is_empty() {
            return Ok((ReadValue::Int(v), None));
        }
        let mut values = vec![v];
        for rev in conflicts {
            let path = format!("/{}/{id}?rev={rev}", DB);
            let (status, doc) = self.get(&path).await?;
            if status == 200 {
                if let Some(x) = doc["v"].as_i64() {
                    values.push(x);
                }
            }
        }
        values.sort_unstable();
        values.dedup();
        Ok(if values.len() == 1 {
            (ReadValue::Int(values[0]), None)
        } else {
            (ReadValue::List(values), Some(v))
        })
    }

    async fn run(&mut self, kind: KeyKind, ops: &[Mop]) -> TxnOutcome {
        let mut done = Vec::with_capacity(ops.len());
        for op in ops {
            match self.mop(kind, op).await {
                Ok(m) => done.push(m),
                Err(Stop::Fail(e)) if done.is_empty() => return TxnOutcome::Fail(e),
                // Earlier micro-operations took effect: not a clean failure.
                Err(Stop::Fail(e) | Stop::Info(e)) => return TxnOutcome::Info(e),
            }
        }
        TxnOutcome::Ok(done)
    }
}

impl super::DbClient for CouchClient {
    fn txn<'a>(&'a mut self, kind: KeyKind, ops: &'a [Mop]) -> super::BoxFuture<'a, TxnOutcome> {
        Box::pin(async move {
            let limit = self.timeout;
            self.winners.clear();
            match tokio::time::timeout(limit, self.run(kind, ops)).await {
                Ok(outcome) => outcome,
                Err(_) => TxnOutcome::Info(format!("no answer within {limit:?}")),
            }
        })
    }

    fn take_meta(&mut self) -> Option<Value> {
        if self.winners.is_empty() {
            return None;
        }
        let pairs: Vec<Value> = self.winners.drain(..).map(|(k, v)| json!([k, v])).collect();
        Some(json!({ "winners": pairs }))
    }
}
