//! MariaDB multi-source replication as a multi-leader system: every node a
//! `mariadbd` on loopback with its own `--defaults-file`, replicating from
//! its upstream nodes through one named replication connection each
//! (`CHANGE MASTER 'from_nX' TO … MASTER_USE_GTID=slave_pos`). MariaDB does
//! not resolve conflicts: row events are applied as they come, so
//! concurrent updates of one row leave the nodes with each other's values
//! (divergence), and a duplicate insert stops the replica's SQL thread
//! (`Last_SQL_Errno` 1062) in STRICT mode, or overwrites the row silently
//! in IDEMPOTENT mode (the nodes keep each other's values).
//!
//! Setup runs `mariadb-install-db` once into a template data directory and
//! copies it for every node (one install per node takes seconds each);
//! each server is started directly (`mariadbd --defaults-file`), in its
//! own process group, as the `mysql` user when Ladon runs as root.
//! Administrative SQL goes through the `mariadb` command-line client.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::process_group::RunAs;
use super::servers::{Servers, Shutdown};
use super::{
    append_logs, free_ports, replication_links, BoxFuture, ClusterSpec, Database, DbClient,
    DbError, LinkAddr, Topology,
};

/// The install command printed when a binary is missing (Debian).
pub const INSTALL: &str = "apt-get install mariadb-server mariadb-client";

/// The database holding Ladon's tables on every node.
pub const DATABASE: &str = "ladon";

/// Tables for Ladon's workloads, created on every node (outside the binary
/// log) before replication starts: a register row per key, a counter row
/// per key, a row per set element, a list per key (comma-separated
/// elements: MariaDB has no arrays).
pub const WORKLOAD_SCHEMA: &[&str] = &[
    "CREATE TABLE registers (k varchar(255) PRIMARY KEY, v bigint)",
    "CREATE TABLE counters (k varchar(255) PRIMARY KEY, v bigint NOT NULL DEFAULT 0)",
    "CREATE TABLE sets (k varchar(255), e bigint, PRIMARY KEY (k, e))",
    "CREATE TABLE lists (k varchar(255) PRIMARY KEY, v longtext NOT NULL)",
];

/// What a replica does with a row event that does not apply
/// (`slave_exec_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SlaveExecMode {
    /// Stop the replication connection's SQL thread with the error
    /// (MariaDB's default).
    #[default]
    Strict,
    /// Apply silently: a duplicate insert overwrites the row, a missing
    /// row is skipped.
    Idempotent,
}

impl SlaveExecMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SlaveExecMode::Strict => "STRICT",
            SlaveExecMode::Idempotent => "IDEMPOTENT",
        }
    }
}

/// MariaDB's own options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MariaDbOptions {
    pub slave_exec_mode: SlaveExecMode,
    /// Whether replicas write what they apply to their own binary log, so
    /// their downstream nodes receive it too (needed for ring and star;
    /// with a mesh it relays writes around a partial partition).
    pub log_slave_updates: bool,
}

/// Where MariaDB's binaries are: `LADON_MARIADB_BIN` (a directory holding
/// `mariadbd`, `mariadb-install-db` and `mariadb`), else Debian's places.
pub fn find_bins() -> Result<Bins, DbError> {
    let dirs: Vec<PathBuf> = match std::env::var_os("LADON_MARIADB_BIN") {
        Some(d) => vec![PathBuf::from(d)],
        None => vec!["/usr/sbin".into(), "/usr/bin".into()],
    };
    let find = |name: &str| -> Result<PathBuf, DbError> {
        dirs.iter()
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .ok_or_else(|| DbError::Missing {
                what: format!("MariaDB's `{name}`"),
                path: dirs
                    .iter()
                    .map(|d| d.join(name).display().to_string())
                    .collect::<Vec<_>>()
                    .join(" or "),
                install: INSTALL.into(),
            })
    };
    Ok(Bins {
        server: find("mariadbd")?,
        install_db: find("mariadb-install-db")?,
        client: find("mariadb")?,
    })
}

/// The binaries a cluster runs.
#[derive(Debug, Clone)]
pub struct Bins {
    pub server: PathBuf,
    pub install_db: PathBuf,
    pub client: PathBuf,
}

/// A MariaDB multi-source cluster.
pub struct MariaDb {
    spec: ClusterSpec,
    options: MariaDbOptions,
    bins: Bins,
    run_as: Option<RunAs>,
    servers: Servers,
    ports: Vec<u16>,
    /// The replication links set up, `(from, to)`.
    links: Vec<(usize, usize)>,
}

impl MariaDb {
    /// A cluster of `spec.nodes` nodes; nothing starts until
    /// [`start_nodes`](Database::start_nodes).
    pub fn new(spec: ClusterSpec, options: MariaDbOptions) -> Result<MariaDb, DbError> {
        if spec.nodes == 0 {
            return Err(DbError::Refused("--nodes must be at least 1".into()));
        }
        if spec.topology != Topology::Mesh && !options.log_slave_updates {
            return Err(DbError::Refused(format!(
                "--topology {}: writes must pass through intermediate nodes, which needs \
                 --log-slave-updates",
                spec.topology.as_str()
            )));
        }
        Ok(MariaDb {
            bins: find_bins()?,
            run_as: RunAs::for_root("mysql")?,
            servers: Servers::new(spec.nodes, "MariaDB")?,
            ports: Vec::new(),
            links: Vec::new(),
            options,
            spec,
        })
    }

    fn root(&self) -> &Path {
        self.servers.root()
    }

    fn node_dir(&self, i: usize) -> PathBuf {
        self.root().join(super::name_of(i))
    }

    fn data_dir(&self, i: usize) -> PathBuf {
        self.node_dir(i).join("data")
    }

    fn config_path(&self, i: usize) -> PathBuf {
        self.root().join(format!("{}.cnf", super::name_of(i)))
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.root().join(format!("{}.log", super::name_of(i)))
    }

    /// Node `i`'s `--defaults-file`.
    fn config(&self, i: usize) -> String {
        let dir = self.node_dir(i);
        let d = dir.display();
        let mut c = format!(
            "[mysqld]\n\
             socket={d}/mysqld.sock\n\
             pid-file={d}/mysqld.pid\n\
             tmpdir={d}\n\
             port={port}\n\
             bind-address={ip}\n\
             skip-name-resolve\n\
             server_id={id}\n\
             gtid_domain_id={id}\n\
             log_bin={d}/binlog\n\
             binlog_format=ROW\n\
             gtid_ignore_duplicates=ON\n\
             log_slave_updates={lsu}\n\
             slave_exec_mode={mode}\n\
             innodb_buffer_pool_size=16M\n\
             innodb_log_file_size=16M\n\
             innodb_flush_log_at_trx_commit=2\n\
             sync_binlog=0\n\
             performance_schema=OFF\n\
             slave_net_timeout=5\n\
             log_error={log}\n",
            port = self.ports[i],
            ip = self.spec.ip(i),
            id = i + 1,
            lsu = if self.options.log_slave_updates {
                "ON"
            } else {
                "OFF"
            },
            mode = self.options.slave_exec_mode.as_str(),
            log = self.log_path(i).display(),
        );
        if self.run_as.is_some() {
            c.push_str("user=mysql\n");
        }
        c
    }

    /// The `mariadb` client as root on node `i`'s Unix socket (root may
    /// log in from `localhost` only; the socket is reachable from any
    /// network namespace).
    fn client(&self, i: usize) -> Command {
        let mut cmd = Command::new(&self.bins.client);
        cmd.arg("--no-defaults")
            .arg("-S")
            .arg(self.node_dir(i).join("mysqld.sock"))
            .args(["-u", "root", "--connect-timeout=5"]);
        cmd
    }

    /// Runs SQL on node `i` through the `mariadb` client.
    pub fn sql(&self, i: usize, sql: &str) -> Result<String, DbError> {
        let out = self
            .client(i)
            .args(["-N", "-B", "-e", sql])
            .output()
            .map_err(DbError::io(format!("{}: run mariadb", super::name_of(i))))?;
        if !out.status.success() {
            return Err(DbError::Command {
                node: super::name_of(i),
                command: format!("mariadb -e {sql:?}"),
                output: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    }

    fn start(&mut self, i: usize) -> Result<(), DbError> {
        let node = super::name_of(i);
        let mut cmd = Command::new(&self.bins.server);
        let data = self.data_dir(i);
        // The data directory as an argument of its own: the registry's
        // sweep recognises a left-behind server by it.
        cmd.arg(format!("--defaults-file={}", self.config_path(i).display()))
            .arg("--datadir")
            .arg(&data);
        self.servers.clock_env(i, &mut cmd);
        RunAs::apply(self.run_as, &mut cmd);
        // The server writes its own log (log_error); this file gets what
        // it prints before it opens that log.
        let early = self.node_dir(i).join("stdout.log");
        let server = self.spec.spawn(i, cmd, &early, &node)?;
        self.servers.add(i, server, &data)?;
        self.wait_ready(i, Duration::from_secs(30))
    }

    fn wait_ready(&mut self, i: usize, limit: Duration) -> Result<(), DbError> {
        let t0 = Instant::now();
        loop {
            if self.sql(i, "SELECT 1").is_ok() {
                return Ok(());
            }
            if self.servers.start_failed(i) || t0.elapsed() > limit {
                return Err(DbError::NotReady {
                    node: super::name_of(i),
                    secs: t0.elapsed().as_secs(),
                    log: self.log_path(i),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The replication connections node `i` runs, as read from
    /// `SHOW ALL SLAVES STATUS`.
    pub fn replicas(&self, i: usize) -> Result<Vec<ReplicaStatus>, DbError> {
        // `-E`: one `column: value` line per field.
        let out = self
            .client(i)
            .args(["-E", "-e", "SHOW ALL SLAVES STATUS"])
            .output()
            .map_err(DbError::io(format!("{}: run mariadb", super::name_of(i))))?;
        if !out.status.success() {
            return Err(DbError::Command {
                node: super::name_of(i),
                command: "mariadb -E -e 'SHOW ALL SLAVES STATUS'".into(),
                output: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(parse_slave_status(&String::from_utf8_lossy(&out.stdout)))
    }
}

/// One replication connection's state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplicaStatus {
    /// `from_nX`.
    pub connection: String,
    pub io_running: String,
    pub sql_running: String,
    pub last_sql_errno: u32,
    pub last_sql_error: String,
    pub last_io_errno: u32,
    pub last_io_error: String,
}

impl ReplicaStatus {
    /// Whether the connection has stopped with an error (a transient IO
    /// reconnect is not one).
    pub fn stopped(&self) -> bool {
        self.sql_running == "No" || (self.io_running == "No" && self.last_io_errno != 0)
    }
}

/// Parses `SHOW ALL SLAVES STATUS` in the client's vertical (`-E`) form:
/// rows opened by a `*** N. row ***` line, then `Field: value` lines.
pub fn parse_slave_status(text: &str) -> Vec<ReplicaStatus> {
    let mut out: Vec<ReplicaStatus> = Vec::new();
    for line in text.lines() {
        if line.starts_with("***") {
            out.push(ReplicaStatus::default());
            continue;
        }
        let (Some(row), Some((field, value))) = (out.last_mut(), line.split_once(": ")) else {
            continue;
        };
        let value = value.trim().to_string();
        match field.trim() {
            "Connection_name" => row.connection = value,
            "Slave_IO_Running" => row.io_running = value,
            "Slave_SQL_Running" => row.sql_running = value,
            "Last_SQL_Errno" => row.last_sql_errno = value.parse().unwrap_or(0),
            "Last_SQL_Error" => row.last_sql_error = value,
            "Last_IO_Errno" => row.last_io_errno = value.parse().unwrap_or(0),
            "Last_IO_Error" => row.last_io_error = value,
            _ => {}
        }
    }
    out
}

/// The replication connection on `to` that pulls `from`'s binary log.
fn connection(from: usize) -> String {
    format!("from_n{}", from + 1)
}

impl Database for MariaDb {
    fn name(&self) -> &'static str {
        "mariadb"
    }

    fn nodes(&self) -> Vec<String> {
        (0..self.spec.nodes).map(super::name_of).collect()
    }

    fn enable_clock_faults(&mut self, library: &Path) -> Result<(), DbError> {
        self.servers.enable_clock_faults(library)
    }

    fn set_clock(&self, i: usize, offset_ns: i64) -> Result<(), DbError> {
        self.servers.set_clock(i, offset_ns)
    }

    fn start_nodes(&mut self) -> Result<(), DbError> {
        self.servers.create_root("ladon-mariadb-")?;
        self.ports = free_ports(self.spec.nodes)?;
        let template = self.root().join("template");
        std::fs::create_dir_all(&template)
            .map_err(DbError::io(format!("create {}", template.display())))?;
        for i in 0..self.spec.nodes {
            let dir = self.node_dir(i);
            std::fs::create_dir_all(&dir)
                .map_err(DbError::io(format!("create {}", dir.display())))?;
            let cfg = self.config_path(i);
            std::fs::write(&cfg, self.config(i))
                .map_err(DbError::io(format!("write {}", cfg.display())))?;
        }
        RunAs::chown(self.run_as, self.root())?;
        // Through `sh`, whose command line names the template directory as
        // an argument of its own (mariadb-install-db's own takes
        // `--datadir=DIR` only): a Ladon killed during the install leaves
        // the script and its bootstrap server under that directory, which
        // the registry's sweep of the cluster root finds and kills.
        let mut install = Command::new("sh");
        install
            .arg("-c")
            .arg("shift; \"$@\"; exit $?")
            .arg("sh")
            .arg(&template)
            .arg(&self.bins.install_db);
        install.args([
            "--no-defaults",
            &format!("--datadir={}", template.display()),
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--skip-name-resolve",
        ]);
        // Its own temporary files (passed on to the bootstrap server):
        // bootstraps running at once in the shared /tmp were seen to
        // delete each other's temporary tables.
        install.arg(format!("--tmpdir={}", self.root().display()));
        if self.run_as.is_some() {
            install.arg("--user=mysql");
        }
        RunAs::apply(self.run_as, &mut install);
        let out = install
            .output()
            .map_err(DbError::io("n1: run mariadb-install-db"))?;
        if !out.status.success() {
            return Err(DbError::Command {
                node: "n1".into(),
                command: format!("mariadb-install-db --datadir={}", template.display()),
                output: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        for i in 0..self.spec.nodes {
            let to = self.data_dir(i);
            let out = Command::new("cp")
                .arg("-a")
                .arg(&template)
                .arg(&to)
                .output()
                .map_err(DbError::io("run cp"))?;
            if !out.status.success() {
                return Err(DbError::Command {
                    node: super::name_of(i),
                    command: format!("cp -a {} {}", template.display(), to.display()),
                    output: String::from_utf8_lossy(&out.stderr).into(),
                });
            }
        }
        let _ = std::fs::remove_dir_all(&template);
        // The clock files are the server user's to read.
        self.servers.make_clocks()?;
        RunAs::chown(self.run_as, self.root())?;
        for i in 0..self.spec.nodes {
            self.start(i)?;
            // The replication user and the workload's tables, outside the
            // binary log: every node creates its own.
            let mut setup = vec![
                "SET SESSION sql_log_bin=0".to_string(),
                "CREATE USER 'ladon'@'%'".into(),
                "GRANT ALL ON *.* TO 'ladon'@'%'".into(),
                format!("CREATE DATABASE {DATABASE}"),
                format!("USE {DATABASE}"),
            ];
            setup.extend(WORKLOAD_SCHEMA.iter().map(|s| s.to_string()));
            self.sql(i, &setup.join("; "))?;
        }
        Ok(())
    }

    fn replicate(&mut self, via: LinkAddr<'_>) -> Result<(), DbError> {
        self.links = replication_links(self.spec.topology, self.spec.nodes)
            .iter()
            .map(|l| (l.from, l.to))
            .collect();
        // A relaying link (ring, star) passes on what its upstream applied
        // from others: that is `log_slave_updates`, required by `new`.
        for &(from, to) in &self.links {
            let addr = via(from, to);
            self.sql(
                to,
                &format!(
                    "CHANGE MASTER '{c}' TO MASTER_HOST='{ip}', MASTER_PORT={port}, \
                     MASTER_USER='ladon', MASTER_USE_GTID=slave_pos, \
                     MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1; \
                     START SLAVE '{c}'",
                    c = connection(from),
                    ip = addr.ip(),
                    port = addr.port(),
                ),
            )?;
        }
        // Running once every connection's threads run.
        let t0 = Instant::now();
        loop {
            let mut waiting = Vec::new();
            for i in 0..self.spec.nodes {
                for r in self.replicas(i)? {
                    if r.io_running != "Yes" || r.sql_running != "Yes" {
                        waiting.push(format!(
                            "{} {}: io {} sql {} {}{}",
                            super::name_of(i),
                            r.connection,
                            r.io_running,
                            r.sql_running,
                            r.last_io_error,
                            r.last_sql_error
                        ));
                    }
                }
            }
            if waiting.is_empty() {
                return Ok(());
            }
            if t0.elapsed() > Duration::from_secs(30) {
                return Err(DbError::Refused(format!(
                    "replication did not start within 30 s: {}",
                    waiting.join("; ")
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn data_dir(&self, i: usize) -> Option<PathBuf> {
        self.servers.data_root().map(|_| MariaDb::data_dir(self, i))
    }

    fn addr(&self, i: usize) -> SocketAddr {
        SocketAddr::new(self.spec.ip(i), self.ports[i])
    }

    fn connect(
        &self,
        i: usize,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Box<dyn DbClient>, String>> {
        let addr = self.addr(i);
        #[cfg(feature = "mariadb")]
        return Box::pin(async move {
            super::mysql::MysqlClient::connect(addr, DATABASE, timeout)
                .await
                .map(|c| Box::new(c) as Box<dyn DbClient>)
        });
        #[cfg(not(feature = "mariadb"))]
        {
            let _ = timeout;
            Box::pin(async move {
                Err(format!(
                    "connect to {addr}: ladon-adapters was built without its `mariadb` feature"
                ))
            })
        }
    }

    fn kill(&mut self, i: usize) -> Result<(), DbError> {
        self.servers.kill(i);
        Ok(())
    }

    fn restart(&mut self, i: usize) -> Result<(), DbError> {
        if self.servers.is_up(i) {
            return Ok(());
        }
        // Replication connections start again with the server.
        self.start(i)
    }

    fn is_up(&self, i: usize) -> bool {
        self.servers.is_up(i)
    }

    fn pause(&mut self, i: usize) -> Result<(), DbError> {
        self.servers.pause(i);
        Ok(())
    }

    fn resume(&mut self, i: usize) -> Result<(), DbError> {
        self.servers.resume(i);
        Ok(())
    }

    fn exited_by_themselves(&mut self) -> Vec<String> {
        self.servers.exited_by_themselves()
    }

    fn replication_problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for i in (0..self.spec.nodes).filter(|&i| self.is_up(i)) {
            match self.replicas(i) {
                Ok(rs) => out.extend(rs.iter().filter(|r| r.stopped()).map(|r| {
                    let (errno, error) = if r.last_sql_errno != 0 {
                        (r.last_sql_errno, r.last_sql_error.as_str())
                    } else {
                        (r.last_io_errno, r.last_io_error.as_str())
                    };
                    format!(
                        "replication stopped on {} from {}: error {errno}: {error} \
                         (IO thread {}, SQL thread {})",
                        super::name_of(i),
                        r.connection.trim_start_matches("from_"),
                        r.io_running,
                        r.sql_running
                    )
                })),
                Err(e) => out.push(format!(
                    "replication status of {} unknown: {e}",
                    super::name_of(i)
                )),
            }
        }
        out
    }

    fn replication_halted(&self) -> Vec<String> {
        // An SQL thread stopped on an error stays stopped until an
        // operator skips or fixes the event; an IO thread reconnects.
        let mut out = Vec::new();
        for i in (0..self.spec.nodes).filter(|&i| self.is_up(i)) {
            if let Ok(rs) = self.replicas(i) {
                out.extend(
                    rs.iter()
                        .filter(|r| r.sql_running == "No" && r.last_sql_errno != 0)
                        .map(|r| {
                            // Short: the whole error is a replication problem.
                            format!(
                                "replication stopped on {} from {} (error {})",
                                super::name_of(i),
                                r.connection.trim_start_matches("from_"),
                                r.last_sql_errno
                            )
                        }),
                );
            }
        }
        out
    }

    fn collect_logs(&self, into: &Path) -> Result<(), DbError> {
        let logs: Vec<(String, PathBuf)> = (0..self.spec.nodes)
            .map(|i| (super::name_of(i), self.log_path(i)))
            .collect();
        append_logs(&logs, into)
    }

    fn teardown(&mut self) -> Result<(), DbError> {
        self.servers
            // The data goes with the cluster: no clean shutdown needed.
            .teardown(Shutdown::Kill)
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}

impl MariaDb {
    /// The directory this cluster's data lives in while it runs (for tests).
    pub fn data_root(&self) -> Option<&Path> {
        self.servers.data_root()
    }

    /// Process group ids of the running servers (for tests).
    pub fn pgids(&self) -> Vec<i32> {
        self.servers.pgids()
    }

    /// Leaks the servers and their data, as a Ladon killed with SIGKILL
    /// would (for tests of the registry sweep).
    pub fn abandon(mut self) {
        self.servers.abandon();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slave_status_is_read_from_the_vertical_listing() {
        let text = "*************************** 1. row ***************************\n\
                    \x20             Connection_name: from_n2\n\
                    \x20            Slave_IO_Running: Yes\n\
                    \x20           Slave_SQL_Running: No\n\
                    \x20              Last_SQL_Errno: 1062\n\
                    \x20              Last_SQL_Error: Could not execute Write_rows_v1 event on table ladon.registers; Duplicate entry '3' for key 'PRIMARY'\n\
                    \x20               Last_IO_Errno: 0\n\
                    \x20               Last_IO_Error: \n\
                    *************************** 2. row ***************************\n\
                    \x20             Connection_name: from_n3\n\
                    \x20            Slave_IO_Running: Yes\n\
                    \x20           Slave_SQL_Running: Yes\n\
                    \x20              Last_SQL_Errno: 0\n";
        let rs = parse_slave_status(text);
        assert_eq!(rs.len(), 2);
        assert_eq!(rs[0].connection, "from_n2");
        assert_eq!(rs[0].last_sql_errno, 1062);
        assert!(rs[0]
            .last_sql_error
            .ends_with("Duplicate entry '3' for key 'PRIMARY'"));
        assert!(rs[0].stopped());
        assert_eq!(rs[1].connection, "from_n3");
        assert!(!rs[1].stopped());
    }

    #[test]
    fn ring_and_star_need_log_slave_updates() {
        let spec = |topology| ClusterSpec {
            nodes: 3,
            topology,
            dir: std::env::temp_dir(),
            network: None,
        };
        let err = MariaDb::new(spec(Topology::Ring), MariaDbOptions::default())
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "--topology ring: writes must pass through intermediate nodes, which needs \
                 --log-slave-updates"
            )
        );
    }
}
