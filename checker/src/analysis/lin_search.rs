//! The linearizability search for one register key: Wing and Gong's
//! backtracking search with Lowe's just-in-time linearization and the
//! memoization of (linearized set, state) that Porcupine uses.
//!
//! Operations are given in invocation order. Each one is a short program of
//! [`Step`]s applied atomically to the register; every operation given must
//! take effect somewhere between its call and its return (the caller drops
//! indeterminate operations that need not, and gives the others the return
//! by which they must have happened).

use crate::ids::OpId;
use rustc_hash::FxHashMap;

/// "The register holds nothing" (never written), as a state.
pub const EMPTY: u32 = u32::MAX;

/// One step of an operation on the register. States are value ids (the
/// caller uses the write micro-operation's index; values are unique per key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A read that observed this state.
    Read(u32),
    /// A write of this value.
    Write(u32),
    /// A read no single register state explains (several values, or a value
    /// nobody wrote).
    Never,
}

/// One operation of the search.
#[derive(Debug, Clone)]
pub struct LinOp {
    /// The operation in the history's `ops`.
    pub op: OpId,
    pub call: u64,
    /// Time by which it must have taken effect.
    pub ret: u64,
    pub steps: Vec<Step>,
}

impl LinOp {
    /// The state after applying this operation to `state`, if it can.
    pub fn apply(&self, mut state: u32) -> Option<u32> {
        for s in &self.steps {
            match *s {
                Step::Read(v) if v == state => {}
                Step::Read(_) | Step::Never => return None,
                Step::Write(v) => state = v,
            }
        }
        Some(state)
    }

    /// The value this operation must find, when it reads before it writes
    /// ([`EMPTY`] when it finds nothing in particular).
    pub fn needs(&self) -> u32 {
        match self.steps.first() {
            Some(Step::Read(v)) => *v,
            _ => EMPTY,
        }
    }

    /// The value this operation leaves, if it writes.
    pub fn written(&self) -> Option<u32> {
        self.steps.iter().rev().find_map(|s| match s {
            Step::Write(v) => Some(*v),
            _ => None,
        })
    }
}

/// How a search ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An order exists; `order` lists the operations (positions in the input)
    /// in the order they took effect.
    Linearizable { order: Vec<usize> },
    /// No order exists. `stuck` is the operation whose return the deepest
    /// partial order could not get past, after placing `depth` operations.
    NotLinearizable { stuck: usize, depth: usize },
    /// The step budget ran out after `steps` attempts.
    Budget { steps: u64 },
}

/// The memoized search state: (first unplaced position, placed set from
/// that position's word on, register state). Placed sets are stored from the
/// first unplaced operation on, so a key stays small however long the
/// history: everything before it is placed.
type Memo = FxHashMap<(u32, u32, Box<[u64]>), ()>;

/// Searches for a linearization of `ops` (sorted by `call`), starting from
/// the empty register, trying at most `budget` placements.
pub fn search(ops: &[LinOp], budget: u64) -> Outcome {
    search_from(ops, EMPTY, budget, true)
}

/// As [`search`], without the reductions of [`search_from`]: the plain
/// Wing–Gong search, whose failures name the operation the deepest partial
/// order could not get past (the reductions stop a doomed order earlier,
/// so they would blame an earlier operation). Used to explain a key the
/// reduced search found without an order.
pub fn search_plain(ops: &[LinOp], budget: u64) -> Outcome {
    search_from(ops, EMPTY, budget, false)
}

/// As [`search`], from a given initial state; with `reduce`, two
/// reductions keep the search small under heavy concurrency, both exact
/// (they never lose an order that exists, nor admit one that does not):
///
/// - **Reads that fit go first.** When a pending operation (one whose call
///   comes before the first unplaced return) writes nothing and fits the
///   current value, it is placed at once and its siblings are not tried:
///   any order that places it later can place it now instead (no pending
///   operation must precede it in real time, and as it never changes the
///   register every other operation sees the same values), so the node
///   succeeds exactly when this child does.
/// - **A value left behind is never seen again.** Values other than
///   [`EMPTY`] are written by one step of one operation (the caller names
///   them by write micro-operation), so once the register moves from value
///   `v` to another, no unplaced operation that must find `v` can ever be
///   placed: such a move is not taken.
pub fn search_from(ops: &[LinOp], initial: u32, budget: u64, reduce: bool) -> Outcome {
    let n = ops.len();
    if n == 0 {
        return Outcome::Linearizable { order: Vec::new() };
    }
    // Entries 1..=2n, calls and returns sorted by time (a call before a
    // return at the same time: equal times overlap); 0 is the sentinel of a
    // circular doubly linked list.
    let mut order: Vec<(u64, u8, u32)> = Vec::with_capacity(2 * n);
    for (i, o) in ops.iter().enumerate() {
        order.push((o.call, 0, i as u32));
        order.push((o.ret.max(o.call), 1, i as u32));
    }
    order.sort_unstable();
    let len = 2 * n + 1;
    let mut next = vec![0u32; len];
    let mut prev = vec![0u32; len];
    let mut ent_op = vec![0u32; len];
    let mut is_call = vec![false; len];
    let mut ret_entry = vec![0u32; n];
    for (j, &(_, kind, op)) in order.iter().enumerate() {
        let e = j + 1;
        ent_op[e] = op;
        is_call[e] = kind == 0;
        if kind == 1 {
            ret_entry[op as usize] = e as u32;
        }
        next[e] = if e + 1 < len { (e + 1) as u32 } else { 0 };
        prev[e] = (e - 1) as u32;
    }
    next[0] = 1;
    prev[0] = (len - 1) as u32;
    drop(order);

    // Per operation, the value it must find (`EMPTY`: none that matters
    // here), and per value the unplaced operations that must find it.
    let need: Vec<u32> = ops.iter().map(LinOp::needs).collect();
    // Operations that never change the register (reads).
    let pure: Vec<bool> = ops.iter().map(|o| o.written().is_none()).collect();
    let mut waiting: FxHashMap<u32, u32> = FxHashMap::default();
    for &v in &need {
        if v != EMPTY {
            *waiting.entry(v).or_default() += 1;
        }
    }
    let waiting_on = |waiting: &FxHashMap<u32, u32>, v: u32| {
        v != EMPTY && waiting.get(&v).is_some_and(|&c| c > 0)
    };
    let add = |waiting: &mut FxHashMap<u32, u32>, v: u32, d: i32| {
        if v != EMPTY {
            let c = waiting.get_mut(&v).expect("counted");
            *c = c.wrapping_add_signed(d);
        }
    };

    let mut placed = Placed::new(n);
    let mut memo: Memo = FxHashMap::default();
    // (call entry, state before, placed by the first rule)
    let mut stack: Vec<(u32, u32, bool)> = Vec::new();
    let mut state = initial;
    let mut steps = 0u64;
    let mut best = (0usize, usize::MAX);
    let mut e = next[0];
    let mut fresh = true;
    loop {
        if next[0] == 0 {
            let order = stack
                .iter()
                .map(|&(c, _, _)| ent_op[c as usize] as usize)
                .collect();
            return Outcome::Linearizable { order };
        }
        let mut dead = false;
        if fresh {
            fresh = false;
            e = next[0];
            // The first rule: a pending read that fits goes first, alone.
            let mut x = if reduce { e } else { 0 };
            while is_call[x as usize] {
                let op = ent_op[x as usize] as usize;
                if pure[op] && ops[op].apply(state).is_some() {
                    steps += 1;
                    if steps > budget {
                        return Outcome::Budget { steps: budget };
                    }
                    placed.set(op);
                    if memo.insert(placed.key(state), ()).is_none() {
                        add(&mut waiting, need[op], -1);
                        stack.push((x, state, true));
                        let xu = x as usize;
                        let r = ret_entry[op] as usize;
                        for y in [xu, r] {
                            next[prev[y] as usize] = next[y];
                            prev[next[y] as usize] = prev[y];
                        }
                        fresh = true;
                    } else {
                        // Explored before without success: so is this node.
                        placed.clear(op);
                        dead = true;
                    }
                    break;
                }
                x = next[x as usize];
            }
            if fresh {
                continue;
            }
        }
        let eu = e as usize;
        if is_call[eu] && !dead {
            steps += 1;
            if steps > budget {
                return Outcome::Budget { steps: budget };
            }
            let op = ent_op[eu] as usize;
            if let Some(ns) = ops[op].apply(state) {
                add(&mut waiting, need[op], -1);
                if !(reduce && ns != state && waiting_on(&waiting, state)) {
                    placed.set(op);
                    if memo.insert(placed.key(ns), ()).is_none() {
                        stack.push((e, state, false));
                        state = ns;
                        // Lift the call and its return out of the list.
                        let r = ret_entry[op] as usize;
                        for x in [eu, r] {
                            next[prev[x] as usize] = next[x];
                            prev[next[x] as usize] = prev[x];
                        }
                        fresh = true;
                        continue;
                    }
                    placed.clear(op);
                }
                add(&mut waiting, need[op], 1);
            }
            e = next[eu];
        } else {
            // A return whose operation is not placed yet (or a node known
            // to fail): back up.
            if !dead && (stack.len() > best.0 || best.1 == usize::MAX) {
                best = (stack.len(), ent_op[eu] as usize);
            }
            loop {
                let Some((c, s, forced)) = stack.pop() else {
                    return Outcome::NotLinearizable {
                        stuck: if best.1 == usize::MAX { 0 } else { best.1 },
                        depth: best.0,
                    };
                };
                let cu = c as usize;
                let op = ent_op[cu] as usize;
                placed.clear(op);
                add(&mut waiting, need[op], 1);
                state = s;
                let r = ret_entry[op] as usize;
                for x in [r, cu] {
                    next[prev[x] as usize] = x as u32;
                    prev[next[x] as usize] = x as u32;
                }
                // A node whose first-rule child failed fails too.
                if !forced {
                    e = next[cu];
                    break;
                }
            }
        }
    }
}

/// The set of placed operations, with its first unplaced position and last
/// placed word kept up to date.
struct Placed {
    words: Vec<u64>,
    /// First unplaced position.
    first: usize,
    /// Highest word with a bit set (or 0).
    hi: usize,
}

impl Placed {
    fn new(n: usize) -> Self {
        Placed {
            words: vec![0; n.div_ceil(64)],
            first: 0,
            hi: 0,
        }
    }

    fn set(&mut self, i: usize) {
        self.words[i / 64] |= 1 << (i % 64);
        self.hi = self.hi.max(i / 64);
        if i == self.first {
            let mut w = i / 64;
            while w < self.words.len() && self.words[w] == u64::MAX {
                w += 1;
            }
            self.first = if w == self.words.len() {
                self.words.len() * 64
            } else {
                w * 64 + (!self.words[w]).trailing_zeros() as usize
            };
        }
    }

    fn clear(&mut self, i: usize) {
        self.words[i / 64] &= !(1 << (i % 64));
        self.first = self.first.min(i);
        while self.hi > 0 && self.words[self.hi] == 0 {
            self.hi -= 1;
        }
    }

    fn key(&self, state: u32) -> (u32, u32, Box<[u64]>) {
        let lo = self.first / 64;
        let words: Box<[u64]> = if lo <= self.hi && lo < self.words.len() {
            self.words[lo..=self.hi].into()
        } else {
            Box::new([])
        };
        (self.first as u32, state, words)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(op: u32, call: u64, ret: u64, v: u32) -> LinOp {
        LinOp {
            op: OpId(op),
            call,
            ret,
            steps: vec![Step::Write(v)],
        }
    }
    fn r(op: u32, call: u64, ret: u64, v: u32) -> LinOp {
        LinOp {
            op: OpId(op),
            call,
            ret,
            steps: vec![Step::Read(v)],
        }
    }
    fn cas(op: u32, call: u64, ret: u64, from: u32, to: u32) -> LinOp {
        LinOp {
            op: OpId(op),
            call,
            ret,
            steps: vec![Step::Read(from), Step::Write(to)],
        }
    }
    fn ok(o: &Outcome) -> bool {
        matches!(o, Outcome::Linearizable { .. })
    }

    #[test]
    fn a_read_of_an_overwritten_value_after_the_overwrite_completed_is_stale() {
        let ops = [w(0, 0, 10, 1), w(1, 20, 30, 2), r(2, 40, 50, 1)];
        assert_eq!(
            search_plain(&ops, 1000),
            Outcome::NotLinearizable { stuck: 2, depth: 2 }
        );
        // The reduced search does not move the register off 1 while the
        // read still needs it, so it stops at the write of 2.
        assert_eq!(
            search(&ops, 1000),
            Outcome::NotLinearizable { stuck: 1, depth: 1 }
        );
    }

    #[test]
    fn a_read_concurrent_with_the_overwrite_may_see_either_value() {
        let ops = [w(0, 0, 10, 1), w(1, 20, 45, 2), r(2, 40, 50, 1)];
        assert_eq!(
            search(&ops, 1000),
            Outcome::Linearizable {
                order: vec![0, 2, 1]
            }
        );
        let ops = [w(0, 0, 10, 1), w(1, 20, 45, 2), r(2, 40, 50, 2)];
        assert!(ok(&search(&ops, 1000)));
    }

    #[test]
    fn equal_times_overlap() {
        let ops = [w(0, 0, 10, 1), w(1, 20, 30, 2), r(2, 30, 50, 1)];
        assert!(ok(&search(&ops, 1000)));
    }

    #[test]
    fn two_cas_from_one_value_cannot_both_succeed() {
        let ops = [w(0, 0, 10, 1), cas(1, 20, 40, 1, 2), cas(2, 21, 41, 1, 3)];
        assert!(matches!(
            search_plain(&ops, 1000),
            Outcome::NotLinearizable { depth: 2, .. }
        ));
        assert!(matches!(
            search(&ops, 1000),
            Outcome::NotLinearizable { .. }
        ));
        let ops = [w(0, 0, 10, 1), cas(1, 20, 40, 1, 2), cas(2, 21, 41, 2, 3)];
        assert_eq!(
            search(&ops, 1000),
            Outcome::Linearizable {
                order: vec![0, 1, 2]
            }
        );
    }

    #[test]
    fn reading_nothing_after_a_completed_write_is_stale() {
        let ops = [w(0, 0, 10, 1), r(1, 20, 30, EMPTY)];
        assert!(!ok(&search(&ops, 1000)));
        let ops = [r(0, 0, 10, EMPTY), w(1, 5, 10, 1)];
        assert!(ok(&search(&ops, 1000)));
    }

    #[test]
    fn the_budget_stops_the_search() {
        // Many concurrent writes and a read of a value nobody wrote: the
        // search tries every order before failing.
        let mut ops: Vec<LinOp> = (0..12).map(|i| w(i, 0, 100, i)).collect();
        ops.push(r(12, 200, 300, 99));
        assert_eq!(search(&ops, 500), Outcome::Budget { steps: 500 });
    }

    /// Whether `order` is a linearization of `ops`: every operation once,
    /// real time respected, each step fitting the register from empty.
    fn valid_order(ops: &[LinOp], order: &[usize]) -> bool {
        let mut seen = vec![false; ops.len()];
        let mut state = EMPTY;
        for (i, &a) in order.iter().enumerate() {
            if std::mem::replace(&mut seen[a], true) {
                return false;
            }
            if order[i + 1..]
                .iter()
                .any(|&b| ops[b].ret.max(ops[b].call) < ops[a].call)
            {
                return false;
            }
            match ops[a].apply(state) {
                Some(s) => state = s,
                None => return false,
            }
        }
        seen.iter().all(|&s| s)
    }

    /// Random small histories of one key: writes (unique values), deletes,
    /// reads of a written value, of nothing or of no single state,
    /// compare-and-sets, and operations without a deadline (as `info`).
    fn random_ops(rng: &mut rand_chacha::ChaCha8Rng) -> Vec<LinOp> {
        use rand::Rng;
        let n = rng.random_range(1..=9usize);
        let mut vals: Vec<u32> = Vec::new();
        let mut ops: Vec<LinOp> = (0..n)
            .map(|i| {
                let call = rng.random_range(0..20u64);
                let ret = if rng.random_bool(0.1) {
                    u64::MAX
                } else {
                    call + rng.random_range(0..8u64)
                };
                let pick = |rng: &mut rand_chacha::ChaCha8Rng| {
                    if vals.is_empty() || rng.random_bool(0.2) {
                        EMPTY
                    } else {
                        vals[rng.random_range(0..vals.len())]
                    }
                };
                let v = 100 + i as u32;
                let steps = match rng.random_range(0..20u32) {
                    0..=6 => {
                        vals.push(v);
                        vec![Step::Write(v)]
                    }
                    7 => vec![Step::Write(EMPTY)],
                    8..=15 => vec![Step::Read(pick(rng))],
                    16 => vec![Step::Never],
                    _ => {
                        let from = pick(rng);
                        vals.push(v);
                        vec![Step::Read(from), Step::Write(v)]
                    }
                };
                LinOp {
                    op: OpId::new(i),
                    call,
                    ret,
                    steps,
                }
            })
            .collect();
        // Reads may name values written by later operations.
        for o in &mut ops {
            if let [Step::Read(v)] = o.steps.as_mut_slice() {
                if *v == EMPTY && !vals.is_empty() && rng.random_bool(0.3) {
                    *v = vals[rng.random_range(0..vals.len())];
                }
            }
        }
        ops.sort_by_key(|o| o.call);
        ops
    }

    #[test]
    fn the_reductions_decide_as_the_plain_search_does() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(13);
        let (mut yes, mut no) = (0, 0);
        for case in 0..30_000 {
            let ops = random_ops(&mut rng);
            let plain = search_plain(&ops, u64::MAX);
            let fast = search(&ops, u64::MAX);
            match (&plain, &fast) {
                (Outcome::Linearizable { .. }, Outcome::Linearizable { order }) => {
                    assert!(valid_order(&ops, order), "case {case}: {ops:?} {order:?}");
                    yes += 1;
                }
                (Outcome::NotLinearizable { .. }, Outcome::NotLinearizable { .. }) => no += 1,
                _ => panic!("case {case}: {ops:?}: plain {plain:?}, reduced {fast:?}"),
            }
        }
        // Both verdicts are common, so the comparison means something.
        assert!(yes > 5_000 && no > 5_000, "{yes} {no}");
    }

    #[test]
    fn placed_set_tracks_first_and_last() {
        let mut p = Placed::new(130);
        for i in 0..70 {
            p.set(i);
        }
        assert_eq!(p.first, 70);
        p.set(129);
        assert_eq!(p.hi, 2);
        p.clear(129);
        assert_eq!(p.hi, 1);
        p.clear(3);
        assert_eq!(p.first, 3);
        assert_eq!(&*p.key(7).2, &p.words[0..=1]);
    }
}
