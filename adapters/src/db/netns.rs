//! Partitions with root: every node in its own network namespace, cut by
//! nftables rules inside the namespaces (what Jepsen's `iptables` net
//! does on real hosts).
//!
//! ```text
//!   root namespace (Ladon, its clients)      10.213.K.254  ladonKh
//!        │ veth
//!   ladonK-hub: bridge br0 ── veth ── ladonK-n1: eth0 10.213.K.1
//!                          ── veth ── ladonK-n2: eth0 10.213.K.2 …
//! ```
//!
//! `K` (0–255) is the network's number, claimed in a registry directory
//! (`/run/ladon-net/net.K`, holding the owner's pid) before anything is
//! created, so that parallel runs never share a subnet and a network left
//! behind by a Ladon killed with SIGKILL is found and removed: a later
//! [`Network::create`] deletes every `ladonK-*` namespace whose owner is
//! gone. Deleting the hub namespace removes the bridge and every veth pair
//! (the root namespace's end included); the rules live inside the node
//! namespaces and go with them.
//!
//! Traffic goes only to addresses inside these namespaces: servers listen
//! on their namespace's address, clients connect from the root namespace
//! over the hub, and the rules match peer node addresses only, so a cut
//! never touches a client.
//!
//! A cut directed link `(from, to)` drops every packet from `from`'s
//! address arriving at `to` (TCP retransmits through a short cut and times
//! out in a long one; nothing is held and released as the loopback proxy
//! can). TCP needs
//! both directions, so a one-way cut stalls every connection between the
//! two nodes, whichever side opened it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::error::DbError;

/// Where networks record their owners.
pub const REGISTRY: &str = "/run/ladon-net";
/// The first two octets of every network (`10.213.K.0/24`).
const PREFIX: [u8; 2] = [10, 213];
/// Where `ip netns` keeps named namespaces.
const NETNS_DIR: &str = "/run/netns";

/// Why namespaces cannot be used here (`None`: they can).
pub fn unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not running as root (network namespaces need CAP_NET_ADMIN)".into());
    }
    for (tool, install) in [
        ("ip", "iproute2"),
        ("bridge", "iproute2"),
        ("nft", "nftables"),
    ] {
        if which(tool).is_none() {
            return Some(format!(
                "`{tool}` not found; install it with: apt-get install {install}"
            ));
        }
    }
    None
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(tool))
            .find(|f| f.is_file())
    })
}

/// A network of per-node namespaces on one bridge.
#[derive(Debug)]
pub struct Network {
    k: u8,
    nodes: usize,
    entry: PathBuf,
    /// The rules last written into each node namespace.
    rules: std::sync::Mutex<BTreeMap<usize, BTreeSet<usize>>>,
    up: std::sync::atomic::AtomicBool,
}

impl Network {
    /// Claims a free network number, removes networks left behind by
    /// killed runs, and creates the namespaces, bridge, veths and empty
    /// rule sets for `nodes` nodes.
    pub fn create(nodes: usize) -> Result<Network, DbError> {
        let registry = Path::new(REGISTRY);
        if let Some(why) = unavailable() {
            return Err(DbError::Refused(format!("--network netns: {why}")));
        }
        if nodes == 0 || nodes > 250 {
            return Err(DbError::Refused(format!(
                "--network netns: {nodes} nodes (1 to 250 fit a network)"
            )));
        }
        std::fs::create_dir_all(registry)
            .map_err(DbError::io(format!("create {}", registry.display())))?;
        sweep_in(registry)?;
        let (k, entry) = claim(registry)?;
        let net = Network {
            k,
            nodes,
            entry,
            rules: Default::default(),
            up: true.into(),
        };
        if let Err(e) = net.build() {
            net.teardown();
            return Err(e);
        }
        Ok(net)
    }

    fn build(&self) -> Result<(), DbError> {
        let hub = self.hub();
        ip(&["netns", "add", &hub])?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        for i in 0..self.nodes {
            let ns = self.ns(i);
            let port = format!("v{}", i + 1);
            ip(&["netns", "add", &ns])?;
            ip(&[
                "link", "add", "eth0", "netns", &ns, "type", "veth", "peer", "name", &port,
                "netns", &hub,
            ])?;
            let cidr = format!("{}/24", self.addr(i));
            ip(&["-n", &ns, "addr", "add", &cidr, "dev", "eth0"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&["-n", &hub, "link", "set", &port, "master", "br0", "up"])?;
            self.write_rules(i, &BTreeSet::new())?;
        }
        let host = self.host_link();
        ip(&[
            "link", "add", &host, "type", "veth", "peer", "name", "vh", "netns", &hub,
        ])?;
        let cidr = format!("{}/24", self.host_addr());
        ip(&["addr", "add", &cidr, "dev", &host])?;
        ip(&["link", "set", &host, "up"])?;
        ip(&["-n", &hub, "link", "set", "vh", "master", "br0", "up"])?;
        self.wait_forwarding(std::time::Duration::from_secs(10))
    }

    /// Waits until every bridge port forwards: the kernel brings a new
    /// veth's carrier up asynchronously (up to a second later), and until
    /// then its bridge port drops what reaches it.
    fn wait_forwarding(&self, limit: std::time::Duration) -> Result<(), DbError> {
        let t0 = std::time::Instant::now();
        let ports = self.nodes + 1;
        loop {
            let out = Command::new("bridge")
                .args(["-n", &self.hub(), "link", "show"])
                .output()
                .map_err(DbError::io("run bridge link show"))?;
            let text = String::from_utf8_lossy(&out.stdout);
            let forwarding = text
                .lines()
                .filter(|l| l.contains("master br0") && l.contains("state forwarding"))
                .count();
            let host_up =
                std::fs::read_to_string(format!("/sys/class/net/{}/operstate", self.host_link()))
                    .is_ok_and(|s| s.trim() == "up");
            if forwarding == ports && host_up {
                return Ok(());
            }
            if t0.elapsed() > limit {
                return Err(DbError::Refused(format!(
                    "--network netns: {forwarding} of {ports} bridge ports forwarding after {} s \
                     (`bridge -n {} link show`: {})",
                    limit.as_secs(),
                    self.hub(),
                    text.trim()
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The network's number (its subnet is `10.213.K.0/24`).
    pub fn number(&self) -> u8 {
        self.k
    }

    /// The subnet, as `10.213.K.0/24`.
    pub fn subnet(&self) -> String {
        format!("{}.{}.{}.0/24", PREFIX[0], PREFIX[1], self.k)
    }

    /// Node `i`'s address.
    pub fn addr(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(PREFIX[0], PREFIX[1], self.k, i as u8 + 1)
    }

    /// The root namespace's address on the network (where clients connect
    /// from).
    pub fn host_addr(&self) -> Ipv4Addr {
        Ipv4Addr::new(PREFIX[0], PREFIX[1], self.k, 254)
    }

    /// Node `i`'s namespace name.
    pub fn ns(&self, i: usize) -> String {
        format!("ladon{}-n{}", self.k, i + 1)
    }

    fn hub(&self) -> String {
        format!("ladon{}-hub", self.k)
    }

    fn host_link(&self) -> String {
        format!("ladon{}h", self.k)
    }

    /// Every namespace of this network (hub first).
    pub fn namespaces(&self) -> Vec<String> {
        let mut v = vec![self.hub()];
        v.extend((0..self.nodes).map(|i| self.ns(i)));
        v
    }

    /// Runs `f` on a thread inside node `i`'s namespace: a process spawned
    /// there (a server) lives in the namespace, whatever user it runs as.
    pub fn run_in<T: Send>(
        &self,
        i: usize,
        f: impl FnOnce() -> Result<T, DbError> + Send,
    ) -> Result<T, DbError> {
        let path = Path::new(NETNS_DIR).join(self.ns(i));
        let file = File::open(&path).map_err(DbError::io(format!("open {}", path.display())))?;
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: setns on this thread only, with an fd we hold open.
                if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(DbError::Io {
                        context: format!("enter {}", path.display()),
                        source: std::io::Error::last_os_error(),
                    });
                }
                f()
            })
            .join()
            .unwrap_or_else(|_| {
                Err(DbError::Refused(
                    "a thread inside a namespace panicked".into(),
                ))
            })
        })
    }

    /// Cuts exactly the directed links in `blocked` (healing every other):
    /// node `to` drops what comes from `from`.
    pub fn cut(&self, blocked: &BTreeSet<(usize, usize)>) -> Result<(), DbError> {
        let mut by_to: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
        for &(from, to) in blocked {
            if from < self.nodes && to < self.nodes && from != to {
                by_to.entry(to).or_default().insert(from);
            }
        }
        let mut rules = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        for to in 0..self.nodes {
            let want = by_to.remove(&to).unwrap_or_default();
            if rules.get(&to).is_some_and(|have| *have == want) {
                continue;
            }
            self.write_rules(to, &want)?;
            rules.insert(to, want);
        }
        Ok(())
    }

    /// Removes every cut.
    pub fn heal(&self) -> Result<(), DbError> {
        self.cut(&BTreeSet::new())
    }

    /// The rules of node `i`'s namespace now, as `nft list ruleset` prints
    /// them (for tests and the run's log).
    pub fn ruleset(&self, i: usize) -> Result<String, DbError> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns(i), "nft", "list", "ruleset"])
            .output()
            .map_err(DbError::io("run ip netns exec … nft"))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Replaces node `i`'s table with one dropping what comes from `from`.
    fn write_rules(&self, i: usize, from: &BTreeSet<usize>) -> Result<(), DbError> {
        let mut script = String::from(
            "table inet ladon\ndelete table inet ladon\ntable inet ladon {\n chain input {\n  \
             type filter hook input priority 0; policy accept;\n",
        );
        for &f in from {
            script.push_str(&format!("  ip saddr {} drop\n", self.addr(f)));
        }
        script.push_str(" }\n}\n");
        let ns = self.ns(i);
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ns, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(DbError::io(format!("{ns}: run nft")))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(script.as_bytes())
                .map_err(DbError::io(format!("{ns}: write nft's rules")))?;
        }
        let out = child
            .wait_with_output()
            .map_err(DbError::io(format!("{ns}: run nft")))?;
        if !out.status.success() {
            return Err(DbError::Command {
                node: format!("n{}", i + 1),
                command: format!("ip netns exec {ns} nft -f - <<< {script:?}"),
                output: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(())
    }

    /// Deletes every namespace (and with them the bridge, veths and rules)
    /// and the registry entry. Idempotent; also run on drop. (Call it once
    /// the servers inside are stopped.)
    pub fn teardown(&self) {
        if !self.up.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        // The root namespace's end first: deleting a namespace frees its
        // devices asynchronously, and the next network may want the name.
        let _ = ip(&["link", "delete", &self.host_link()]);
        for ns in self.namespaces() {
            let _ = delete_ns(&ns);
        }
        let _ = std::fs::remove_file(&self.entry);
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.teardown();
    }
}

fn ip(args: &[&str]) -> Result<(), DbError> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(DbError::io("run ip"))?;
    if !out.status.success() {
        return Err(DbError::Command {
            node: "network".into(),
            command: format!("ip {}", args.join(" ")),
            output: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// Deletes namespace `ns`; one already gone (another run's sweep got
/// there first) is not an error.
fn delete_ns(ns: &str) -> Result<(), DbError> {
    if Path::new(NETNS_DIR).join(ns).exists() {
        if let Err(e) = ip(&["netns", "delete", ns]) {
            if Path::new(NETNS_DIR).join(ns).exists() {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Claims the lowest free network number: its entry is created with
/// `create_new`, so two runs never get the same one.
fn claim(registry: &Path) -> Result<(u8, PathBuf), DbError> {
    for k in 0..=255u8 {
        let entry = registry.join(format!("net.{k}"));
        let taken_by_other = std::fs::read_dir(NETNS_DIR).is_ok_and(|rd| {
            rd.flatten().any(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with(&format!("ladon{k}-")))
            })
        });
        // A network just deleted frees its devices asynchronously.
        let link_left = Path::new(&format!("/sys/class/net/ladon{k}h")).exists();
        if taken_by_other || link_left {
            continue;
        }
        // The entry appears with its owner already in it (written beside
        // it, then hard-linked: the link fails if the entry exists). A
        // sweep in another Ladon that read an empty entry (created, not yet
        // written) took it for a dead run's, deleted it and then this
        // run's namespaces.
        let tmp = registry.join(format!("claim.{k}.{}", std::process::id()));
        std::fs::write(&tmp, format!("{}\n", std::process::id()))
            .map_err(DbError::io(format!("write {}", tmp.display())))?;
        let linked = std::fs::hard_link(&tmp, &entry);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => return Ok((k, entry)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(DbError::Io {
                    context: format!("create {}", entry.display()),
                    source: e,
                })
            }
        }
    }
    Err(DbError::Refused(
        "--network netns: all 256 networks are in use".into(),
    ))
}

/// Removes the networks whose owner is gone; returns their namespaces.
/// (Namespaces are global, so is the registry: one per machine.)
pub fn sweep() -> Result<Vec<String>, DbError> {
    sweep_in(Path::new(REGISTRY))
}

fn owner_alive(registry: &Path, k: u8) -> Option<i32> {
    std::fs::read_to_string(registry.join(format!("net.{k}")))
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
        .filter(|&pid| pid > 0 && alive(pid))
}

fn sweep_in(registry: &Path) -> Result<Vec<String>, DbError> {
    let mut owners: BTreeMap<u8, i32> = BTreeMap::new();
    if let Ok(rd) = std::fs::read_dir(registry) {
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(k) = name
                .to_str()
                .and_then(|n| n.strip_prefix("net."))
                .and_then(|n| n.parse::<u8>().ok())
            else {
                continue;
            };
            let owner = std::fs::read_to_string(e.path())
                .ok()
                .and_then(|t| t.trim().parse::<i32>().ok())
                .unwrap_or(0);
            if owner > 0 && alive(owner) {
                owners.insert(k, owner);
            } else {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let mut removed = Vec::new();
    if let Ok(rd) = std::fs::read_dir(NETNS_DIR) {
        for e in rd.flatten() {
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let Some(k) = name
                .strip_prefix("ladon")
                .and_then(|r| r.split_once('-'))
                .and_then(|(k, _)| k.parse::<u8>().ok())
            else {
                continue;
            };
            // Read again: a run may have claimed `k` since the listing.
            if owners.contains_key(&k) || owner_alive(registry, k).is_some() {
                continue;
            }
            let host = format!("ladon{k}h");
            if Path::new("/sys/class/net").join(&host).exists() {
                let _ = ip(&["link", "delete", &host]);
            }
            // Best effort: two runs may sweep at once.
            match delete_ns(&name) {
                Ok(()) => removed.push(name),
                Err(e) => tracing::warn!("sweeping a killed run's network: {e}"),
            }
        }
    }
    Ok(removed)
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    fn skip() -> bool {
        if let Some(why) = unavailable() {
            eprintln!("skipped: {why}");
            return true;
        }
        false
    }

    /// A listener inside node `i`'s namespace, on its address.
    fn listen(net: &Network, i: usize) -> TcpListener {
        let a = net.addr(i);
        net.run_in(i, move || {
            TcpListener::bind((a, 0)).map_err(DbError::io("bind"))
        })
        .unwrap()
    }

    fn reach(net: &Network, from: Option<usize>, to: std::net::SocketAddr) -> bool {
        let go = move || {
            Ok(TcpStream::connect_timeout(&to, Duration::from_millis(300))
                .and_then(|mut s| {
                    s.write_all(b"x")?;
                    Ok(())
                })
                .is_ok())
        };
        match from {
            Some(i) => net.run_in(i, go).unwrap(),
            None => go().unwrap(),
        }
    }

    #[test]
    fn nodes_reach_each_other_until_cut_and_clients_always_reach_them() {
        if skip() {
            return;
        }
        let net = Network::create(3).unwrap();
        let l2 = listen(&net, 1);
        let a2 = l2.local_addr().unwrap();
        assert_eq!(a2.ip(), std::net::IpAddr::V4(net.addr(1)));
        std::thread::spawn(move || {
            for s in l2.incoming().flatten() {
                let mut s = s;
                let mut b = [0u8; 1];
                let _ = s.read(&mut b);
            }
        });
        assert!(reach(&net, Some(0), a2), "n1 → n2 before any cut");
        assert!(reach(&net, None, a2), "the root namespace → n2");
        net.cut(&[(0, 1)].into_iter().collect()).unwrap();
        assert!(!reach(&net, Some(0), a2), "n1 → n2 once (n1, n2) is cut");
        assert!(reach(&net, Some(2), a2), "n3 → n2 is not cut");
        assert!(reach(&net, None, a2), "clients are never cut");
        assert!(net
            .ruleset(1)
            .unwrap()
            .contains(&format!("ip saddr {} drop", net.addr(0))));
        net.heal().unwrap();
        assert!(reach(&net, Some(0), a2), "n1 → n2 after the heal");
        let names = net.namespaces();
        net.teardown();
        for ns in names {
            assert!(!Path::new(NETNS_DIR).join(&ns).exists(), "{ns} left behind");
        }
        assert!(!net.entry.exists(), "registry entry left behind");
    }

    #[test]
    fn a_network_whose_owner_is_gone_is_swept_and_two_networks_never_share_a_number() {
        if skip() {
            return;
        }
        let a = Network::create(2).unwrap();
        let b = Network::create(2).unwrap();
        assert_ne!(a.number(), b.number());
        // `a`'s owner "dies": its entry names a pid that does not exist.
        std::fs::write(&a.entry, "999999999\n").unwrap();
        let left = a.namespaces();
        std::mem::forget(a);
        let swept = sweep().unwrap();
        // Another test's run may sweep `a` first (its owner is gone for
        // every run); no live run's network is ever swept.
        assert!(
            swept.iter().all(|n| left.contains(n)),
            "{swept:?} beyond {left:?}"
        );
        for ns in &left {
            assert!(!Path::new(NETNS_DIR).join(ns).exists(), "{ns} left behind");
        }
        assert!(b
            .namespaces()
            .iter()
            .all(|ns| Path::new(NETNS_DIR).join(ns).exists()));
    }
}
