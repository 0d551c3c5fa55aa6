//! The faulty network: the fate of every message copy. See the module docs
//! of [`crate::net`] for the protocol a driver follows.

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::latency::Latency;
use super::partition::Cut;

/// What a partition does to a message on a cut link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PartitionMode {
    /// The message is lost (like an iptables DROP rule).
    #[default]
    Drop,
    /// The message waits and is released when the link heals (like
    /// turmoil's `hold`/`release`).
    Hold,
}

/// Static network parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetConfig {
    pub latency: Latency,
    /// Probability a message copy is lost outright.
    pub loss: f64,
    /// Probability a message is delivered twice.
    pub duplicate: f64,
    /// Probability a copy gets an extra delay of up to 4x the mean latency,
    /// so it overtakes or is overtaken by later messages.
    pub reorder: f64,
    pub partition_mode: PartitionMode,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            latency: Latency::default(),
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            partition_mode: PartitionMode::Drop,
        }
    }
}

/// One copy of a message on the wire: the driver delivers it at `at_ns`
/// by calling [`Network::arrive`].
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery<T> {
    pub at_ns: u64,
    pub from: usize,
    pub to: usize,
    pub payload: T,
    /// `true` for the extra copy of a duplicated message.
    pub duplicate: bool,
    /// `true` when this copy was held by a partition or clog and released.
    pub released: bool,
}

/// What [`Network::arrive`] decided for a copy reaching its destination.
#[derive(Debug, Clone, PartialEq)]
pub enum Arrival<T> {
    /// Hand it to the destination node now.
    Deliver(T),
    /// A partition in `drop` mode ate it.
    Dropped(T),
    /// A partition in `hold` mode, or a clog, keeps it; it comes back as a
    /// [`Delivery`] with `released: true` from the call that opens its link.
    Held,
}

/// Why a message was not put on the wire at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendFate {
    /// This many copies (1, or 2 when duplicated) were pushed to `out`.
    Sent(usize),
    /// Lost to random message loss.
    Lost,
}

/// The network between `n` nodes (indices `0..n`). Generic over the payload
/// `T` only because it keeps held messages; it never inspects them.
#[derive(Debug, Clone)]
pub struct Network<T> {
    n: usize,
    config: NetConfig,
    cut: Cut,
    clogged: Vec<bool>,
    held: Vec<Delivery<T>>,
    sent_by: Vec<u64>,
    fault_loss: f64,
    fault_duplicate: f64,
}

impl<T: Clone> Network<T> {
    pub fn new(n: usize, config: NetConfig) -> Self {
        Network {
            n,
            config,
            cut: Cut::default(),
            clogged: vec![false; n],
            held: Vec::new(),
            sent_by: vec![0; n],
            fault_loss: 0.0,
            fault_duplicate: 0.0,
        }
    }

    pub fn config(&self) -> &NetConfig {
        &self.config
    }

    pub fn nodes(&self) -> usize {
        self.n
    }

    /// A node sends `payload` to `to` at `now`: pushes the copies to put on
    /// the wire (0, 1 or 2) to `out`, each with its arrival time.
    pub fn send(
        &mut self,
        now: u64,
        from: usize,
        to: usize,
        payload: T,
        rng: &mut impl Rng,
        out: &mut Vec<Delivery<T>>,
    ) -> SendFate {
        self.sent_by[from] += 1;
        let loss = self.config.loss.max(self.fault_loss);
        if loss > 0.0 && rng.random_bool(loss.min(1.0)) {
            return SendFate::Lost;
        }
        let dup = self.config.duplicate.max(self.fault_duplicate);
        let copies = if dup > 0.0 && rng.random_bool(dup.min(1.0)) {
            2
        } else {
            1
        };
        for c in 0..copies {
            let at_ns = now + self.wire_delay(rng);
            let payload = payload.clone();
            out.push(Delivery {
                at_ns,
                from,
                to,
                payload,
                duplicate: c == 1,
                released: false,
            });
        }
        SendFate::Sent(copies)
    }

    fn wire_delay(&self, rng: &mut impl Rng) -> u64 {
        let mut d = self.config.latency.sample(rng);
        if self.config.reorder > 0.0 && rng.random_bool(self.config.reorder.min(1.0)) {
            let extra = 4 * self.config.latency.mean().max(1);
            d += rng.random_range(0..=extra);
        }
        d
    }

    /// A copy reaches its destination at `now`: deliver, drop or hold it,
    /// according to the partitions and clogs in force *now*.
    pub fn arrive(&mut self, now: u64, d: Delivery<T>) -> Arrival<T> {
        let _ = now;
        if self.cut.blocked.contains(&(d.from, d.to)) {
            if self.config.partition_mode == PartitionMode::Drop {
                return Arrival::Dropped(d.payload);
            }
            self.held.push(d);
            return Arrival::Held;
        }
        if self.clogged[d.from] || self.clogged[d.to] {
            self.held.push(d);
            return Arrival::Held;
        }
        Arrival::Deliver(d.payload)
    }

    /// Whether a message from `from` to `to` would get through now.
    pub fn is_open(&self, from: usize, to: usize) -> bool {
        !self.cut.blocked.contains(&(from, to)) && !self.clogged[from] && !self.clogged[to]
    }

    /// Replaces the partition in force with `cut`; held copies whose link is
    /// now open are released into `out`.
    pub fn partition(
        &mut self,
        now: u64,
        cut: Cut,
        rng: &mut impl Rng,
        out: &mut Vec<Delivery<T>>,
    ) {
        self.cut = cut;
        self.release_open(now, rng, out);
    }

    pub fn current_cut(&self) -> &Cut {
        &self.cut
    }

    /// Restores every link (partitions only; clogs and loss are separate);
    /// held copies are released into `out` in random order.
    pub fn heal(&mut self, now: u64, rng: &mut impl Rng, out: &mut Vec<Delivery<T>>) {
        self.cut = Cut::default();
        self.release_open(now, rng, out);
    }

    /// Clogs a node: every copy to or from it is held until it is unclogged.
    pub fn clog(&mut self, node: usize) {
        self.clogged[node] = true;
    }

    pub fn unclog(
        &mut self,
        now: u64,
        node: usize,
        rng: &mut impl Rng,
        out: &mut Vec<Delivery<T>>,
    ) {
        self.clogged[node] = false;
        self.release_open(now, rng, out);
    }

    pub fn clogged(&self) -> Vec<usize> {
        (0..self.n).filter(|&i| self.clogged[i]).collect()
    }

    /// Message loss injected by the nemesis, on top of the configured rate.
    pub fn set_fault_loss(&mut self, p: f64) {
        self.fault_loss = p;
    }

    /// Duplication injected by the nemesis, on top of the configured rate.
    pub fn set_fault_duplicate(&mut self, p: f64) {
        self.fault_duplicate = p;
    }

    /// Heals partitions, unclogs every node and stops injected loss and
    /// duplication: what the final phase starts with.
    pub fn heal_all(&mut self, now: u64, rng: &mut impl Rng, out: &mut Vec<Delivery<T>>) {
        self.cut = Cut::default();
        self.clogged.iter_mut().for_each(|c| *c = false);
        self.fault_loss = 0.0;
        self.fault_duplicate = 0.0;
        self.release_open(now, rng, out);
    }

    /// The node that has sent the most messages (lowest index on ties).
    pub fn busiest(&self) -> usize {
        let mut best = 0;
        for i in 0..self.n {
            if self.sent_by[i] > self.sent_by[best] {
                best = i;
            }
        }
        best
    }

    /// Messages sent by each node so far.
    pub fn sent_by(&self) -> &[u64] {
        &self.sent_by
    }

    /// Number of copies held by partitions or clogs.
    pub fn held_count(&self) -> usize {
        self.held.len()
    }

    fn release_open(&mut self, now: u64, rng: &mut impl Rng, out: &mut Vec<Delivery<T>>) {
        let held = std::mem::take(&mut self.held);
        for mut d in held {
            if self.is_open(d.from, d.to) {
                d.at_ns = now + self.wire_delay(rng);
                d.released = true;
                out.push(d);
            } else {
                self.held.push(d);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn net(mode: PartitionMode) -> Network<u32> {
        Network::new(
            3,
            NetConfig {
                latency: Latency::Constant(1000),
                partition_mode: mode,
                ..NetConfig::default()
            },
        )
    }

    #[test]
    fn open_link_delivers_after_latency() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut n = net(PartitionMode::Drop);
        let mut out = Vec::new();
        assert_eq!(n.send(50, 0, 1, 7, &mut rng, &mut out), SendFate::Sent(1));
        assert_eq!(out[0].at_ns, 1050);
        let d = out.pop().unwrap();
        assert_eq!(n.arrive(1050, d), Arrival::Deliver(7));
    }

    #[test]
    fn drop_mode_partition_drops_and_hold_mode_releases_on_heal() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for mode in [PartitionMode::Drop, PartitionMode::Hold] {
            let mut n = net(mode);
            let mut out = Vec::new();
            n.partition(
                0,
                Cut::from_groups(3, vec![vec![0], vec![1, 2]]),
                &mut rng,
                &mut out,
            );
            n.send(10, 0, 1, 1, &mut rng, &mut out);
            n.send(10, 1, 2, 2, &mut rng, &mut out);
            let mut ds = std::mem::take(&mut out).into_iter();
            let a = n.arrive(1010, ds.next().unwrap());
            assert_eq!(n.arrive(1010, ds.next().unwrap()), Arrival::Deliver(2));
            n.heal(5000, &mut rng, &mut out);
            match mode {
                PartitionMode::Drop => {
                    assert_eq!(a, Arrival::Dropped(1));
                    assert!(out.is_empty());
                }
                PartitionMode::Hold => {
                    assert_eq!(a, Arrival::Held);
                    assert_eq!(out.len(), 1);
                    assert_eq!(out[0].at_ns, 6000);
                    assert!(out[0].released);
                    let d = out.pop().unwrap();
                    assert_eq!(n.arrive(6000, d), Arrival::Deliver(1));
                }
            }
        }
    }

    #[test]
    fn one_way_cut_blocks_one_direction() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut n = net(PartitionMode::Drop);
        let mut out = Vec::new();
        let cut = Cut {
            blocked: [(0, 1)].into_iter().collect(),
            groups: None,
        };
        n.partition(0, cut, &mut rng, &mut out);
        assert!(!n.is_open(0, 1));
        assert!(n.is_open(1, 0));
    }

    #[test]
    fn clog_holds_until_unclog_even_in_drop_mode() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut n = net(PartitionMode::Drop);
        let mut out = Vec::new();
        n.clog(2);
        n.send(0, 0, 2, 9, &mut rng, &mut out);
        let d = out.pop().unwrap();
        assert_eq!(n.arrive(1000, d), Arrival::Held);
        n.unclog(3000, 2, &mut rng, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].payload, 9);
    }

    #[test]
    fn loss_and_duplication_rates_apply() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut n = net(PartitionMode::Drop);
        n.set_fault_loss(0.25);
        n.set_fault_duplicate(0.5);
        let mut out = Vec::new();
        let mut lost = 0;
        for i in 0..4000 {
            if n.send(0, 0, 1, i, &mut rng, &mut out) == SendFate::Lost {
                lost += 1;
            }
        }
        assert!((900..1100).contains(&lost), "lost {lost}");
        let dups = out.iter().filter(|d| d.duplicate).count();
        assert!((1300..1700).contains(&dups), "dups {dups}");
        assert_eq!(n.busiest(), 0);
        assert_eq!(n.sent_by()[0], 4000);
    }
}
