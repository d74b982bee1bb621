//! No hang: back-to-back `run`s of /bin/true while both cores are busy. A runtime that can
//! lose the child's SIGCHLD (e.g. blocking signals only after the start) hangs here.

mod common;

use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RUNS: usize = 1000;
const PER_RUN: Duration = Duration::from_secs(10);

#[test]
fn a_thousand_runs_under_load_never_hang() {
    let env = Env::new("nohang");
    let b = env.bundle(&["/bin/true"]);
    let stop = Arc::new(AtomicBool::new(false));
    let spinners: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                // Busy, but niced: the cores stay loaded (the scheduling races stay), and
                // the 1000 runs still fit in ~30 s.
                // SAFETY: plain syscalls on this thread only.
                unsafe {
                    let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                    libc::setpriority(libc::PRIO_PROCESS, tid, 19);
                }
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
                x
            })
        })
        .collect();
    let start = Instant::now();
    let mut failures = Vec::new();
    let mut slowest = Duration::ZERO;
    for i in 0..RUNS {
        // Not registered for cleanup: a foreground run deletes its own container.
        let id = format!("nh-{}-{i}", std::process::id());
        let out = env.rt_opts(
            &["run", &id, "--bundle", b.path()],
            Opts {
                timeout: PER_RUN,
                capture: false,
                ..Opts::default()
            },
        );
        slowest = slowest.max(out.elapsed);
        if !out.ok() {
            // Keep a record and clean up what it left.
            failures.push(format!(
                "run {i}: code {:?}, timed out {}",
                out.code, out.timed_out
            ));
            let _ = env.rt(&["delete", "--force", &id]);
            if out.timed_out || failures.len() >= 5 {
                break;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for s in spinners {
        let _ = s.join();
    }
    let total = start.elapsed();
    eprintln!("{RUNS} runs in {total:?}, slowest {slowest:?}");
    assert!(failures.is_empty(), "failures: {failures:#?}");
    // Every run cleaned up after itself.
    let left: Vec<_> = std::fs::read_dir(&env.root)
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "state left behind: {left:?}");
}
