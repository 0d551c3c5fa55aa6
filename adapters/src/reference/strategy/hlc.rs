//! A hybrid logical clock folded into one nanosecond-scale integer: never
//! below the node's wall clock, strictly increasing, and above every
//! timestamp the node has seen (from peers' entries or a client's context).

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hlc {
    last: u64,
}

impl Hlc {
    /// A timestamp for a local event at wall-clock reading `now_ns`.
    pub fn tick(&mut self, now_ns: u64) -> u64 {
        self.last = now_ns.max(self.last + 1);
        self.last
    }

    /// Takes in a timestamp seen elsewhere.
    pub fn observe(&mut self, ts: u64) {
        self.last = self.last.max(ts);
    }

    pub fn last(&self) -> u64 {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_ahead_of_what_it_saw_when_the_wall_clock_lags() {
        let mut h = Hlc::default();
        assert_eq!(h.tick(100), 100);
        h.observe(5_000);
        assert_eq!(
            h.tick(200),
            5_001,
            "a lagging clock still stamps after what it saw"
        );
        assert_eq!(h.tick(9_000), 9_000);
    }
}
