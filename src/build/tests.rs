use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use super::schedule::run_dag;
use super::statcache::{StatCache, hash_file};

#[test]
fn tasks_start_only_after_their_dependencies() {
    // 0 → 1 → 3, 0 → 2 → 3
    let deps = vec![vec![], vec![0], vec![0], vec![1, 2]];
    let order = Mutex::new(Vec::new());
    run_dag(&deps, 2, |t| -> Result<(), ()> {
        order.lock().unwrap().push(t);
        Ok(())
    })
    .unwrap();
    let order = order.into_inner().unwrap();
    let pos = |t: usize| order.iter().position(|x| *x == t).unwrap();
    assert_eq!(order.len(), 4);
    assert!(pos(0) < pos(1) && pos(0) < pos(2));
    assert!(pos(1) < pos(3) && pos(2) < pos(3));
}

#[test]
fn independent_tasks_run_at_the_same_time() {
    let arrived = Mutex::new(0);
    let both = Condvar::new();
    let met = AtomicUsize::new(0);
    run_dag(&[vec![], vec![]], 2, |_| -> Result<(), ()> {
        let mut n = arrived.lock().unwrap();
        *n += 1;
        both.notify_all();
        let (n, timeout) = both
            .wait_timeout_while(n, Duration::from_secs(10), |n| *n < 2)
            .unwrap();
        if !timeout.timed_out() && *n == 2 {
            met.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(
        met.load(Ordering::SeqCst),
        2,
        "both tasks were running at once"
    );
}

#[test]
fn a_failure_stops_what_depends_on_it() {
    let ran = Mutex::new(Vec::new());
    let errors = run_dag(&[vec![], vec![0]], 1, |t| {
        ran.lock().unwrap().push(t);
        if t == 0 { Err("broken") } else { Ok(()) }
    })
    .unwrap_err();
    assert_eq!(errors, [(0, "broken")]);
    assert_eq!(*ran.lock().unwrap(), [0]);
}

#[test]
fn stat_cache_hashes_once_and_notices_changes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, "one").unwrap();
    // Old enough to be remembered (files changed in the last seconds are not).
    let old = std::time::SystemTime::now() - Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let cache = StatCache::default();
    let first = cache.hash(&file).unwrap();
    assert_eq!(first, blake3::hash(b"one").to_hex().to_string());
    assert_eq!(first, hash_file(&file).unwrap());
    assert_eq!(cache.hash(&file).unwrap(), first);
    assert_eq!(cache.counts(), (1, 1));
    std::fs::write(&file, "two!").unwrap();
    let second = cache.hash(&file).unwrap();
    assert_eq!(second, blake3::hash(b"two!").to_hex().to_string());
    assert_eq!(cache.counts(), (1, 2));
}

#[test]
fn stat_cache_survives_a_round_trip_through_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::Store::open(dir.path().join("store")).unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, "content").unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let cache = StatCache::load(&store);
    cache.hash(&file).unwrap();
    cache.save(&store).unwrap();
    let again = StatCache::load(&store);
    again.hash(&file).unwrap();
    assert_eq!(again.counts(), (1, 0));
}
