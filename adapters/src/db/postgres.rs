//! PostgreSQL with pglogical as a multi-leader system: every node a
//! PostgreSQL server on loopback, replicating to the others through
//! pglogical subscriptions, conflicts resolved by
//! `pglogical.conflict_resolution = 'last_update_wins'` (commit timestamps).
//!
//! Setup initialises one data directory (`initdb`) and copies it for every
//! node, which is much faster than one `initdb` per node; each server is
//! started directly (`postgres -D`, no `pg_ctl`), in its own process group.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::process_group::RunAs;
use super::remote::{RemoteNode, RemoteServers};
use super::servers::{Servers, Shutdown};
use super::{
    append_logs, free_ports, BoxFuture, ClusterSpec, Database, DbClient, DbError, LinkAddr,
};

/// The install command printed when a binary is missing (Debian).
pub const INSTALL: &str = "apt-get install postgresql-15 postgresql-15-pglogical";

/// Tables for Ladon's workloads, created on every node before replication
/// starts: a register row per key, a counter row per key, a row per set
/// element, a list (array) per key.
pub const WORKLOAD_SCHEMA: &[&str] = &[
    "CREATE TABLE registers (k text PRIMARY KEY, v bigint)",
    "CREATE TABLE counters (k text PRIMARY KEY, v bigint NOT NULL DEFAULT 0)",
    "CREATE TABLE sets (k text, e bigint, PRIMARY KEY (k, e))",
    "CREATE TABLE lists (k text PRIMARY KEY, v bigint[] NOT NULL DEFAULT '{}')",
];

/// Settings every node gets (besides its port and socket directory).
const SETTINGS: &[(&str, &str)] = &[
    ("wal_level", "logical"),
    ("max_worker_processes", "16"),
    ("max_replication_slots", "16"),
    ("max_wal_senders", "16"),
    ("shared_preload_libraries", "'pglogical'"),
    ("track_commit_timestamp", "on"),
    ("pglogical.conflict_resolution", "'last_update_wins'"),
    // Without it, replication lags by wal_writer_delay (200 ms).
    ("synchronous_commit", "on"),
    // A cut link is noticed, and healed, within seconds.
    ("wal_sender_timeout", "5s"),
    ("wal_receiver_timeout", "5s"),
    ("tcp_keepalives_idle", "1"),
    ("tcp_keepalives_interval", "1"),
    ("tcp_keepalives_count", "3"),
    ("shared_buffers", "16MB"),
    ("fsync", "off"),
    // Dynamic shared memory in the data directory (pg_dynshmem), not
    // /dev/shm: a server killed with SIGKILL leaves nothing outside it.
    ("dynamic_shared_memory_type", "mmap"),
    ("full_page_writes", "off"),
    ("log_line_prefix", "'%m [%p] '"),
];

/// Since PostgreSQL 15.20 (and 16.12, 17.8), only the logical decoding
/// output plugins listed in `output_plugin_libraries` may be used, and
/// pglogical's (`pglogical_output`) is not listed by default: without this
/// line its subscriptions never start (`library "pglogical_output" may not
/// be used as an output plugin`). Older servers do not know the setting
/// and refuse to start with it, so it is added only where
/// `postgres --describe-config` lists it.
const PLUGINS_SETTING: &str =
    "output_plugin_libraries = 'pgoutput, test_decoding, pglogical_output'";

/// Whether the server in `bin` gates output plugins (see
/// [`PLUGINS_SETTING`]).
fn gates_output_plugins(bin: &Path) -> bool {
    Command::new(bin.join("postgres"))
        .arg("--describe-config")
        .stderr(std::process::Stdio::null())
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.starts_with("output_plugin_libraries\t"))
        })
}

/// Where PostgreSQL's binaries are: `LADON_PG_BIN`, else the newest of
/// Debian's `/usr/lib/postgresql/<version>/bin` that has pglogical.
pub fn find_bin() -> Result<PathBuf, DbError> {
    if let Some(p) = std::env::var_os("LADON_PG_BIN") {
        let p = PathBuf::from(p);
        return check_bin(&p).map(|()| p);
    }
    let mut first_err = None;
    for v in ["17", "16", "15"] {
        let p = PathBuf::from(format!("/usr/lib/postgresql/{v}/bin"));
        if !p.exists() {
            continue;
        }
        match check_bin(&p) {
            Ok(()) => return Ok(p),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    Err(first_err.unwrap_or(DbError::Missing {
        what: "PostgreSQL's server binaries".into(),
        path: "/usr/lib/postgresql/*/bin".into(),
        install: INSTALL.into(),
    }))
}

fn check_bin(bin: &Path) -> Result<(), DbError> {
    for b in ["initdb", "postgres", "pg_isready", "psql"] {
        if !bin.join(b).is_file() {
            return Err(DbError::Missing {
                what: format!("PostgreSQL's `{b}`"),
                path: bin.join(b).display().to_string(),
                install: INSTALL.into(),
            });
        }
    }
    let lib = bin.with_file_name("lib").join("pglogical.so");
    if !lib.is_file() {
        return Err(DbError::Missing {
            what: "the pglogical extension".into(),
            path: lib.display().to_string(),
            install: INSTALL.into(),
        });
    }
    Ok(())
}

/// A PostgreSQL + pglogical cluster.
pub struct Postgres {
    spec: ClusterSpec,
    bin: PathBuf,
    run_as: Option<RunAs>,
    servers: Servers,
    ports: Vec<u16>,
    /// Extra SQL run on every node before replication starts.
    pub schema: Vec<String>,
    /// The servers on other machines (`--hosts`): `bin` is then the
    /// binaries' directory there, and `servers` stays empty.
    remote: Option<RemoteServers>,
    /// The server gates output plugins ([`PLUGINS_SETTING`]).
    plugins_gated: bool,
}

impl Postgres {
    /// A cluster of `spec.nodes` nodes; nothing starts until [`setup`].
    ///
    /// [`setup`]: Database::setup
    pub fn new(spec: ClusterSpec) -> Result<Postgres, DbError> {
        if spec.nodes == 0 {
            return Err(DbError::Refused("--nodes must be at least 1".into()));
        }
        let bin = find_bin()?;
        Ok(Postgres {
            plugins_gated: gates_output_plugins(&bin),
            bin,
            run_as: RunAs::for_root("postgres")?,
            servers: Servers::new(spec.nodes, "PostgreSQL")?,
            ports: Vec::new(),
            schema: WORKLOAD_SCHEMA.iter().map(|s| s.to_string()).collect(),
            spec,
            remote: None,
        })
    }

    /// A cluster whose node `i` runs on `nodes[i]`'s host, with the
    /// PostgreSQL binaries in `bin` there (checked by the hosts'
    /// preflight); nothing starts until [`setup`](Database::setup).
    pub fn on_hosts(
        spec: ClusterSpec,
        nodes: Vec<RemoteNode>,
        bin: &str,
    ) -> Result<Postgres, DbError> {
        if nodes.len() != spec.nodes || spec.nodes == 0 {
            return Err(DbError::Refused(format!(
                "{} node(s) but {} host place(s)",
                spec.nodes,
                nodes.len()
            )));
        }
        Ok(Postgres {
            bin: PathBuf::from(bin),
            run_as: None,
            servers: Servers::new(0, "PostgreSQL")?,
            ports: nodes.iter().map(|n| n.port).collect(),
            schema: WORKLOAD_SCHEMA.iter().map(|s| s.to_string()).collect(),
            spec,
            remote: Some(RemoteServers::new("PostgreSQL", nodes)),
            // Asked of each host's server when it is configured.
            plugins_gated: false,
        })
    }

    /// A binary of the host's PostgreSQL (remote clusters).
    fn remote_bin(&self, tool: &str) -> String {
        crate::host::sh_quote(&self.bin.join(tool).display().to_string())
    }

    fn root(&self) -> &Path {
        self.servers.root()
    }

    fn data_dir(&self, i: usize) -> PathBuf {
        self.root().join(super::name_of(i))
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.root().join(format!("{}.log", super::name_of(i)))
    }

    /// Runs a server-side binary (`initdb`) as the server user.
    fn run_tool(&self, node: &str, tool: &str, args: &[&str]) -> Result<(), DbError> {
        let mut cmd = Command::new(self.bin.join(tool));
        cmd.args(args);
        RunAs::apply(self.run_as, &mut cmd);
        let out = cmd
            .output()
            .map_err(DbError::io(format!("{node}: run {tool}")))?;
        if !out.status.success() {
            return Err(DbError::Command {
                node: node.into(),
                command: format!("{tool} {}", args.join(" ")),
                output: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(())
    }

    /// Runs SQL on node `i` through `psql` over TCP (on this machine, or
    /// on the node's host when it is another).
    pub fn sql(&self, i: usize, sql: &str) -> Result<String, DbError> {
        if let Some(r) = &self.remote {
            let n = &r.nodes[i];
            return r.run(
                i,
                &format!("psql -c {sql:?}"),
                &format!(
                    "{} -h {} -p {} -U postgres -d postgres -qAtX -v ON_ERROR_STOP=1 -c {}",
                    self.remote_bin("psql"),
                    n.addr,
                    n.port,
                    crate::host::sh_quote(sql)
                ),
            );
        }
        let port = self.ports[i].to_string();
        let host = self.spec.ip(i).to_string();
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-h",
                &host,
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-qAtX",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .output()
            .map_err(DbError::io(format!("{}: run psql", super::name_of(i))))?;
        if !out.status.success() {
            return Err(DbError::Command {
                node: super::name_of(i),
                command: format!("psql -c {sql:?}"),
                output: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    }

    fn start(&mut self, i: usize) -> Result<(), DbError> {
        if let Some(r) = &mut self.remote {
            let argv = [
                self.bin.join("postgres").display().to_string(),
                "-D".into(),
                "db/data".into(),
            ];
            r.start(i, &argv)?;
            return self.wait_ready_remote(i, Duration::from_secs(30));
        }
        let node = super::name_of(i);
        let data = self.data_dir(i);
        let mut cmd = Command::new(self.bin.join("postgres"));
        cmd.arg("-D").arg(&data);
        self.servers.clock_env(i, &mut cmd);
        RunAs::apply(self.run_as, &mut cmd);
        let server = self.spec.spawn(i, cmd, &self.log_path(i), &node)?;
        self.servers.add(i, server, &data)?;
        self.wait_ready(i, Duration::from_secs(30))
    }

    fn wait_ready(&mut self, i: usize, limit: Duration) -> Result<(), DbError> {
        let node = super::name_of(i);
        let port = self.ports[i].to_string();
        let host = self.spec.ip(i).to_string();
        let t0 = Instant::now();
        loop {
            let ok = Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", &host, "-p", &port])
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return Ok(());
            }
            if self.servers.start_failed(i) || t0.elapsed() > limit {
                return Err(DbError::NotReady {
                    node,
                    secs: t0.elapsed().as_secs(),
                    log: self.log_path(i),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits on the node's host until its server accepts connections (one
    /// round trip: the loop runs there).
    fn wait_ready_remote(&self, i: usize, limit: Duration) -> Result<(), DbError> {
        let r = self.remote.as_ref().expect("a remote cluster");
        let n = &r.nodes[i];
        let name = super::name_of(i);
        let steps = limit.as_millis() / 100;
        let waited = r.run(
            i,
            "wait for the server to accept connections",
            &format!(
                "read p m < {name}.pid; k=0; until {} -q -h {} -p {}; do \
                 kill -0 $p 2>/dev/null || {{ echo exited; exit 0; }}; \
                 [ $k -lt {steps} ] || {{ echo late; exit 0; }}; sleep 0.1; k=$((k+1)); done",
                self.remote_bin("pg_isready"),
                n.addr,
                n.port
            ),
        )?;
        if waited.is_empty() {
            return Ok(());
        }
        let log = r.log(i);
        let tail: Vec<&str> = log.lines().rev().take(3).collect();
        Err(DbError::Refused(format!(
            "{name} on {}: the server {} (its log ends: {})",
            n.host.name(),
            if waited == "exited" {
                "exited while starting".to_string()
            } else {
                format!("did not accept connections within {} s", limit.as_secs())
            },
            tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
        )))
    }

    /// Creates, configures and starts every node on its host, the nodes in
    /// parallel (`initdb` on each host: they are different machines).
    fn start_remote_nodes(&mut self) -> Result<(), DbError> {
        self.remote
            .as_mut()
            .expect("a remote cluster")
            .prepare_dirs()?;
        let r = self.remote.as_ref().expect("a remote cluster");
        // Who connects: every node (replication) and this machine (the
        // clients), each by the address it reaches the others from.
        let mut peers: Vec<String> = r.nodes.iter().map(|n| n.addr.to_string()).collect();
        for n in &r.nodes {
            let me = local_addr_towards(std::net::SocketAddr::new(n.addr, n.port))?;
            peers.push(me.to_string());
        }
        peers.sort();
        peers.dedup();
        let initdb = self.remote_bin("initdb");
        r.each(|i| {
            let n = &r.nodes[i];
            r.run_as_server(
                i,
                "initdb",
                &format!(
                    "{initdb} -D db/data -A trust -U postgres -E UTF8 --locale=C --no-sync > db/initdb.log 2>&1 || \
                     {{ tail -n 3 db/initdb.log >&2; exit 1; }}"
                ),
            )?;
            let mut conf = vec![
                "# Ladon".to_string(),
                format!("listen_addresses = '{}'", n.addr),
                format!("port = {}", n.port),
                "unix_socket_directories = ''".to_string(),
            ];
            conf.extend(SETTINGS.iter().map(|(k, v)| format!("{k} = {v}")));
            let mut hba = Vec::new();
            for p in &peers {
                let cidr = if p.contains(':') { format!("{p}/128") } else { format!("{p}/32") };
                hba.push(format!("host all all {cidr} trust"));
                hba.push(format!("host replication all {cidr} trust"));
            }
            let lines = |ls: &[String]| {
                ls.iter()
                    .map(|l| crate::host::sh_quote(l))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            r.run_as_server(
                i,
                "configure the server",
                &format!(
                    "printf '\\n%s\\n' {} >> db/data/postgresql.conf && printf '%s\\n' {} >> db/data/pg_hba.conf && \
                     if {} --describe-config 2>/dev/null | grep -q '^output_plugin_libraries\t'; then \
                     printf '%s\\n' {} >> db/data/postgresql.conf; fi",
                    lines(&conf),
                    lines(&hba),
                    self.remote_bin("postgres"),
                    crate::host::sh_quote(PLUGINS_SETTING)
                ),
            )
            .map(|_| ())
        })?;
        let r = self.remote.as_mut().expect("a remote cluster");
        r.make_clocks()?;
        for i in 0..self.spec.nodes {
            self.start(i)?;
        }
        Ok(())
    }

    fn configure(&self, i: usize) -> Result<(), DbError> {
        let data = self.data_dir(i);
        let mut conf = format!(
            "\n# Ladon\nlisten_addresses = '{}'\nport = {}\nunix_socket_directories = '{}'\n",
            self.spec.ip(i),
            self.ports[i],
            self.root().display()
        );
        for (k, v) in SETTINGS {
            conf.push_str(&format!("{k} = {v}\n"));
        }
        if self.plugins_gated {
            conf.push_str(&format!("{PLUGINS_SETTING}\n"));
        }
        append(&data.join("postgresql.conf"), &conf)?;
        append(
            &data.join("pg_hba.conf"),
            &format!(
                "host all all {net} trust\nhost replication all {net} trust\n",
                net = self.spec.clients_cidr()
            ),
        )
    }

    fn dsn(&self, i: usize) -> String {
        dsn(self.addr(i))
    }

    fn replicate_via(&self, via: LinkAddr<'_>) -> Result<(), DbError> {
        let n = self.spec.nodes;
        for i in 0..n {
            self.sql(i, "CREATE EXTENSION pglogical")?;
            self.sql(
                i,
                &format!(
                    "SELECT pglogical.create_node(node_name := '{}', dsn := '{}')",
                    super::name_of(i),
                    self.dsn(i)
                ),
            )?;
            for s in &self.schema {
                self.sql(i, s)?;
            }
            self.sql(
                i,
                "SELECT pglogical.replication_set_add_all_tables('default', ARRAY['public'])",
            )?;
        }
        // Mesh: each node subscribes to every other node's own changes
        // only (forward_origins empty), so a write never loops. Ring and
        // star relay (forward_origins all): pglogical tags a change with its
        // origin only one hop deep, so a relayed write comes back to where
        // it started and is applied there again (docs/real-systems.md).
        let links = super::replication_links(self.spec.topology, n);
        for l in &links {
            self.sql(
                l.to,
                &format!(
                    "SELECT pglogical.create_subscription(subscription_name := '{}', \
                     provider_dsn := '{}', replication_sets := ARRAY['default'], \
                     synchronize_structure := false, synchronize_data := false, \
                     forward_origins := '{}')",
                    subscription(l.from, l.to),
                    dsn(via(l.from, l.to)),
                    if l.relay { "{all}" } else { "{}" }
                ),
            )?;
        }
        for l in &links {
            self.sql(
                l.to,
                &format!(
                    "SELECT pglogical.wait_for_subscription_sync_complete('{}')",
                    subscription(l.from, l.to)
                ),
            )?;
        }
        Ok(())
    }
}

/// This machine's address on the route to `to` (what a server there sees
/// Ladon's clients come from). Sends nothing.
fn local_addr_towards(to: SocketAddr) -> Result<std::net::IpAddr, DbError> {
    let any: SocketAddr = if to.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = std::net::UdpSocket::bind(any).map_err(DbError::io("open a UDP socket"))?;
    sock.connect(to)
        .and_then(|()| sock.local_addr())
        .map(|a| a.ip())
        .map_err(DbError::io(format!(
            "find this machine's address towards {to}"
        )))
}

fn dsn(addr: SocketAddr) -> String {
    format!(
        "host={} port={} dbname=postgres user=postgres",
        addr.ip(),
        addr.port()
    )
}

/// The changes pglogical skipped on `node` (see
/// [`Database::replication_problems`]): one line per kind (UPDATE,
/// DELETE), with their count and the first one's time and tuple.
fn skipped_changes(node: &str, log: &str) -> Vec<String> {
    const SKIP: &str = "(tuple not found). Resolution: skip.";
    let mut kinds: Vec<(&str, usize, String)> = Vec::new();
    let mut lines = log.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(at) = line.find("CONFLICT: remote ") else {
            continue;
        };
        if !line.ends_with(SKIP) {
            continue;
        }
        let kind = line[at + "CONFLICT: remote ".len()..]
            .split(' ')
            .next()
            .unwrap_or("change");
        if let Some(k) = kinds.iter_mut().find(|k| k.0 == kind) {
            k.1 += 1;
            continue;
        }
        let time = line.split(" [").next().unwrap_or("").trim();
        let tuple = lines
            .peek()
            .and_then(|d| d.split("DETAIL:  ").nth(1))
            .map(|d| format!(": {}", d.split(" in xact").next().unwrap_or(d)))
            .unwrap_or_default();
        kinds.push((kind, 1, format!("first at {time}{tuple}")));
    }
    kinds
        .into_iter()
        .map(|(kind, n, first)| {
            format!(
                "{node} skipped {n} remote {kind}{} of a row it did not have \
                 (pglogical: tuple not found, resolution skip; {first}); a skipped \
                 change is lost for good: when the row's INSERT arrives later, \
                 {node} keeps a value the other nodes no longer have",
                if n == 1 { "" } else { "s" }
            )
        })
        .collect()
}

/// The subscription on `to` that pulls `from`'s changes.
fn subscription(from: usize, to: usize) -> String {
    format!("from_n{}_to_n{}", from + 1, to + 1)
}

fn append(path: &Path, text: &str) -> Result<(), DbError> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(DbError::io(format!("append to {}", path.display())))
}

impl Database for Postgres {
    fn name(&self) -> &'static str {
        "postgres-pglogical"
    }

    fn nodes(&self) -> Vec<String> {
        (0..self.spec.nodes).map(super::name_of).collect()
    }

    fn enable_clock_faults(&mut self, library: &Path) -> Result<(), DbError> {
        if let Some(r) = &mut self.remote {
            r.enable_clock_faults(library);
            return Ok(());
        }
        self.servers.enable_clock_faults(library)
    }

    fn set_clock(&self, i: usize, offset_ns: i64) -> Result<(), DbError> {
        if let Some(r) = &self.remote {
            return r.set_clock(i, offset_ns);
        }
        self.servers.set_clock(i, offset_ns)
    }

    fn replicate(&mut self, via: LinkAddr<'_>) -> Result<(), DbError> {
        self.replicate_via(via)
    }

    fn connect(
        &self,
        i: usize,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Box<dyn DbClient>, String>> {
        let addr = self.addr(i);
        #[cfg(feature = "postgres")]
        return Box::pin(async move {
            super::sql::SqlClient::connect(addr, timeout)
                .await
                .map(|c| Box::new(c) as Box<dyn DbClient>)
        });
        #[cfg(not(feature = "postgres"))]
        {
            let _ = timeout;
            Box::pin(async move {
                Err(format!(
                    "connect to {addr}: ladon-adapters was built without its `postgres` feature"
                ))
            })
        }
    }

    fn data_dir(&self, i: usize) -> Option<PathBuf> {
        if self.remote.is_some() {
            return None; // on its host, not copied back
        }
        self.servers
            .data_root()
            .map(|_| Postgres::data_dir(self, i))
    }

    fn is_up(&self, i: usize) -> bool {
        match &self.remote {
            Some(r) => r.is_up(i),
            None => self.servers.is_up(i),
        }
    }

    fn start_nodes(&mut self) -> Result<(), DbError> {
        if self.remote.is_some() {
            return self.start_remote_nodes();
        }
        self.servers.create_root("ladon-postgres-")?;
        RunAs::chown(self.run_as, self.root())?;
        self.ports = free_ports(self.spec.nodes)?;
        let template = self.root().join("template");
        self.run_tool(
            "n1",
            "initdb",
            &[
                "-D",
                template.to_str().unwrap_or_default(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        )?;
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
            self.configure(i)?;
        }
        let _ = std::fs::remove_dir_all(&template);
        self.servers.make_clocks()?;
        for i in 0..self.spec.nodes {
            self.start(i)?;
        }
        Ok(())
    }

    fn addr(&self, i: usize) -> SocketAddr {
        if let Some(r) = &self.remote {
            return SocketAddr::new(r.nodes[i].addr, r.nodes[i].port);
        }
        SocketAddr::new(self.spec.ip(i), self.ports[i])
    }

    fn kill(&mut self, i: usize) -> Result<(), DbError> {
        match &mut self.remote {
            Some(r) => r.kill(i),
            None => self.servers.kill(i),
        }
        Ok(())
    }

    fn restart(&mut self, i: usize) -> Result<(), DbError> {
        if self.is_up(i) {
            return Ok(());
        }
        self.start(i)
    }

    fn pause(&mut self, i: usize) -> Result<(), DbError> {
        match &self.remote {
            Some(r) => r.signal(i, libc::SIGSTOP),
            None => self.servers.pause(i),
        }
        Ok(())
    }

    fn resume(&mut self, i: usize) -> Result<(), DbError> {
        match &self.remote {
            Some(r) => r.signal(i, libc::SIGCONT),
            None => self.servers.resume(i),
        }
        Ok(())
    }

    fn exited_by_themselves(&mut self) -> Vec<String> {
        match &mut self.remote {
            Some(r) => r.exited_by_themselves(),
            None => self.servers.exited_by_themselves(),
        }
    }

    /// pglogical never stops a subscription on a conflict, but it drops
    /// changes for good: a remote UPDATE or DELETE of a row the node does
    /// not have (yet) is skipped (`tuple not found … Resolution: skip`).
    /// When the row's INSERT arrives later, by another path, the node keeps
    /// a value the others overwrote: a divergence that never heals. Read
    /// from each server's log; with subscriptions not replicating after
    /// the final phase (`pglogical.show_subscription_status()`).
    fn replication_problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for i in 0..self.spec.nodes {
            let node = super::name_of(i);
            let log = match &self.remote {
                Some(r) => Some(r.log(i)),
                None => std::fs::read_to_string(self.log_path(i)).ok(),
            };
            if let Some(log) = log {
                out.extend(skipped_changes(&node, &log));
            }
            if !self.is_up(i) {
                continue;
            }
            match self.sql(
                i,
                "SELECT string_agg(subscription_name || ' ' || status, ',' \
                 ORDER BY subscription_name) FROM pglogical.show_subscription_status() \
                 WHERE status <> 'replicating'",
            ) {
                Ok(down) => out.extend(
                    down.split(',')
                        .filter(|s| !s.is_empty())
                        .map(|s| format!("subscription {s} on {node} (not replicating)")),
                ),
                Err(e) => out.push(format!("replication status of {node} unknown: {e}")),
            }
        }
        out
    }

    fn collect_logs(&self, into: &Path) -> Result<(), DbError> {
        if let Some(r) = &self.remote {
            return r.collect_logs(into);
        }
        let logs: Vec<(String, PathBuf)> = (0..self.spec.nodes)
            .map(|i| (super::name_of(i), self.log_path(i)))
            .collect();
        append_logs(&logs, into)
    }

    fn teardown(&mut self) -> Result<(), DbError> {
        if let Some(r) = &mut self.remote {
            // SIGQUIT: PostgreSQL's immediate shutdown.
            return r.teardown("QUIT", Duration::from_secs(5));
        }
        self.servers
            // SIGQUIT: PostgreSQL's immediate shutdown.
            .teardown(Shutdown::Signal(libc::SIGQUIT, Duration::from_secs(5)))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}

/// The directory this cluster's data lives in while it runs (for tests).
impl Postgres {
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
    use super::skipped_changes;

    #[test]
    fn skipped_changes_are_counted_per_kind_with_the_first_tuple() {
        let log = "\
2026-11-30 10:45:10.353 UTC [17310] LOG:  CONFLICT: remote UPDATE on relation public.registers (local index registers_pkey). Resolution: apply_remote.
2026-11-30 10:45:11.001 UTC [17310] LOG:  CONFLICT: remote UPDATE on relation public.registers replica identity index registers_pkey (tuple not found). Resolution: skip.
2026-11-30 10:45:11.001 UTC [17310] DETAIL:  remote tuple {k[text]:'7' v[bigint]:89} in xact origin=1,timestamp=2026-11-30 10:45:10.990+00,commit_lsn=0/1A2B3C
2026-11-30 10:45:12.500 UTC [17310] LOG:  CONFLICT: remote UPDATE on relation public.registers replica identity index registers_pkey (tuple not found). Resolution: skip.
2026-11-30 10:45:12.500 UTC [17310] DETAIL:  remote tuple {k[text]:'8' v[bigint]:90} in xact origin=1,timestamp=2026-11-30 10:45:12.490+00,commit_lsn=0/1A2B4C
";
        assert_eq!(
            skipped_changes("n2", log),
            [
                "n2 skipped 2 remote UPDATEs of a row it did not have (pglogical: tuple not \
              found, resolution skip; first at 2026-11-30 10:45:11.001 UTC: remote tuple \
              {k[text]:'7' v[bigint]:89}); a skipped change is lost for good: when the \
              row's INSERT arrives later, n2 keeps a value the other nodes no longer have"
            ]
        );
        assert!(skipped_changes("n1", "LOG:  database system is ready\n").is_empty());
    }
}
