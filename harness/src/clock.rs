//! The clock model, sans-IO: what each node's clock reads at a given true
//! time. Per-node offset and drift, plus the nemesis's clock faults: `bump`
//! (jump by an offset), `strobe` (flip back and forth rapidly for a while)
//! and `reset` (every clock back to true time).
//!
//! ```
//! use ladon_harness::clock::Clocks;
//! let mut clocks = Clocks::new(2, 1_000_000_000_000);
//! clocks.bump(1, -2_000_000_000);
//! assert_eq!(clocks.now(0, 5), 1_000_000_000_005);
//! assert_eq!(clocks.now(1, 5), 998_000_000_005);
//! assert_eq!(clocks.offsets(5), vec![0, -2_000_000_000]);
//! clocks.reset(10);
//! assert_eq!(clocks.offsets(10), vec![0, 0]);
//! ```
//!
//! `true` time is the driver's nanoseconds since the test started (virtual
//! in simulation); readings are nanoseconds since the Unix epoch, starting
//! at `epoch_ns`. The live process adapter turns the same offsets into
//! libfaketime settings.

/// 2026-01-01T00:00:00Z: the fixed epoch simulated clocks start from, so
/// readings are the same on every run.
pub const SIM_EPOCH_NS: u64 = 1_767_225_600_000_000_000;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Strobe {
    delta: i64,
    period_ns: u64,
    start_ns: u64,
    until_ns: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct NodeClock {
    offset_ns: i64,
    drift_ppm: i64,
    drift_since_ns: u64,
    strobe: Option<Strobe>,
}

/// Every node's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clocks {
    epoch_ns: u64,
    nodes: Vec<NodeClock>,
}

impl Clocks {
    pub fn new(n: usize, epoch_ns: u64) -> Self {
        Clocks {
            epoch_ns,
            nodes: vec![NodeClock::default(); n],
        }
    }

    /// Sets a node's drift in parts per million (positive runs fast),
    /// accumulating from `now`.
    pub fn set_drift(&mut self, node: usize, now: u64, ppm: i64) {
        let base = self.offset(node, now);
        let c = &mut self.nodes[node];
        c.offset_ns = base - c.strobe_part(now);
        c.drift_ppm = ppm;
        c.drift_since_ns = now;
    }

    /// Node `node`'s offset from true time at `now`, in nanoseconds.
    pub fn offset(&self, node: usize, now: u64) -> i64 {
        let c = &self.nodes[node];
        let drift =
            (now.saturating_sub(c.drift_since_ns) as i128 * c.drift_ppm as i128 / 1_000_000) as i64;
        c.offset_ns + drift + c.strobe_part(now)
    }

    /// Every node's offset at `now` (what a `clock-skew` event records).
    pub fn offsets(&self, now: u64) -> Vec<i64> {
        (0..self.nodes.len()).map(|i| self.offset(i, now)).collect()
    }

    /// What node `node`'s clock reads at true time `now` (ns since the Unix
    /// epoch; never below zero).
    pub fn now(&self, node: usize, now: u64) -> u64 {
        let t = self.epoch_ns as i128 + now as i128 + self.offset(node, now) as i128;
        t.max(0) as u64
    }

    /// Jumps a node's clock by `delta_ns` (may be negative).
    pub fn bump(&mut self, node: usize, delta_ns: i64) {
        self.nodes[node].offset_ns += delta_ns;
    }

    /// Sets a node's base offset (drift and strobe continue on top).
    pub fn set_offset(&mut self, node: usize, offset_ns: i64) {
        self.nodes[node].offset_ns = offset_ns;
    }

    /// From `now` until `now + duration_ns`, the clock alternates every
    /// `period_ns` between its offset and its offset plus `delta_ns`.
    pub fn strobe(
        &mut self,
        node: usize,
        now: u64,
        delta_ns: i64,
        period_ns: u64,
        duration_ns: u64,
    ) {
        self.nodes[node].strobe = Some(Strobe {
            delta: delta_ns,
            period_ns: period_ns.max(1),
            start_ns: now,
            until_ns: now + duration_ns,
        });
    }

    /// Every clock back to true time: offsets, drift and strobes cleared.
    pub fn reset(&mut self, now: u64) {
        for c in &mut self.nodes {
            *c = NodeClock {
                drift_since_ns: now,
                ..NodeClock::default()
            };
        }
    }

    /// True nanoseconds until a timer set for `after_ns` of node `node`'s
    /// clock fires (drift stretches or shrinks it; jumps do not).
    pub fn timer_delay(&self, node: usize, after_ns: u64) -> u64 {
        let ppm = self.nodes[node].drift_ppm;
        if ppm == 0 {
            return after_ns;
        }
        (after_ns as i128 * 1_000_000 / (1_000_000 + ppm as i128).max(1)) as u64
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

impl NodeClock {
    fn strobe_part(&self, now: u64) -> i64 {
        match &self.strobe {
            Some(s)
                if now >= s.start_ns
                    && now < s.until_ns
                    && ((now - s.start_ns) / s.period_ns) % 2 == 1 =>
            {
                s.delta
            }
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bump_skews_one_node_and_reset_restores() {
        let mut c = Clocks::new(3, SIM_EPOCH_NS);
        c.bump(2, 5_000_000_000);
        assert_eq!(c.now(0, 100), SIM_EPOCH_NS + 100);
        assert_eq!(c.now(2, 100), SIM_EPOCH_NS + 100 + 5_000_000_000);
        c.reset(200);
        assert_eq!(c.now(2, 300), SIM_EPOCH_NS + 300);
    }

    #[test]
    fn drift_accumulates_per_million() {
        let mut c = Clocks::new(1, 0);
        c.set_drift(0, 0, 1000); // 0.1% fast
        assert_eq!(c.offset(0, 1_000_000_000), 1_000_000);
        assert_eq!(c.timer_delay(0, 1_001_000), 1_000_000);
    }

    #[test]
    fn strobe_flips_back_and_forth_then_stops() {
        let mut c = Clocks::new(1, 0);
        c.strobe(0, 1000, -500, 10, 100);
        assert_eq!(c.offset(0, 1005), 0);
        assert_eq!(c.offset(0, 1015), -500);
        assert_eq!(c.offset(0, 1025), 0);
        assert_eq!(c.offset(0, 1200), 0);
        // the clock goes backwards while strobing
        assert!(c.now(0, 1015) < c.now(0, 1005));
    }
}
