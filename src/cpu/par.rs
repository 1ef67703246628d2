//! How the CPU backend's kernels split work over threads: [`for_each`] runs `n` independent tasks,
//! on rayon's pool, or, inside [`with_team`], on a team of threads that wait for work by spinning
//! instead of parking.
//!
//! Why a team: a decoded token is ~120 small parallel products (q/k/v, o, gate/up, down for each
//! layer, then the LM head), with serial work between them (norms, RoPE, attention). Between two
//! products rayon's idle threads go to sleep, and each product wakes them again: natively a futex,
//! in a page a Web Worker parked on `Atomics.wait`, measured at ~75 µs a wake-up in Chromium, ~9 ms
//! of a 50 ms token. A team's threads spin on one atomic word for the whole forward pass, as
//! llama.cpp's threads do between its ops, so handing out a product costs a store and a few loads.
//! The spinning is bounded by the forward pass: outside [`with_team`] the threads are rayon's again
//! and sleep when idle (in a page: between tokens, while the event loop runs).

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

/// Threads the kernels split work over: the pool's (1 in a page without the threaded build).
pub fn threads() -> usize {
    rayon::current_num_threads()
}

/// Runs `f(0) … f(n - 1)`, in any order, over the threads: the team's if one is running on this
/// thread, else rayon's, else (one thread, one task, or called from a team's task) here in order.
pub fn for_each(n: usize, f: impl Fn(usize) + Sync) {
    if IN_TASK.with(|t| t.get()) {
        // A team's task is a unit of one thread: what it splits runs inside it.
        return (0..n).for_each(f);
    }
    if let Some(team) = current_team() {
        return team.run(n, &f);
    }
    if n <= 1 || threads() <= 1 {
        return (0..n).for_each(f);
    }
    use rayon::prelude::*;
    (0..n).into_par_iter().for_each(&f);
}

/// `f(i, chunk)` for each `size`-long chunk of `out` (the last may be shorter), over [`for_each`].
pub fn chunks_mut<T: Send>(out: &mut [T], size: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    if size == 0 || out.is_empty() {
        return;
    }
    let len = out.len();
    let base = SendPtr(out.as_mut_ptr());
    let base = &base;
    for_each(len.div_ceil(size), |i| {
        let start = i * size;
        let end = (start + size).min(len);
        // SAFETY: chunk i is [start, end) of `out`, inside it and disjoint from every other chunk;
        // `out` is borrowed mutably for the whole call.
        let chunk = unsafe { std::slice::from_raw_parts_mut(base.0.add(start), end - start) };
        f(i, chunk)
    });
}

struct SendPtr<T>(*mut T);
// SAFETY: only used to hand disjoint chunks of one exclusively borrowed slice to tasks.
unsafe impl<T: Send> Sync for SendPtr<T> {}

/// Runs `f` here with a team of [`threads`] threads (this one and `threads - 1` of rayon's, which
/// spin until `f` returns): every [`for_each`] inside `f` on this thread goes to the team. With one
/// thread, on a rayon thread, or inside another team, `f` simply runs.
pub fn with_team<R>(f: impl FnOnce() -> R) -> R {
    let threads = threads();
    if threads <= 1 || rayon::current_thread_index().is_some() || current_team().is_some() {
        return f();
    }
    let team = Team::default();
    rayon::in_place_scope(|s| {
        for _ in 1..threads {
            s.spawn(|_| team.serve());
        }
        // Ends the helpers' spinning however `f` leaves (a panic included).
        struct Leave<'a>(&'a Team);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                TEAM.with(|t| t.set(std::ptr::null()));
                self.0.stop.store(true, Ordering::Release);
            }
        }
        TEAM.with(|t| t.set(&team));
        let _leave = Leave(&team);
        f()
    })
}

thread_local! {
    /// The team this thread leads, while [`with_team`] runs.
    static TEAM: Cell<*const Team> = const { Cell::new(std::ptr::null()) };
    /// Whether this thread is running a team's task.
    static IN_TASK: Cell<bool> = const { Cell::new(false) };
}

fn current_team() -> Option<&'static Team> {
    let t = TEAM.with(|t| t.get());
    // SAFETY: set only by `with_team` for the duration of its `f` on this thread, where the team
    // (on `with_team`'s stack) outlives every use; cleared before it is dropped.
    (!t.is_null()).then(|| unsafe { &*t })
}

/// The state a team shares. `word` holds a job's generation, its task count and the next task to
/// claim (bits 40.., 20..40, 0..20); a task is claimed by a compare-exchange of the whole word, so a
/// thread that read a job's pointer for one generation can never run it for another.
#[derive(Default)]
struct Team {
    word: AtomicU64,
    /// Points at the running job's `&dyn Fn(usize)` (on the leader's stack).
    job: AtomicPtr<()>,
    /// Tasks of the running job finished.
    done: AtomicUsize,
    stop: AtomicBool,
    panicked: AtomicBool,
}

type Job<'a> = &'a (dyn Fn(usize) + Sync);

const FIELD: u32 = 20;
const FIELD_MASK: u64 = (1 << FIELD) - 1;

impl Team {
    /// The leader's side: publishes the job, works on it, and waits until every task has finished.
    fn run(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
        let max = FIELD_MASK as usize;
        if n > max {
            // More tasks than the word counts: runs of `max`.
            for start in (0..n).step_by(max) {
                self.run((n - start).min(max), &|i| f(start + i));
            }
            return;
        }
        if n == 0 {
            return;
        }
        let job: Job<'_> = f;
        self.done.store(0, Ordering::Relaxed);
        self.job
            .store(&job as *const Job<'_> as *mut (), Ordering::Relaxed);
        let generation = (self.word.load(Ordering::Relaxed) >> (2 * FIELD)) + 1;
        // Release: a helper that sees this word sees `job` and `done` as stored above.
        self.word.store(
            (generation << (2 * FIELD)) | ((n as u64) << FIELD),
            Ordering::Release,
        );
        self.work();
        while self.done.load(Ordering::Acquire) < n {
            std::hint::spin_loop();
        }
        if self.panicked.swap(false, Ordering::Relaxed) {
            resume_unwind(Box::new("a task of the CPU backend's thread team panicked"));
        }
    }

    /// Claims and runs tasks of the current job until none is left to claim.
    fn work(&self) {
        loop {
            let word = self.word.load(Ordering::Acquire);
            let (n, next) = ((word >> FIELD) & FIELD_MASK, word & FIELD_MASK);
            if next >= n {
                return;
            }
            let job = self.job.load(Ordering::Acquire);
            if self
                .word
                .compare_exchange_weak(word, word + 1, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            // SAFETY: the claim succeeded on the generation whose word published `job`, so its
            // leader is inside `run` waiting for this task (it cannot reach `done == n` before the
            // increment below): the `&dyn Fn` it points at is alive.
            let f = unsafe { *(job as *const Job<'_>) };
            IN_TASK.with(|t| t.set(true));
            if catch_unwind(AssertUnwindSafe(|| f(next as usize))).is_err() {
                self.panicked.store(true, Ordering::Relaxed);
            }
            IN_TASK.with(|t| t.set(false));
            self.done.fetch_add(1, Ordering::Release);
        }
    }

    /// A helper's side: claims tasks as they come, spinning between jobs, until the leader leaves.
    fn serve(&self) {
        while !self.stop.load(Ordering::Acquire) {
            self.work();
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicU32;

    /// Every task runs exactly once, for many jobs of different sizes (none, one, more than the
    /// threads, chunks of a slice) in one team; with more than one thread in the pool, a helper
    /// takes part.
    #[test]
    fn a_team_runs_each_task_once() {
        let ids = Mutex::new(HashSet::new());
        let leader = std::thread::current().id();
        let mut chunks = vec![0u32; 1001];
        let counts: Vec<AtomicU32> = (0..5000).map(|_| AtomicU32::new(0)).collect();
        with_team(|| {
            assert_eq!(current_team().is_some(), threads() > 1);
            for n in [0, 1, 2, 3, 17, 5000] {
                for_each(n, |i| {
                    counts[i].fetch_add(1, Ordering::Relaxed);
                });
            }
            // Slow tasks, so that a spinning helper surely claims some.
            for_each(64, |_| {
                ids.lock().unwrap().insert(std::thread::current().id());
                std::thread::sleep(std::time::Duration::from_millis(2));
            });
            chunks_mut(&mut chunks, 10, |i, c| {
                c.iter_mut().for_each(|v| *v += i as u32 + 1)
            });
            // A task that splits its own work runs it inside itself.
            let nested: Vec<AtomicU32> = (0..12).map(|_| AtomicU32::new(0)).collect();
            for_each(3, |i| {
                for_each(4, |j| {
                    nested[i * 4 + j].fetch_add(1, Ordering::Relaxed);
                })
            });
            assert!(nested.iter().all(|c| c.load(Ordering::Relaxed) == 1));
        });
        assert!(current_team().is_none());
        let expect = |i: usize| [1, 2, 3, 17, 5000].iter().filter(|&&n| i < n).count() as u32;
        for (i, c) in counts.iter().enumerate() {
            assert_eq!(c.load(Ordering::Relaxed), expect(i), "task {i}");
        }
        for (j, &v) in chunks.iter().enumerate() {
            assert_eq!(v, (j / 10) as u32 + 1, "element {j}");
        }
        let ids = ids.into_inner().unwrap();
        assert!(ids.contains(&leader) || threads() > 1);
        if threads() > 1 {
            assert!(ids.len() > 1, "no helper took a task: {ids:?}");
        }
    }

    /// A panicking task surfaces on the leader, and the team's helpers are released.
    #[test]
    fn a_panicking_task_panics_the_leader() {
        let r = catch_unwind(|| {
            with_team(|| {
                for_each(8, |i| assert!(i != 5, "task 5"));
            })
        });
        assert!(r.is_err());
        // The pool is usable afterwards (helpers left their spin loops).
        with_team(|| for_each(4, |_| ()));
    }
}
