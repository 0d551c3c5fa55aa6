//! Conflict avoidance: every key has a home leader that serialises its
//! writes; other nodes forward writes there, and refuse definitely when the
//! home is unreachable (not heard from within a few ping periods).

use ladon_checker::history::Key;

use crate::node::NodeId;

/// The home leader of `key` among `leaders` (FNV-1a of its text, stable
/// across runs and platforms).
pub fn home_of(key: &Key, leaders: usize) -> NodeId {
    let text = key.to_string();
    let mut h: u64 = 0xcbf29ce484222325;
    for b in text.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    NodeId((h % leaders.max(1) as u64) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn homes_are_stable_and_spread() {
        let homes: Vec<usize> = (0..9).map(|k| home_of(&Key::Int(k), 3).0).collect();
        assert_eq!(
            homes,
            (0..9)
                .map(|k| home_of(&Key::Int(k), 3).0)
                .collect::<Vec<_>>()
        );
        for n in 0..3 {
            assert!(
                homes.contains(&n),
                "leader {n} is home to some key: {homes:?}"
            );
        }
    }
}
