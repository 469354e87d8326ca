//! Runs a DAG of tasks on N worker threads: a task starts as soon as everything it depends
//! on has finished. After the first failure nothing new starts; running tasks finish, and
//! every error is returned.
//!
//! Owns ordering and parallelism only; what a task does is the caller's closure.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};

struct State<E> {
    ready: VecDeque<usize>,
    /// Unfinished dependencies per task.
    waiting_on: Vec<usize>,
    running: usize,
    finished: usize,
    errors: Vec<(usize, E)>,
}

/// `deps[i]` lists the tasks task `i` needs; every index must be smaller than `deps.len()`
/// and the graph acyclic (a cycle would leave tasks that never start: they are reported as
/// not run by the caller, who sees fewer calls than tasks). Returns the errors by task.
pub fn run_dag<E: Send>(
    deps: &[Vec<usize>],
    jobs: usize,
    run: impl Fn(usize) -> Result<(), E> + Sync,
) -> Result<(), Vec<(usize, E)>> {
    let count = deps.len();
    let mut dependents = vec![Vec::new(); count];
    for (task, needs) in deps.iter().enumerate() {
        for &need in needs {
            dependents[need].push(task);
        }
    }
    let state = Mutex::new(State {
        ready: (0..count).filter(|&t| deps[t].is_empty()).collect(),
        waiting_on: deps.iter().map(Vec::len).collect(),
        running: 0,
        finished: 0,
        errors: Vec::new(),
    });
    let wake = Condvar::new();
    let worker = || {
        loop {
            let task = {
                let mut s = state.lock().expect("scheduler lock");
                loop {
                    let stop = !s.errors.is_empty() || s.finished == count;
                    if stop || (s.ready.is_empty() && s.running == 0) {
                        wake.notify_all();
                        return;
                    }
                    if let Some(task) = s.ready.pop_front() {
                        s.running += 1;
                        break task;
                    }
                    s = wake.wait(s).expect("scheduler lock");
                }
            };
            let result = run(task);
            let mut s = state.lock().expect("scheduler lock");
            s.running -= 1;
            s.finished += 1;
            match result {
                Ok(()) => {
                    for &next in &dependents[task] {
                        s.waiting_on[next] -= 1;
                        if s.waiting_on[next] == 0 {
                            s.ready.push_back(next);
                        }
                    }
                }
                Err(err) => s.errors.push((task, err)),
            }
            wake.notify_all();
        }
    };
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1).min(count.max(1)) {
            scope.spawn(worker);
        }
    });
    let errors = state.into_inner().expect("scheduler lock").errors;
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}
