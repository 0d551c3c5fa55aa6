//! Partitions between hosts: nftables rules on each host dropping the
//! packets from and to the cut peers' addresses (what Jepsen's `iptables`
//! net does), in one table, `inet ladon_hosts`, per host (not `inet ladon`, which
//! `db::netns` keeps inside its namespaces).
//!
//! [`Partitions`] keeps the hosts and their addresses; [`Partitions::cut`]
//! rewrites the table of every host whose rules change (one command per
//! host, atomically with `nft -f`), [`Partitions::heal`] deletes the
//! tables. Every host with rules is registered with the emergency cleanup
//! ([`super::cleanup::kill_all`]), dropping the partitions heals them, and a
//! table left by a Ladon killed with SIGKILL is removed by the next run's
//! preflight on that host (`harness::hosts`).
//!
//! The commands need root on the host (`sudo = true`, or a root login).

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use super::{failed, sh_quote, Host};

/// The table (family `inet`) holding Ladon's rules on a host, and a shell
/// command removing it (kept with the emergency cleanup, which runs it).
pub use super::cleanup::{nft_remove_script as remove_script, NFT_TABLE as TABLE};

/// A shell command that removes the table if it exists and prints
/// `removed: nft` when it did (for the preflight's sweep). Silent where nft
/// is missing or not permitted.
pub fn sweep_script() -> String {
    format!(
        "if command -v nft >/dev/null 2>&1 && nft list table inet {TABLE} >/dev/null 2>&1; then \
         nft delete table inet {TABLE} && echo \"removed: nft table inet {TABLE}\"; fi; "
    )
}

/// The ruleset replacing the table: drop what comes from `from` and what
/// goes to `to`.
pub fn ruleset(from: &BTreeSet<IpAddr>, to: &BTreeSet<IpAddr>) -> String {
    let mut s = format!(
        "table inet {TABLE}\ndelete table inet {TABLE}\ntable inet {TABLE} {{\n chain input {{\n  \
         type filter hook input priority 0; policy accept;\n"
    );
    for a in from {
        let fam = if a.is_ipv4() { "ip" } else { "ip6" };
        s.push_str(&format!("  {fam} saddr {a} drop\n"));
    }
    s.push_str(" }\n chain output {\n  type filter hook output priority 0; policy accept;\n");
    for a in to {
        let fam = if a.is_ipv4() { "ip" } else { "ip6" };
        s.push_str(&format!("  {fam} daddr {a} drop\n"));
    }
    s.push_str(" }\n}\n");
    s
}

/// One host's rules: the addresses it drops packets from, and to.
type Rules = (BTreeSet<IpAddr>, BTreeSet<IpAddr>);

/// The hosts of a run and their addresses, and the rules now on each.
#[derive(Debug)]
pub struct Partitions {
    hosts: Vec<Arc<dyn Host>>,
    addrs: Vec<IpAddr>,
    /// (drop from, drop to) now in force on each host.
    now: Mutex<BTreeMap<usize, Rules>>,
}

impl Partitions {
    /// `addrs[i]` is the address host `i`'s peers reach it at.
    pub fn new(hosts: Vec<Arc<dyn Host>>, addrs: Vec<IpAddr>) -> Partitions {
        assert_eq!(hosts.len(), addrs.len(), "one address per host");
        Partitions {
            hosts,
            addrs,
            now: Mutex::new(BTreeMap::new()),
        }
    }

    /// Cuts exactly the directed links in `blocked` (healing every other):
    /// for `(from, to)`, host `to` drops what comes from `from`'s address
    /// and host `from` drops what it sends to `to`'s.
    pub fn cut(&self, blocked: &BTreeSet<(usize, usize)>) -> io::Result<()> {
        let n = self.hosts.len();
        let mut want: BTreeMap<usize, Rules> = BTreeMap::new();
        for &(from, to) in blocked {
            if from >= n || to >= n || from == to || self.addrs[from] == self.addrs[to] {
                continue;
            }
            want.entry(to).or_default().0.insert(self.addrs[from]);
            want.entry(from).or_default().1.insert(self.addrs[to]);
        }
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        let mut first_err = None;
        for i in 0..n {
            let w = want.remove(&i).unwrap_or_default();
            let have = now.get(&i).cloned().unwrap_or_default();
            if w == have {
                continue;
            }
            let host = &self.hosts[i];
            let result = if w.0.is_empty() && w.1.is_empty() {
                run_ok(host.as_ref(), "remove the nftables rules", &remove_script())
            } else {
                let script = format!("printf '%s' {} | nft -f -", sh_quote(&ruleset(&w.0, &w.1)));
                super::cleanup::register_cut(host.clone());
                run_ok(host.as_ref(), "add nftables rules", &script)
            };
            match result {
                Ok(()) => {
                    if w.0.is_empty() && w.1.is_empty() {
                        now.remove(&i);
                        super::cleanup::forget_cut(host);
                    } else {
                        now.insert(i, w);
                    }
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Removes every rule.
    pub fn heal(&self) -> io::Result<()> {
        self.cut(&BTreeSet::new())
    }
}

impl Drop for Partitions {
    fn drop(&mut self) {
        let _ = self.heal();
    }
}

fn run_ok(host: &dyn Host, what: &str, script: &str) -> io::Result<()> {
    let out = host.run(script)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(failed(&format!("{}: {what}", host.name()), &out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ruleset_drops_from_and_to_the_peers() {
        let a: IpAddr = "10.0.0.2".parse().unwrap();
        let b: IpAddr = "fd00::3".parse().unwrap();
        assert_eq!(
            ruleset(&[a].into(), &[a, b].into()),
            "table inet ladon_hosts\ndelete table inet ladon_hosts\ntable inet ladon_hosts {\n chain input {\n  \
             type filter hook input priority 0; policy accept;\n  ip saddr 10.0.0.2 drop\n }\n \
             chain output {\n  type filter hook output priority 0; policy accept;\n  \
             ip daddr 10.0.0.2 drop\n  ip6 daddr fd00::3 drop\n }\n}\n"
        );
    }
}
