//! Running independent jobs on a few threads while reporting their results in the jobs'
//! order: `kiln test`'s assertions run in parallel, yet print as they are written in
//! kiln.kdl, each as soon as every one before it is done.
//!
//! Jobs that must not overlap (two `exec`s in one container: the second may read what the
//! first wrote) share a chain key and run one after another, in order, on one thread. It
//! knows nothing of assertions: the caller says what a job is, which chain it belongs to,
//! and what to do with each result.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

/// Runs `work` on every job, on at most `threads` threads. Jobs with the same chain key
/// (`Some`) run in order on one thread; a job without one is a chain of its own. Chains
/// start in the order of their first job. `done(index, result)` is called on the calling
/// thread in index order, as soon as the results of all jobs up to `index` are in.
pub(super) fn run_in_order<T, K, R>(
    jobs: &[T],
    chain: impl Fn(&T) -> Option<K>,
    threads: usize,
    work: impl Fn(&T) -> R + Sync,
    mut done: impl FnMut(usize, R),
) where
    T: Sync,
    K: Hash + Eq,
    R: Send,
{
    let chains = chains(jobs, chain);
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, chains.len().max(1)) {
            let tx = tx.clone();
            let (chains, next, work) = (&chains, &next, &work);
            scope.spawn(move || {
                while let Some(chain) = chains.get(next.fetch_add(1, Ordering::Relaxed)) {
                    for &index in chain {
                        if tx.send((index, work(&jobs[index]))).is_err() {
                            return;
                        }
                    }
                }
            });
        }
        drop(tx);
        let mut results: Vec<Option<R>> = jobs.iter().map(|_| None).collect();
        let mut reported = 0;
        for (index, result) in rx {
            results[index] = Some(result);
            while let Some(result) = results.get_mut(reported).and_then(Option::take) {
                done(reported, result);
                reported += 1;
            }
        }
    });
}

/// The jobs' indices grouped into chains, in the order of each chain's first job.
fn chains<T, K: Hash + Eq>(jobs: &[T], chain: impl Fn(&T) -> Option<K>) -> Vec<Vec<usize>> {
    let mut chains: Vec<Vec<usize>> = Vec::new();
    let mut by_key = HashMap::new();
    for (index, job) in jobs.iter().enumerate() {
        match chain(job) {
            Some(key) => {
                let at = *by_key.entry(key).or_insert_with(|| {
                    chains.push(Vec::new());
                    chains.len() - 1
                });
                chains[at].push(index);
            }
            None => chains.push(vec![index]),
        }
    }
    chains
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;

    #[test]
    fn results_come_in_order_though_later_jobs_finish_first() {
        // Job i sleeps (10 - i) ms: on four threads the last ones finish first.
        let jobs: Vec<u64> = (0..10).collect();
        let mut seen = Vec::new();
        run_in_order(
            &jobs,
            |_| None::<()>,
            4,
            |&i| {
                std::thread::sleep(Duration::from_millis(10 - i));
                i * 2
            },
            |index, result| seen.push((index, result)),
        );
        let expected: Vec<(usize, u64)> = (0..10).map(|i| (i as usize, i * 2)).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn jobs_of_one_chain_never_overlap_and_keep_their_order() {
        // Jobs 'a' share a chain: each checks no other 'a' runs and records its turn.
        let jobs = ['a', 'b', 'a', 'c', 'a', 'b'];
        let running = AtomicUsize::new(0);
        let order = Mutex::new(Vec::new());
        run_in_order(
            &jobs,
            |&job| (job == 'a').then_some(job),
            3,
            |&job| {
                if job == 'a' {
                    assert_eq!(running.fetch_add(1, Ordering::SeqCst), 0, "overlap");
                    std::thread::sleep(Duration::from_millis(5));
                    running.fetch_sub(1, Ordering::SeqCst);
                }
                order.lock().unwrap().push(job);
            },
            |_, ()| {},
        );
        let order = order.into_inner().unwrap();
        assert_eq!(order.len(), jobs.len());
        assert_eq!(order.iter().filter(|&&j| j == 'a').count(), 3);
    }

    #[test]
    fn chains_group_by_key_in_order_of_first_job() {
        let jobs = [Some(1), None, Some(2), Some(1), None, Some(2)];
        assert_eq!(
            chains(&jobs, |j| *j),
            vec![vec![0, 3], vec![1], vec![2, 5], vec![4]]
        );
    }

    #[test]
    fn no_jobs_no_calls() {
        let mut calls = 0;
        run_in_order(&[] as &[u8], |_| None::<u8>, 4, |_| (), |_, ()| calls += 1);
        assert_eq!(calls, 0);
    }
}
