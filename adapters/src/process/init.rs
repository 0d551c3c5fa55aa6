//! The start-up handshake: `init` (the node's id and every node's id), then
//! any workload setup messages (e.g. broadcast's `topology`), each answered
//! with `<type>_ok` before the node joins the run.
//!
//! As in Maelstrom, a node may send messages before it answers `init`
//! (e.g. write its initial state to `lww-kv`, or greet its peers): every
//! message not addressed to the setup client is passed to `forward` at once,
//! so the caller can route it (and answer service requests the node waits
//! on before replying `init_ok`).

use std::time::Duration;

use serde_json::{json, Value as Json};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::codec::Message;
use super::error_code::RpcError;
use super::lines::{Line, LineReader};

/// The client name the harness uses for setup messages.
pub const SETUP_CLIENT: &str = "c0";

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(
        "node {node} closed stdout before answering {what} (it probably exited; see its log {log})"
    )]
    Exited {
        node: String,
        what: String,
        log: String,
    },
    #[error("node {node} did not answer {what} within {secs:.1}s (see its log {log})")]
    Timeout {
        node: String,
        what: String,
        secs: f64,
        log: String,
    },
    #[error("node {node} answered {what} with an error: {reason}")]
    Refused {
        node: String,
        what: String,
        reason: String,
    },
    #[error("node {node}: cannot write to its stdin: {source}")]
    Write {
        node: String,
        source: std::io::Error,
    },
    #[error("node {node}: cannot read its stdout: {source}")]
    Read {
        node: String,
        source: std::io::Error,
    },
}

/// Lines a node printed during the handshake that were neither the awaited
/// reply nor a message to forward (non-JSON, stray replies to the setup
/// client); the caller logs them.
pub type Ignored = Vec<String>;

/// The body of the `init` message for `node` in a cluster of `nodes`.
pub fn init_body(node: &str, nodes: &[String], msg_id: u64) -> Json {
    json!({"type": "init", "msg_id": msg_id, "node_id": node, "node_ids": nodes})
}

/// Sends each body in turn from [`SETUP_CLIENT`] and waits for its `_ok`
/// reply (matched by `in_reply_to`), within `timeout` per message.
pub async fn handshake<W, R>(
    node: &str,
    log: &str,
    stdin: &mut W,
    stdout: &mut LineReader<R>,
    bodies: Vec<Json>,
    timeout: Duration,
    forward: &tokio::sync::mpsc::Sender<Vec<u8>>,
) -> Result<Ignored, InitError>
where
    W: AsyncWrite + Unpin,
    R: AsyncRead + Unpin,
{
    let mut ignored = Vec::new();
    for body in bodies {
        let what = body
            .get("type")
            .and_then(Json::as_str)
            .unwrap_or("?")
            .to_string();
        let msg_id = body.get("msg_id").and_then(Json::as_u64);
        let msg = Message::new(SETUP_CLIENT, node, body);
        stdin
            .write_all(&msg.encode())
            .await
            .map_err(|source| InitError::Write {
                node: node.into(),
                source,
            })?;
        stdin.flush().await.map_err(|source| InitError::Write {
            node: node.into(),
            source,
        })?;
        let wait = async {
            loop {
                let line = match stdout.next().await {
                    Ok(Some(Line::Line(l))) => l,
                    Ok(Some(Line::TooLong { len, .. })) => {
                        ignored.push(format!("a {len}-byte line without a newline"));
                        continue;
                    }
                    Ok(None) => {
                        return Err(InitError::Exited {
                            node: node.into(),
                            what: what.clone(),
                            log: log.into(),
                        })
                    }
                    Err(source) => {
                        return Err(InitError::Read {
                            node: node.into(),
                            source,
                        })
                    }
                };
                let reply = match Message::decode(&line) {
                    Ok(m)
                        if m.dest == SETUP_CLIENT
                            && (msg_id.is_none() || m.in_reply_to() == msg_id) =>
                    {
                        m
                    }
                    Ok(m) if m.dest != SETUP_CLIENT => {
                        // A message for a service, a peer or a client:
                        // routed as in the run (the receiver may be gone).
                        let _ = forward.send(line).await;
                        continue;
                    }
                    _ => {
                        ignored.push(
                            String::from_utf8_lossy(&line[..line.len().min(300)]).into_owned(),
                        );
                        continue;
                    }
                };
                if let Some(e) = RpcError::from_body(&reply.body) {
                    return Err(InitError::Refused {
                        node: node.into(),
                        what: what.clone(),
                        reason: e.reason(),
                    });
                }
                if reply.kind() == format!("{what}_ok") {
                    return Ok(());
                }
                ignored.push(format!("reply of type {:?} to {what}", reply.kind()));
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(InitError::Timeout {
                    node: node.into(),
                    what,
                    secs: timeout.as_secs_f64(),
                    log: log.into(),
                })
            }
        }
    }
    Ok(ignored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn init_waits_for_the_matching_ok_and_reports_noise() {
        let (mut ours, theirs) = tokio::io::duplex(4096);
        let (node_out_r, mut node_out_w) = tokio::io::duplex(4096);
        let mut reader = LineReader::new(node_out_r, 1 << 20);
        let node = tokio::spawn(async move {
            let _keep = theirs;
            node_out_w.write_all(b"starting up\n").await.unwrap();
            node_out_w
                .write_all(b"{\"src\":\"n1\",\"dest\":\"c0\",\"body\":{\"type\":\"init_ok\",\"in_reply_to\":1}}\n")
                .await
                .unwrap();
            node_out_w
        });
        let ignored = handshake(
            "n1",
            "nodes/n1.log",
            &mut ours,
            &mut reader,
            vec![init_body("n1", &["n1".into()], 1)],
            Duration::from_secs(2),
            &tokio::sync::mpsc::channel(4).0,
        )
        .await
        .unwrap();
        assert_eq!(ignored, vec!["starting up".to_string()]);
        let _ = node.await;
    }

    #[tokio::test]
    async fn messages_sent_before_init_ok_are_forwarded_in_order() {
        let (mut ours, theirs) = tokio::io::duplex(4096);
        let (node_out_r, mut node_out_w) = tokio::io::duplex(4096);
        let mut reader = LineReader::new(node_out_r, 1 << 20);
        let early = [
            r#"{"src":"n1","dest":"lww-kv","body":{"type":"write","key":"root","value":[],"msg_id":1}}"#,
            r#"{"src":"n1","dest":"n2","body":{"type":"hello"}}"#,
        ];
        let node = tokio::spawn(async move {
            let _keep = theirs;
            for l in early {
                node_out_w
                    .write_all(format!("{l}\n").as_bytes())
                    .await
                    .unwrap();
            }
            node_out_w
                .write_all(b"{\"src\":\"n1\",\"dest\":\"c0\",\"body\":{\"type\":\"init_ok\",\"in_reply_to\":1}}\n")
                .await
                .unwrap();
            node_out_w
        });
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        let ignored = handshake(
            "n1",
            "nodes/n1.log",
            &mut ours,
            &mut reader,
            vec![init_body("n1", &["n1".into(), "n2".into()], 1)],
            Duration::from_secs(2),
            &tx,
        )
        .await
        .unwrap();
        assert!(ignored.is_empty(), "{ignored:?}");
        for l in early {
            assert_eq!(rx.try_recv().unwrap(), l.as_bytes());
        }
        let _ = node.await;
    }

    #[tokio::test]
    async fn a_silent_node_times_out_naming_itself() {
        let (mut ours, _theirs) = tokio::io::duplex(4096);
        let (node_out_r, _w) = tokio::io::duplex(4096);
        let mut reader = LineReader::new(node_out_r, 1 << 20);
        let err = handshake(
            "n2",
            "nodes/n2.log",
            &mut ours,
            &mut reader,
            vec![init_body("n2", &[], 1)],
            Duration::from_millis(50),
            &tokio::sync::mpsc::channel(4).0,
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "node n2 did not answer init within 0.1s (see its log nodes/n2.log)"
        );
    }
}
