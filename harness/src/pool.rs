//! Independent jobs on a fixed number of worker threads (`ladon explore`'s
//! seeds, `ladon suite`'s runs, `ladon shrink`'s attempts): a rayon pool of
//! `--jobs` threads.

use rayon::prelude::*;

/// Worker threads when the user names none: one per core.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Calls `work` on every item, on `jobs` threads (at least one, at most one
/// per item). Results are in item order.
pub fn map<T: Sync, R: Send>(items: &[T], jobs: usize, work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = jobs.max(1).min(items.len().max(1));
    match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
        // Each item is its own task: runs are long, so no batching.
        Ok(pool) => pool.install(|| items.par_iter().with_max_len(1).map(&work).collect()),
        // No threads to be had: run them here, in order.
        Err(e) => {
            tracing::warn!(
                "no worker threads ({e}); running {} jobs on one",
                items.len()
            );
            items.iter().map(work).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_in_item_order_whatever_the_threads() {
        let items: Vec<u64> = (0..50).collect();
        for jobs in [0, 1, 3, 64] {
            let out = map(&items, jobs, |&x| {
                // Later items finish first on several threads.
                std::thread::sleep(std::time::Duration::from_micros(50 - x));
                x * x
            });
            assert_eq!(out, items.iter().map(|x| x * x).collect::<Vec<_>>());
        }
        assert_eq!(map(&[] as &[u8], 4, |&x| x), Vec::<u8>::new());
    }

    #[test]
    fn at_most_jobs_threads_run_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (now, peak) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let items: Vec<u32> = (0..24).collect();
        map(&items, 3, |_| {
            let n = now.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(n, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(2));
            now.fetch_sub(1, Ordering::SeqCst);
        });
        assert!(peak.load(Ordering::SeqCst) <= 3, "{peak:?}");
    }
}
