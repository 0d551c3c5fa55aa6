//! `ladon run --hosts FILE`: process-adapter nodes on other machines over
//! SSH (docs/remote-hosts.md). Reads and validates the hosts file, then
//! (before the run directory exists) connects to each host once, checks it
//! has what the run needs, kills what an earlier run left behind, and
//! uploads the node's program and files into one directory per node.
//!
//! ```toml
//! files = ["maelstrom.py"]        # uploaded beside the program
//!
//! [[host]]
//! address = "10.0.0.11"
//! port = 22                       # default 22
//! user = "ladon"                  # default: ssh's
//! identity = "~/.ssh/ladon"       # default: ssh's
//! workdir = "/var/tmp/ladon"      # default: ladon (in the user's home)
//! sudo = false                    # run the nodes under `sudo -n`
//! ssh_options = ["StrictHostKeyChecking=accept-new"]
//! ```

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ladon_adapters::host::tar::{self, Entry};
use ladon_adapters::host::{sh_quote, Host, SshConfig, SshHost};
use ladon_adapters::process::child::RemoteNode;
use serde::Deserialize;
use toml::Spanned;

/// A validated hosts file.
#[derive(Debug, Clone)]
pub struct HostsFile {
    /// The file, as given (errors name it).
    pub path: PathBuf,
    pub hosts: Vec<HostEntry>,
    /// Local files uploaded beside the program on every host.
    pub files: Vec<PathBuf>,
}

/// One `[[host]]` entry.
#[derive(Debug, Clone)]
pub struct HostEntry {
    /// 1-based entry number and line, for errors.
    pub index: usize,
    pub line: usize,
    pub ssh: SshConfig,
    /// The directory on the host under which each node gets its own.
    pub workdir: String,
}

impl HostEntry {
    /// `hosts.toml: host 2 (line 7, root@127.0.0.1:2222)`.
    pub fn describe(&self, file: &Path) -> String {
        format!(
            "{}: host {} (line {}, {})",
            file.display(),
            self.index,
            self.line,
            self.ssh.name()
        )
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    files: Vec<Spanned<String>>,
    #[serde(default)]
    host: Vec<Spanned<RawHost>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    address: Spanned<String>,
    #[serde(default = "default_port")]
    port: Spanned<i64>,
    user: Option<Spanned<String>>,
    identity: Option<Spanned<String>>,
    workdir: Option<Spanned<String>>,
    #[serde(default)]
    sudo: bool,
    #[serde(default)]
    ssh_options: Vec<Spanned<String>>,
    #[serde(default = "default_timeout")]
    connect_timeout: Spanned<i64>,
}

fn default_port() -> Spanned<i64> {
    Spanned::new(0..0, 22)
}

fn default_timeout() -> Spanned<i64> {
    Spanned::new(0..0, 10)
}

fn line_of(src: &str, span: Range<usize>) -> usize {
    src[..span.start.min(src.len())].matches('\n').count() + 1
}

/// `~/x` and paths relative to the hosts file's directory, made absolute.
fn local_path(s: &str, base: &Path) -> PathBuf {
    if let Some(rest) = s.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    let p = PathBuf::from(s);
    if p.is_absolute() {
        p
    } else {
        base.join(p)
    }
}

/// Reads and validates a hosts file.
pub fn load(path: &Path) -> Result<HostsFile, String> {
    let src = std::fs::read_to_string(path)
        .map_err(|e| format!("--hosts {}: cannot read it: {e}", path.display()))?;
    parse(&src, path)
}

/// Parses hosts-file text; `path` names it in errors and is the base of
/// relative paths in it.
pub fn parse(src: &str, path: &Path) -> Result<HostsFile, String> {
    let name = path.display().to_string();
    let raw: RawFile =
        toml::from_str(src).map_err(|e| format!("{name}: {}", e.to_string().trim_end()))?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let invalid =
        |span: Range<usize>, what: String| format!("{name}:{}: {what}", line_of(src, span));
    if raw.host.is_empty() {
        return Err(format!(
            "{name}: no [[host]] entry (each needs at least address = \"...\")"
        ));
    }
    let mut files = Vec::new();
    for f in &raw.files {
        let p = local_path(f.get_ref(), &base);
        if !p.is_file() {
            return Err(invalid(
                f.span(),
                format!("files: {} is not a file", p.display()),
            ));
        }
        files.push(p);
    }
    // Each entry's line: its `[[host]]` header (an inline table: its span).
    let headers: Vec<usize> = src
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with("[[host]]"))
        .map(|(n, _)| n + 1)
        .collect();
    let mut hosts = Vec::new();
    for (i, h) in raw.host.iter().enumerate() {
        let line = headers
            .get(i)
            .copied()
            .unwrap_or_else(|| line_of(src, h.span()));
        let entry = h.get_ref();
        let index = i + 1;
        let bad = |span: Range<usize>, what: String| invalid(span, format!("host {index}: {what}"));
        let address = entry.address.get_ref().trim();
        if address.is_empty() || address.contains(char::is_whitespace) {
            return Err(bad(
                entry.address.span(),
                format!(
                    "address {:?} is not a host name or address",
                    entry.address.get_ref()
                ),
            ));
        }
        let port = *entry.port.get_ref();
        let port = u16::try_from(port)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad(entry.port.span(), format!("port {port} is not 1 to 65535")))?;
        let identity = match &entry.identity {
            Some(id) => {
                let p = local_path(id.get_ref(), &base);
                if !p.is_file() {
                    return Err(bad(
                        id.span(),
                        format!("identity {}: no such file", p.display()),
                    ));
                }
                Some(p)
            }
            None => None,
        };
        let timeout = *entry.connect_timeout.get_ref();
        if !(1..=600).contains(&timeout) {
            return Err(bad(
                entry.connect_timeout.span(),
                format!("connect_timeout {timeout} is not 1 to 600 (seconds)"),
            ));
        }
        let workdir = match &entry.workdir {
            Some(w) if w.get_ref().trim().is_empty() => {
                return Err(bad(w.span(), "workdir is empty".into()))
            }
            Some(w) => w.get_ref().clone(),
            None => "ladon".to_string(),
        };
        let user = match &entry.user {
            Some(u) if u.get_ref().is_empty() || u.get_ref().contains(['@', ' ']) => {
                return Err(bad(
                    u.span(),
                    format!("user {:?} is not a user name", u.get_ref()),
                ))
            }
            Some(u) => Some(u.get_ref().clone()),
            None => None,
        };
        let mut options = Vec::new();
        for o in &entry.ssh_options {
            if !o.get_ref().contains('=') {
                return Err(bad(
                    o.span(),
                    format!("ssh_options: {:?} is not Key=Value", o.get_ref()),
                ));
            }
            options.push(o.get_ref().clone());
        }
        hosts.push(HostEntry {
            index,
            line,
            ssh: SshConfig {
                address: address.to_string(),
                port,
                user,
                identity,
                sudo: entry.sudo,
                options,
                connect_timeout: Duration::from_secs(timeout as u64),
            },
            workdir,
        });
    }
    Ok(HostsFile {
        path: path.to_path_buf(),
        hosts,
        files,
    })
}

/// What the run needs from every host.
#[derive(Debug, Clone)]
pub struct Needs {
    /// The node program (uploaded).
    pub bin: PathBuf,
    /// libfaketime's path on the hosts, when the clock fault is on.
    pub faketime: Option<PathBuf>,
    /// Partitions are nftables rules on the hosts
    /// ([`ladon_adapters::host::nft::Partitions`]): `nft`, and the right to
    /// use it, are checked. Process-adapter runs need none (their router
    /// carries every message).
    pub nftables: bool,
}

/// The interpreter a script's `#!` line names, as a preflight check:
/// `python3` for `#!/usr/bin/env python3`, the path otherwise; `None` for
/// a binary.
pub fn interpreter(bin: &Path) -> Option<String> {
    use std::io::Read as _;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(bin).ok()?.read(&mut head).ok()?;
    let text = std::str::from_utf8(&head[..n]).ok()?;
    let line = text.strip_prefix("#!")?.lines().next()?.trim();
    let mut words = line.split_whitespace();
    let first = words.next()?;
    if first.ends_with("/env") {
        words.find(|w| !w.starts_with('-')).map(str::to_string)
    } else {
        Some(first.to_string())
    }
}

/// The hosts of a run, connected, checked and holding the program: one
/// [`RemoteNode`] per node (node `i` on host `i mod H`).
pub struct Prepared {
    pub nodes: Vec<RemoteNode>,
    /// The connected hosts, in file order (those used).
    pub hosts: Vec<Arc<SshHost>>,
    /// The run may leave nftables rules (removed at the end).
    nftables: bool,
}

impl Drop for Prepared {
    /// The end of the run (every node already stopped): each node's pid
    /// file and libfaketime file are removed from its host, one command per
    /// host through its control shell; then the connections close.
    fn drop(&mut self) {
        for host in &self.hosts {
            let files: Vec<String> = self
                .nodes
                .iter()
                .filter(|n| std::ptr::addr_eq(Arc::as_ptr(&n.host), Arc::as_ptr(host)))
                .flat_map(|n| {
                    let node = n.dir.rsplit('/').next().unwrap_or("");
                    ["pid", "faketime", "faketime.tmp"]
                        .map(|ext| sh_quote(&format!("{}/{node}.{ext}", n.dir)))
                })
                .collect();
            let mut script = String::new();
            if !files.is_empty() {
                script.push_str(&format!("rm -f {}; ", files.join(" ")));
            }
            if self.nftables {
                script.push_str(&ladon_adapters::host::nft::remove_script());
            }
            if !script.is_empty() {
                let _ = host.run(&script);
            }
            host.close();
        }
    }
}

/// `who: what`, without the host's own name that [`SshHost`]'s errors
/// start with (`who` already names it).
fn own(who: &str, entry: &HostEntry, e: std::io::Error) -> String {
    let text = e.to_string();
    let name = format!("{}: ", entry.ssh.name());
    format!("{who}: {}", text.strip_prefix(&name).unwrap_or(&text))
}

/// The preflight script of one host: checks, then (only if nothing is
/// missing) the sweep of an earlier run's leftovers, then the upload, a
/// tar stream read from stdin and extracted into the workdir. One session.
fn prep_script(
    entry: &HostEntry,
    interp: Option<&String>,
    bin_name: &str,
    needs: &Needs,
) -> String {
    let mut script = workdir_script(entry);
    let mut tools = vec![
        "sh".to_string(),
        "grep".into(),
        "kill".into(),
        "cat".into(),
        "mv".into(),
        "tar".into(),
        "base64".into(),
        "mktemp".into(),
        "wc".into(),
    ];
    if let Some(i) = interp {
        tools.push(i.clone());
    }
    for t in &tools {
        let why = if Some(t) == interp {
            format!(" (the #! interpreter of {bin_name})")
        } else {
            String::new()
        };
        script.push_str(&tool_check(t, &why));
    }
    script.push_str(&checks_then_sweep(
        needs.faketime.as_deref(),
        needs.nftables,
    ));
    script
}

/// The start of every preflight: into the workdir (made if missing), which
/// must be writable, printing its absolute path; `m` collects what is
/// missing.
fn workdir_script(entry: &HostEntry) -> String {
    let wd = sh_quote(&entry.workdir);
    format!(
        "mkdir -p {wd} 2>/dev/null && cd {wd} && test -w . || {{ echo \"missing: a writable workdir {}\"; exit 0; }}; pwd; m=; ",
        entry.workdir.replace(['"', '$', '`', '\\'], "_")
    )
}

/// A preflight check that tool `t` (a command, or a path) is there; `why`
/// follows its name in the `missing:` line.
fn tool_check(t: &str, why: &str) -> String {
    let q = sh_quote(t);
    let test = if t.starts_with('/') {
        format!("test -x {q}")
    } else {
        format!("command -v {q} >/dev/null")
    };
    format!("{test} || {{ echo \"missing: {t}{why}\"; m=1; }}; ")
}

/// The end of every preflight's checks: libfaketime at `faketime` (a path
/// on the host) and the right to run `nft` when asked, then nothing more if
/// anything is missing, else the sweep.
fn checks_then_sweep(faketime: Option<&Path>, nftables: bool) -> String {
    let mut script = String::new();
    if let Some(lib) = faketime {
        let lib = lib.display().to_string();
        script.push_str(&format!(
            "test -e {} || {{ echo \"missing: libfaketime at {lib} (for --nemesis clock)\"; m=1; }}; ",
            sh_quote(&lib)
        ));
    }
    if nftables {
        script.push_str(
            "if command -v nft >/dev/null; then nft list tables >/dev/null 2>&1 || \
             { echo \"missing: the right to run nft (root, or sudo = true) for partitions\"; m=1; }; \
             else echo \"missing: nft (nftables, for partitions)\"; m=1; fi; ",
        );
    }
    script.push_str("[ -z \"$m\" ] || exit 0; ");
    script.push_str(&sweep_script());
    script
}

/// The preflight's sweep of what an earlier run on the host left (Ladon
/// killed with SIGKILL), run in the workdir once every check passed.
fn sweep_script() -> String {
    // A Ladon table left by a run killed with SIGKILL (one run at a time
    // per host: a table named ladon is Ladon's).
    let mut script = ladon_adapters::host::nft::sweep_script();
    // Each node directory's pid file names a pid and its marker (a node
    // program, or a database server and its process group); a control
    // shell's directory names its shell's pid; a database node's data
    // (`db/`) goes with it.
    script.push_str(
        "for f in */*.pid; do [ -f \"$f\" ] || continue; read p m < \"$f\"; \
         if grep -qzx \"LADON_NODE=$m\" /proc/$p/environ 2>/dev/null; then \
         kill -s KILL -- -$p 2>/dev/null; kill -s KILL $p 2>/dev/null; echo \"killed: $p\"; fi; \
         rm -f \"$f\" /dev/shm/faketime_shm_$p /dev/shm/sem.faketime_sem_$p; done; rm -f */*.faketime */*.faketime.tmp; \
         rm -rf */db; \
         for d in \"${TMPDIR:-/tmp}\"/ladon-ctl-*; do [ -d \"$d\" ] || continue; p=${d##*/ladon-ctl-}; \
         p=${p%%.*}; [ -d /proc/$p ] || rm -rf \"$d\"; done; ",
    );
    script
}

/// Archives up to this size travel inside the preflight command, which the
/// host's control shell runs without a session of its own; larger ones on
/// the stdin of a session.
const EMBED_MAX: usize = 16 << 20;

/// Connects to the first `used` hosts of `file`: every master connection
/// at once (on this thread, which outlives the run: the ssh clients die
/// with the thread that started them), then each host's control shell; an
/// error names the first host (in file order) that failed.
fn connect(file: &HostsFile, used: usize) -> Result<Vec<Arc<SshHost>>, String> {
    let configs: Vec<SshConfig> = file.hosts[..used].iter().map(|e| e.ssh.clone()).collect();
    let mut hosts: Vec<Arc<SshHost>> = Vec::new();
    for (entry, host) in file.hosts[..used]
        .iter()
        .zip(SshHost::connect_all(&configs))
    {
        let who = entry.describe(&file.path);
        let host = host.map_err(|e| own(&who, entry, e))?;
        host.open_control().map_err(|e| own(&who, entry, e))?;
        hosts.push(Arc::new(host));
    }
    Ok(hosts)
}

/// One host's preflight: the script, and what goes to its stdin (`None`:
/// nothing; the script then runs in the control shell).
type Preflight = (String, Option<Vec<u8>>);

/// Runs each host's preflight (made by `script_of(h)`), the hosts in
/// parallel. A `missing: X` line is the error `host …: missing X`;
/// `removed:` and `killed:` lines are said on stderr. Returns each host's
/// stdout, whose first line is its workdir, absolute. `after_workdir` says
/// what failed when the script failed past printing it.
fn run_preflights(
    file: &HostsFile,
    hosts: &[Arc<SshHost>],
    after_workdir: &str,
    script_of: impl Fn(usize) -> Result<Preflight, String> + Sync,
) -> Result<Vec<String>, String> {
    let results: Vec<Result<String, String>> = std::thread::scope(|scope| {
        let jobs: Vec<_> = (0..hosts.len())
            .map(|h| {
                let (host, entry, script_of) = (&hosts[h], &file.hosts[h], &script_of);
                scope.spawn(move || {
                    let who = entry.describe(&file.path);
                    let (script, input) = script_of(h).map_err(|e| format!("{who}: {e}"))?;
                    let out = match input {
                        None => host.run(&script),
                        Some(data) => host.run_with_input(&script, &data),
                    }
                    .map_err(|e| own(&who, entry, e))?;
                    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
                    if let Some(m) = stdout.lines().find_map(|l| l.strip_prefix("missing: ")) {
                        return Err(format!("{who}: missing {m}"));
                    }
                    let abs = stdout.lines().next().filter(|l| l.starts_with('/'));
                    if !out.status.success() {
                        let last = ladon_adapters::host::last_stderr_line(&out);
                        let what = if abs.is_some() {
                            format!("{after_workdir}: {last}")
                        } else if entry.ssh.sudo {
                            format!("missing passwordless sudo (sudo -n): {last}")
                        } else {
                            format!("the preflight check failed: {last}")
                        };
                        return Err(format!("{who}: {what}"));
                    }
                    for removed in stdout.lines().filter_map(|l| l.strip_prefix("removed: ")) {
                        eprintln!("ladon: {who}: removed the {removed} an earlier run left behind");
                    }
                    let killed = stdout.lines().filter(|l| l.starts_with("killed: ")).count();
                    if killed > 0 {
                        eprintln!(
                            "ladon: {who}: killed {killed} node process(es) an earlier run left behind"
                        );
                    }
                    if abs.is_none() {
                        return Err(format!(
                            "{who}: the preflight check printed no workdir: {stdout:?}"
                        ));
                    }
                    Ok(stdout)
                })
            })
            .collect();
        jobs.into_iter()
            .map(|j| {
                j.join()
                    .unwrap_or_else(|_| Err("the preflight panicked".into()))
            })
            .collect()
    });
    results.into_iter().collect()
}

/// Connects to the hosts `nodes` run on (each once), checks each, sweeps
/// leftovers of an earlier run and uploads the program and files into
/// `<workdir>/<node>`: one session per host, the hosts in parallel. Every
/// error is one line naming the host (the first host in file order that
/// failed).
pub fn prepare(file: &HostsFile, names: &[String], needs: &Needs) -> Result<Prepared, String> {
    let used = names.len().min(file.hosts.len());
    let bin_name = needs
        .bin
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "node".into());
    let interp = interpreter(&needs.bin);
    let read =
        |p: &Path| std::fs::read(p).map_err(|e| format!("{}: cannot read it: {e}", p.display()));
    let bin = read(&needs.bin)?;
    let mut extra = Vec::new();
    for f in &file.files {
        let fname = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        extra.push((fname, read(f)?));
    }
    let hosts = connect(file, used)?;
    // One session per host, all at once: checks, sweep, upload.
    let outputs = run_preflights(file, &hosts, "cannot upload the program", |h| {
        let entry = &file.hosts[h];
        let mut dirs = Vec::new();
        let mut files = Vec::new();
        for name in names.iter().skip(h).step_by(used) {
            dirs.push(name.clone());
            files.push(Entry {
                path: format!("{name}/{bin_name}"),
                mode: 0o755,
                data: bin.clone(),
            });
            for (fname, data) in &extra {
                files.push(Entry {
                    path: format!("{name}/{fname}"),
                    mode: 0o644,
                    data: data.clone(),
                });
            }
        }
        let stream = tar::archive(&dirs, &files).map_err(|e| e.to_string())?;
        let script = prep_script(entry, interp.as_ref(), &bin_name, needs);
        Ok(if stream.len() <= EMBED_MAX {
            (
                format!(
                    "{script}printf '%s' {} | base64 -d | tar -xof -",
                    tar::base64(&stream)
                ),
                None,
            )
        } else {
            (format!("{script}tar -xof -"), Some(stream))
        })
    })?;
    let workdirs: Vec<String> = outputs
        .iter()
        .map(|o| o.lines().next().unwrap_or_default().to_string())
        .collect();
    let nodes = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let h = i % used;
            let dir = format!("{}/{name}", workdirs[h]);
            RemoteNode {
                host: hosts[h].clone() as Arc<dyn Host>,
                program: format!("{dir}/{bin_name}"),
                dir,
            }
        })
        .collect();
    Ok(Prepared {
        nodes,
        hosts,
        nftables: needs.nftables,
    })
}

/// What a database run needs from every host.
#[derive(Debug, Clone)]
pub struct DbNeeds {
    /// The server user when the login is root (`postgres`).
    pub server_user: &'static str,
    /// libfaketime's path on the hosts, when clocks are faulted.
    pub faketime: Option<PathBuf>,
    /// Partitions are nftables rules on the hosts.
    pub nftables: bool,
}

/// The hosts of a database run, connected and checked: one
/// [`RemoteNode`](ladon_adapters::db::remote::RemoteNode) per node (node `i`
/// on host `i mod H`), the PostgreSQL binaries' directory there, and the
/// partitions between the nodes. Dropping it heals the partitions,
/// removes the hosts' nftables table (when partitions were used) and
/// closes the connections; the cluster must be torn down first.
pub struct PreparedDb {
    pub nodes: Vec<ladon_adapters::db::remote::RemoteNode>,
    /// The PostgreSQL binaries' directory on the hosts (the first host's:
    /// every host must have the same one).
    pub bin: String,
    pub partitions: Option<ladon_adapters::host::nft::Partitions>,
    hosts: Vec<Arc<SshHost>>,
    nftables: bool,
}

impl Drop for PreparedDb {
    fn drop(&mut self) {
        drop(self.partitions.take());
        for host in &self.hosts {
            if self.nftables {
                let _ = host.run(&ladon_adapters::host::nft::remove_script());
            }
            host.close();
        }
    }
}

/// The first port a database node listens on (`n1`; `nK` on this plus
/// K-1), on its host's address.
pub const DB_BASE_PORT: u16 = 15432;

/// The preflight of one database host: the workdir, the tools, PostgreSQL
/// with pglogical, the server user when the login is root (and its access
/// to the workdir), libfaketime and nft when needed; then the sweep, and
/// this host's node directories made.
fn db_prep_script(entry: &HostEntry, dirs: &[String], needs: &DbNeeds) -> String {
    let mut script = workdir_script(entry);
    for t in [
        "sh", "grep", "kill", "cat", "setsid", "sleep", "printf", "chmod",
    ] {
        script.push_str(&tool_check(t, ""));
    }
    script.push_str(
        "b=; for v in 17 16 15 14 13; do d=/usr/lib/postgresql/$v; \
         if [ -x $d/bin/postgres ] && [ -x $d/bin/initdb ] && [ -x $d/bin/psql ] && [ -x $d/bin/pg_isready ] \
         && [ -e $d/lib/pglogical.so ]; then b=$d/bin; break; fi; done; \
         if [ -n \"$b\" ]; then echo \"pgbin: $b\"; else echo \"missing: PostgreSQL with pglogical \
         (/usr/lib/postgresql/<version>/bin and lib/pglogical.so; apt-get install postgresql-15 postgresql-15-pglogical)\"; m=1; fi; ",
    );
    let u = needs.server_user;
    script.push_str(&format!(
        "if [ \"$(id -u)\" = 0 ]; then \
         if ! id -u {u} >/dev/null 2>&1; then echo \"missing: a {u} user to run the servers as (the login is root, and database servers never run as root)\"; m=1; \
         elif ! command -v setpriv >/dev/null; then echo \"missing: setpriv (util-linux), to run the servers as {u}\"; m=1; \
         elif ! setpriv --reuid={u} --regid={u} --init-groups -- test -x \"$PWD\"; then \
         echo \"missing: access for the {u} user to the workdir $PWD (the servers run as {u}: use a workdir every user can enter, such as /var/tmp/ladon)\"; m=1; \
         else echo \"runas: {u}\"; fi; fi; "
    ));
    script.push_str(&checks_then_sweep(
        needs.faketime.as_deref(),
        needs.nftables,
    ));
    let dirs: Vec<String> = dirs.iter().map(|d| sh_quote(d)).collect();
    script.push_str(&format!(
        "mkdir -p {} && chmod 755 . {}",
        dirs.join(" "),
        dirs.join(" ")
    ));
    script
}

/// Connects to the hosts a database run's nodes run on, checks each (one
/// command per host, the hosts in parallel), sweeps what an earlier run
/// left there and makes each node's directory, `<workdir>/<node>`. Node
/// `nK` listens on its host's address, port [`DB_BASE_PORT`] + K - 1.
pub fn prepare_db(
    file: &HostsFile,
    names: &[String],
    needs: &DbNeeds,
) -> Result<PreparedDb, String> {
    let used = names.len().min(file.hosts.len());
    let hosts = connect(file, used)?;
    let outputs = run_preflights(file, &hosts, "the preflight failed", |h| {
        let dirs: Vec<String> = names.iter().skip(h).step_by(used).cloned().collect();
        Ok((db_prep_script(&file.hosts[h], &dirs, needs), None))
    })?;
    let field = |out: &str, key: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_string())
    };
    let mut bins = Vec::new();
    for (h, out) in outputs.iter().enumerate() {
        bins.push(field(out, "pgbin: ").ok_or_else(|| {
            format!(
                "{}: the preflight check found no PostgreSQL: {out:?}",
                file.hosts[h].describe(&file.path)
            )
        })?);
    }
    if let Some(h) = bins.iter().position(|b| *b != bins[0]) {
        return Err(format!(
            "{}: PostgreSQL is in {} there but in {} on host 1: every host needs the same version",
            file.hosts[h].describe(&file.path),
            bins[h],
            bins[0]
        ));
    }
    let mut addrs = Vec::new();
    for entry in &file.hosts[..used] {
        addrs.push(
            resolve(&entry.ssh.address)
                .map_err(|e| format!("{}: {e}", entry.describe(&file.path)))?,
        );
    }
    let nodes: Vec<ladon_adapters::db::remote::RemoteNode> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let h = i % used;
            let workdir = outputs[h].lines().next().unwrap_or_default();
            ladon_adapters::db::remote::RemoteNode {
                host: hosts[h].clone() as Arc<dyn Host>,
                dir: format!("{workdir}/{name}"),
                addr: addrs[h],
                port: DB_BASE_PORT + i as u16,
                run_as: field(&outputs[h], "runas: "),
            }
        })
        .collect();
    let partitions = needs.nftables.then(|| {
        ladon_adapters::host::nft::Partitions::new(
            nodes.iter().map(|n| n.host.clone()).collect(),
            nodes.iter().map(|n| n.addr).collect(),
        )
    });
    Ok(PreparedDb {
        nodes,
        bin: bins.swap_remove(0),
        partitions,
        hosts,
        nftables: needs.nftables,
    })
}

/// A host's address as an IP address (a name is looked up).
fn resolve(address: &str) -> Result<std::net::IpAddr, String> {
    if let Ok(ip) = address.parse() {
        return Ok(ip);
    }
    use std::net::ToSocketAddrs as _;
    (address, 0)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {address}: {e}"))?
        .next()
        .map(|a| a.ip())
        .ok_or_else(|| format!("{address} resolves to no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(src: &str) -> String {
        parse(src, Path::new("/tmp/h.toml")).unwrap_err()
    }

    #[test]
    fn parses_entries_with_defaults() {
        let f = parse(
            "[[host]]\naddress = \"10.0.0.1\"\n\n[[host]]\naddress = \"h2\"\nport = 2222\nuser = \"me\"\nworkdir = \"/w\"\nsudo = true\nssh_options = [\"StrictHostKeyChecking=no\"]\n",
            Path::new("/tmp/h.toml"),
        )
        .unwrap();
        assert_eq!(f.hosts.len(), 2);
        assert_eq!(f.hosts[0].ssh.port, 22);
        assert_eq!(f.hosts[0].workdir, "ladon");
        assert_eq!(f.hosts[0].line, 1);
        assert_eq!(f.hosts[1].line, 4);
        assert_eq!(f.hosts[1].ssh.name(), "me@h2:2222");
        assert!(f.hosts[1].ssh.sudo);
        assert_eq!(f.hosts[1].ssh.options, ["StrictHostKeyChecking=no"]);
    }

    #[test]
    fn errors_name_the_file_line_and_entry() {
        assert_eq!(
            err("[[host]]\naddress = \"a\"\n[[host]]\naddress = \"b\"\nport = 70000\n"),
            "/tmp/h.toml:5: host 2: port 70000 is not 1 to 65535"
        );
        assert_eq!(
            err("[[host]]\naddress = \"a\"\nidentity = \"/nonexistent/key\"\n"),
            "/tmp/h.toml:3: host 1: identity /nonexistent/key: no such file"
        );
        assert_eq!(
            err("files = [\"nope.py\"]\n[[host]]\naddress = \"a\"\n"),
            "/tmp/h.toml:1: files: /tmp/nope.py is not a file"
        );
        assert_eq!(
            err("[[host]]\naddress = \"a b\"\n"),
            "/tmp/h.toml:2: host 1: address \"a b\" is not a host name or address"
        );
        assert_eq!(
            err("files = []\n"),
            "/tmp/h.toml: no [[host]] entry (each needs at least address = \"...\")"
        );
        let e = err("[[host]]\naddress = \"a\"\nprot = 22\n");
        assert!(
            e.starts_with("/tmp/h.toml: TOML parse error at line 3"),
            "{e}"
        );
        assert!(e.contains("unknown field `prot`"), "{e}");
        let e = err("[[host]]\nport = 22\n");
        assert!(e.contains("missing field `address`"), "{e}");
    }

    #[test]
    fn interpreters_come_from_the_shebang() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("n.py");
        std::fs::write(&p, "#!/usr/bin/env python3\nprint()\n").unwrap();
        assert_eq!(interpreter(&p).as_deref(), Some("python3"));
        std::fs::write(&p, "#!/bin/sh -e\n").unwrap();
        assert_eq!(interpreter(&p).as_deref(), Some("/bin/sh"));
        std::fs::write(&p, [0x7f, b'E', b'L', b'F']).unwrap();
        assert_eq!(interpreter(&p), None);
    }
}
