//! Ladon's workloads on SQL (PostgreSQL), one connection per logical client.
//!
//! | micro-op | statement |
//! |---|---|
//! | `["w", k, v]` | `INSERT INTO registers … ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v` |
//! | `["d", k, null]` | `DELETE FROM registers WHERE k = $1` |
//! | `["add", k, e]` | `INSERT INTO sets … ON CONFLICT DO NOTHING` |
//! | `["incr", k, d]` | `INSERT INTO counters … ON CONFLICT (k) DO UPDATE SET v = counters.v + EXCLUDED.v` |
//! | `["append", k, e]` | `INSERT INTO lists … ON CONFLICT (k) DO UPDATE SET v = lists.v \|\| EXCLUDED.v` |
//! | `["r", k, _]` | `SELECT` of the workload's table |
//!
//! A transaction of several micro-operations is one SQL transaction. Keys
//! are stored as text (an integer key as its decimal digits).
//!
//! **Outcomes.** An error the server reports with a SQLSTATE before COMMIT
//! aborted the transaction: a definite `fail`. A statement timeout is one
//! of those (the server cancels the statement and rolls back). An error
//! while COMMIT was in flight, a lost connection or a client-side timeout
//! is an indeterminate `info`: the write may or may not have happened.

use std::net::SocketAddr;
use std::time::Duration;

use ladon_checker::history::{Key, KeyKind, Mop, ReadValue};
use tokio_postgres::{Client, NoTls};

/// How one transaction ended (the name this module had first).
pub use super::TxnOutcome as SqlOutcome;

/// One logical client's connection to one node.
pub struct SqlClient {
    client: Client,
    conn: tokio::task::JoinHandle<()>,
    /// Client-side limit per transaction (the server's
    /// `statement_timeout` is the same, so the server usually answers
    /// first with a definite error).
    timeout: Duration,
}

impl Drop for SqlClient {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

fn key_text(k: &Key) -> String {
    match k {
        Key::Int(i) => i.to_string(),
        Key::Str(s) => s.clone(),
    }
}

impl super::DbClient for SqlClient {
    fn txn<'a>(
        &'a mut self,
        kind: KeyKind,
        ops: &'a [Mop],
    ) -> super::BoxFuture<'a, super::TxnOutcome> {
        Box::pin(SqlClient::txn(self, kind, ops))
    }
}

impl SqlClient {
    /// Connects to `addr` as `postgres` (trust on loopback), with
    /// `statement_timeout` set to `timeout`.
    pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<SqlClient, String> {
        let dsn = format!(
            "host={} port={} user=postgres dbname=postgres connect_timeout={} \
             options='-c statement_timeout={}'",
            addr.ip(),
            addr.port(),
            timeout.as_secs().max(1),
            timeout.as_millis()
        );
        let connect = tokio_postgres::connect(&dsn, NoTls);
        let (client, connection) = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| format!("connect to {addr}: timed out after {timeout:?}"))?
            .map_err(|e| format!("connect to {addr}: {e}"))?;
        let conn = tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(SqlClient {
            client,
            conn,
            timeout,
        })
    }

    /// Runs `ops` on the workload's table as one transaction.
    pub async fn txn(&mut self, kind: KeyKind, ops: &[Mop]) -> SqlOutcome {
        let limit = self.timeout;
        match tokio::time::timeout(limit, self.run(kind, ops)).await {
            Ok(outcome) => outcome,
            Err(_) => SqlOutcome::Info(format!("no answer within {limit:?}")),
        }
    }

    async fn run(&mut self, kind: KeyKind, ops: &[Mop]) -> SqlOutcome {
        let single = ops.len() == 1;
        if !single {
            if let Err(e) = self.client.batch_execute("BEGIN").await {
                return classify(&e, false);
            }
        }
        let mut done = Vec::with_capacity(ops.len());
        for op in ops {
            match self.mop(kind, op).await {
                Ok(m) => done.push(m),
                Err(e) => {
                    if !single {
                        let _ = self.client.batch_execute("ROLLBACK").await;
                    }
                    // A single statement commits itself: an error without a
                    // SQLSTATE may have come after the commit.
                    return classify(&e, single);
                }
            }
        }
        if !single {
            if let Err(e) = self.client.batch_execute("COMMIT").await {
                return classify(&e, true);
            }
        }
        SqlOutcome::Ok(done)
    }

    async fn mop(&self, kind: KeyKind, op: &Mop) -> Result<Mop, tokio_postgres::Error> {
        let c = &self.client;
        Ok(match op {
            Mop::Write(k, v) => {
                c.execute(
                    "INSERT INTO registers (k, v) VALUES ($1, $2) \
                     ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
                    &[&key_text(k), v],
                )
                .await?;
                op.clone()
            }
            Mop::Delete(k) => {
                c.execute("DELETE FROM registers WHERE k = $1", &[&key_text(k)])
                    .await?;
                op.clone()
            }
            Mop::Add(k, e) => {
                c.execute(
                    "INSERT INTO sets (k, e) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    &[&key_text(k), e],
                )
                .await?;
                op.clone()
            }
            Mop::Incr(k, d) => {
                c.execute(
                    "INSERT INTO counters (k, v) VALUES ($1, $2) \
                     ON CONFLICT (k) DO UPDATE SET v = counters.v + EXCLUDED.v",
                    &[&key_text(k), d],
                )
                .await?;
                op.clone()
            }
            Mop::Append(k, e) => {
                c.execute(
                    "INSERT INTO lists (k, v) VALUES ($1, ARRAY[$2::bigint]) \
                     ON CONFLICT (k) DO UPDATE SET v = lists.v || EXCLUDED.v",
                    &[&key_text(k), e],
                )
                .await?;
                op.clone()
            }
            Mop::Read(k, _) => {
                let key = key_text(k);
                let value = match kind {
                    KeyKind::Register => c
                        .query_opt("SELECT v FROM registers WHERE k = $1", &[&key])
                        .await?
                        .map_or(ReadValue::Null, |r| ReadValue::Int(r.get(0))),
                    KeyKind::Counter => ReadValue::Int(
                        c.query_opt("SELECT v FROM counters WHERE k = $1", &[&key])
                            .await?
                            .map_or(0, |r| r.get(0)),
                    ),
                    KeyKind::Set => ReadValue::List(
                        c.query("SELECT e FROM sets WHERE k = $1 ORDER BY e", &[&key])
                            .await?
                            .iter()
                            .map(|r| r.get(0))
                            .collect(),
                    ),
                    KeyKind::List => ReadValue::List(
                        c.query_opt("SELECT v FROM lists WHERE k = $1", &[&key])
                            .await?
                            .map_or_else(Vec::new, |r| r.get::<_, Vec<i64>>(0)),
                    ),
                };
                Mop::Read(k.clone(), value)
            }
        })
    }
}

/// An error's outcome: a SQLSTATE before the commit is a definite failure;
/// anything else (a broken connection, or any error once the commit was
/// sent) leaves the transaction's fate unknown.
fn classify(e: &tokio_postgres::Error, commit_in_flight: bool) -> SqlOutcome {
    match e.code() {
        Some(code) if !commit_in_flight || is_definite_at_commit(code.code()) => {
            SqlOutcome::Fail(format!("{} ({})", e, code.code()))
        }
        _ => SqlOutcome::Info(e.to_string()),
    }
}

/// SQLSTATEs that mean the transaction was rolled back even when they
/// come from COMMIT: serialization failure, deadlock, constraint
/// violations, statement timeout (query canceled).
fn is_definite_at_commit(code: &str) -> bool {
    code.starts_with("23") || code.starts_with("40") || code == "57014"
}
