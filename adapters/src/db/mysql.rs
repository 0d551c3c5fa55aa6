//! Ladon's workloads on MariaDB (the MySQL protocol, `mysql_async`), one
//! connection per logical client, with the same mapping as PostgreSQL's:
//!
//! | micro-op | statement |
//! |---|---|
//! | `["w", k, v]` | `INSERT INTO registers … ON DUPLICATE KEY UPDATE v = VALUES(v)` |
//! | `["d", k, null]` | `DELETE FROM registers WHERE k = ?` |
//! | `["add", k, e]` | `INSERT IGNORE INTO sets …` |
//! | `["incr", k, d]` | `INSERT INTO counters … ON DUPLICATE KEY UPDATE v = v + VALUES(v)` |
//! | `["append", k, e]` | `INSERT INTO lists … ON DUPLICATE KEY UPDATE v = CONCAT(v, ',', VALUES(v))` |
//! | `["r", k, _]` | `SELECT` of the workload's table |
//!
//! With `binlog_format=ROW` a replica applies the row the writer ended
//! with, not the statement: two concurrent increments replicate as two
//! after-images, and one of them is lost.
//!
//! **Outcomes.** A server error before COMMIT: a definite `fail` (the
//! transaction is rolled back; `max_statement_time` cancels a statement
//! the same way). An error while COMMIT was in flight (except a deadlock
//! or lock-wait timeout, which roll back), a lost connection or a
//! client-side timeout: an indeterminate `info`.

use std::net::SocketAddr;
use std::time::Duration;

use ladon_checker::history::{Key, KeyKind, Mop, ReadValue};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};

use super::{BoxFuture, DbClient, TxnOutcome};

/// One logical client's connection to one node.
pub struct MysqlClient {
    conn: Conn,
    timeout: Duration,
}

fn key_text(k: &Key) -> String {
    match k {
        Key::Int(i) => i.to_string(),
        Key::Str(s) => s.clone(),
    }
}

impl DbClient for MysqlClient {
    fn txn<'a>(&'a mut self, kind: KeyKind, ops: &'a [Mop]) -> BoxFuture<'a, TxnOutcome> {
        Box::pin(MysqlClient::txn(self, kind, ops))
    }
}

impl MysqlClient {
    /// Connects to `addr` as `ladon` (no password) on database `db`, with
    /// `max_statement_time` set to `timeout`.
    pub async fn connect(
        addr: SocketAddr,
        db: &str,
        timeout: Duration,
    ) -> Result<MysqlClient, String> {
        let opts = OptsBuilder::default()
            .ip_or_hostname(addr.ip().to_string())
            .tcp_port(addr.port())
            .user(Some("ladon"))
            .db_name(Some(db))
            .prefer_socket(false)
            .init(vec![format!(
                "SET SESSION max_statement_time = {:.3}",
                timeout.as_secs_f64()
            )]);
        let conn = tokio::time::timeout(timeout, Conn::new(opts))
            .await
            .map_err(|_| format!("connect to {addr}: timed out after {timeout:?}"))?
            .map_err(|e| format!("connect to {addr}: {e}"))?;
        Ok(MysqlClient { conn, timeout })
    }

    /// Runs `ops` on the workload's table as one transaction.
    pub async fn txn(&mut self, kind: KeyKind, ops: &[Mop]) -> TxnOutcome {
        let limit = self.timeout;
        match tokio::time::timeout(limit, self.run(kind, ops)).await {
            Ok(outcome) => outcome,
            Err(_) => TxnOutcome::Info(format!("no answer within {limit:?}")),
        }
    }

    async fn run(&mut self, kind: KeyKind, ops: &[Mop]) -> TxnOutcome {
        let single = ops.len() == 1;
        if !single {
            if let Err(e) = self.conn.query_drop("BEGIN").await {
                return classify(&e, false);
            }
        }
        let mut done = Vec::with_capacity(ops.len());
        for op in ops {
            match self.mop(kind, op).await {
                Ok(m) => done.push(m),
                Err(e) => {
                    if !single {
                        let _ = self.conn.query_drop("ROLLBACK").await;
                    }
                    // A single statement commits itself (autocommit).
                    return classify(&e, single);
                }
            }
        }
        if !single {
            if let Err(e) = self.conn.query_drop("COMMIT").await {
                return classify(&e, true);
            }
        }
        TxnOutcome::Ok(done)
    }

    async fn mop(&mut self, kind: KeyKind, op: &Mop) -> Result<Mop, mysql_async::Error> {
        let c = &mut self.conn;
        Ok(match op {
            Mop::Write(k, v) => {
                c.exec_drop(
                    "INSERT INTO registers (k, v) VALUES (?, ?) \
                     ON DUPLICATE KEY UPDATE v = VALUES(v)",
                    (key_text(k), *v),
                )
                .await?;
                op.clone()
            }
            Mop::Delete(k) => {
                c.exec_drop("DELETE FROM registers WHERE k = ?", (key_text(k),))
                    .await?;
                op.clone()
            }
            Mop::Add(k, e) => {
                c.exec_drop(
                    "INSERT IGNORE INTO sets (k, e) VALUES (?, ?)",
                    (key_text(k), *e),
                )
                .await?;
                op.clone()
            }
            Mop::Incr(k, d) => {
                c.exec_drop(
                    "INSERT INTO counters (k, v) VALUES (?, ?) \
                     ON DUPLICATE KEY UPDATE v = v + VALUES(v)",
                    (key_text(k), *d),
                )
                .await?;
                op.clone()
            }
            Mop::Append(k, e) => {
                c.exec_drop(
                    "INSERT INTO lists (k, v) VALUES (?, ?) \
                     ON DUPLICATE KEY UPDATE v = CONCAT(v, ',', VALUES(v))",
                    (key_text(k), e.to_string()),
                )
                .await?;
                op.clone()
            }
            Mop::Read(k, _) => {
                let key = key_text(k);
                let value = match kind {
                    KeyKind::Register => c
                        .exec_first::<Option<i64>, _, _>(
                            "SELECT v FROM registers WHERE k = ?",
                            (key,),
                        )
                        .await?
                        .flatten()
                        .map_or(ReadValue::Null, ReadValue::Int),
                    KeyKind::Counter => ReadValue::Int(
                        c.exec_first::<i64, _, _>("SELECT v FROM counters WHERE k = ?", (key,))
                            .await?
                            .unwrap_or(0),
                    ),
                    KeyKind::Set => ReadValue::List(
                        c.exec::<i64, _, _>("SELECT e FROM sets WHERE k = ? ORDER BY e", (key,))
                            .await?,
                    ),
                    KeyKind::List => ReadValue::List(
                        c.exec_first::<String, _, _>("SELECT v FROM lists WHERE k = ?", (key,))
                            .await?
                            .map_or_else(Vec::new, |v| parse_list(&v)),
                    ),
                };
                Mop::Read(k.clone(), value)
            }
        })
    }
}

/// A list column's elements (`"3,1,4"`); Ladon writes only integers.
fn parse_list(text: &str) -> Vec<i64> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

/// An error's outcome: a server error before the commit is a definite
/// failure; anything else (a broken connection, or an error once the
/// commit was sent) leaves the transaction's fate unknown.
fn classify(e: &mysql_async::Error, commit_in_flight: bool) -> TxnOutcome {
    match e {
        mysql_async::Error::Server(s) if !commit_in_flight || rolled_back(s.code) => {
            TxnOutcome::Fail(format!("{} ({}, SQLSTATE {})", s.message, s.code, s.state))
        }
        _ => TxnOutcome::Info(e.to_string()),
    }
}

/// Server errors that roll the transaction back even when COMMIT gets
/// them: lock wait timeout (1205), deadlock (1213), duplicate key (1062).
fn rolled_back(code: u16) -> bool {
    matches!(code, 1205 | 1213 | 1062)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_from_their_column() {
        assert_eq!(parse_list("3,1,4"), vec![3, 1, 4]);
        assert_eq!(parse_list(""), Vec::<i64>::new());
    }
}
