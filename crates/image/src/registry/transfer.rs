//! Blob transfers a few at a time, and the byte counting behind their progress bars.
//!
//! Plain scoped threads rather than an async runtime: a pull moves a handful of large
//! blobs, each a blocking stream into a file, and the rest of the crate is synchronous.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;

use super::progress::{Progress, ProgressFn};
use super::MAX_CONCURRENT_TRANSFERS;
use crate::digest::Digest;
use crate::error::Result;

/// Run `work` on every item, [`MAX_CONCURRENT_TRANSFERS`] at a time. `on_done(i)` runs on
/// the calling thread as each item finishes (in completion order), so it may use what
/// isn't `Sync` (the store's database). After the first error no new item starts, `cancel`
/// tells running ones to stop, and that error (not the "cancelled" ones it causes) is
/// returned once every thread has ended.
pub(crate) fn concurrently<T: Sync>(
    items: &[T],
    work: impl Fn(&T, &AtomicBool) -> Result<()> + Sync,
    mut on_done: impl FnMut(usize) -> Result<()>,
) -> Result<()> {
    let next = AtomicUsize::new(0);
    let cancel = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel();
    thread::scope(|s| {
        for _ in 0..MAX_CONCURRENT_TRANSFERS.min(items.len()) {
            let tx = tx.clone();
            let (next, cancel, work) = (&next, &cancel, &work);
            s.spawn(move || {
                while !cancel.load(Ordering::Acquire) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let res = work(item, cancel);
                    let failed = res.is_err();
                    // The error is queued before the others are told to stop (Release,
                    // paired with their Acquire), so it reaches the receiver ahead of the
                    // "cancelled" errors it causes.
                    let sent = tx.send((i, res));
                    if failed {
                        cancel.store(true, Ordering::Release);
                    }
                    if sent.is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut first_err = None;
        for (i, res) in rx {
            let res = match res {
                Ok(()) if first_err.is_none() => on_done(i),
                other => other,
            };
            if let Err(e) = res {
                cancel.store(true, Ordering::Release);
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    })
}

/// Report progress every this many bytes (and at the end).
const REPORT_EVERY: u64 = 256 << 10;

/// A reader that reports [`Progress::Transferring`] and stops when cancelled.
pub(crate) struct ProgressReader<'a, R> {
    inner: R,
    digest: &'a Digest,
    done: u64,
    total: u64,
    reported: u64,
    progress: ProgressFn<'a>,
    cancel: &'a AtomicBool,
}

impl<'a, R: Read> ProgressReader<'a, R> {
    pub(crate) fn new(
        inner: R,
        digest: &'a Digest,
        total: u64,
        progress: ProgressFn<'a>,
        cancel: &'a AtomicBool,
    ) -> Self {
        progress(Progress::Transferring {
            digest: digest.clone(),
            done: 0,
            total,
        });
        ProgressReader {
            inner,
            digest,
            done: 0,
            total,
            reported: 0,
            progress,
            cancel,
        }
    }
}

impl<R> ProgressReader<'_, R> {
    /// Bytes read so far.
    pub(crate) fn done(&self) -> u64 {
        self.done
    }
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.load(Ordering::Acquire) {
            // Not ErrorKind::Interrupted: io::copy would retry that forever.
            return Err(io::Error::other("cancelled: another transfer failed"));
        }
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if self.done - self.reported >= REPORT_EVERY || n == 0 && self.done != self.reported {
            self.reported = self.done;
            (self.progress)(Progress::Transferring {
                digest: self.digest.clone(),
                done: self.done,
                total: self.total,
            });
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use std::sync::Mutex;
    use std::time::Duration;

    #[test]
    fn at_most_three_at_a_time_and_first_error_wins() {
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let items: Vec<usize> = (0..8).collect();
        let done = Mutex::new(Vec::new());
        concurrently(
            &items,
            |_, _| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                thread::sleep(Duration::from_millis(30));
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            },
            |i| {
                done.lock().expect("lock").push(i);
                Ok(())
            },
        )
        .expect("all ok");
        assert_eq!(peak.load(Ordering::SeqCst), MAX_CONCURRENT_TRANSFERS);
        let mut d = done.into_inner().expect("lock");
        d.sort();
        assert_eq!(d, items);

        let started = AtomicUsize::new(0);
        let err = concurrently(
            &items,
            |&i, _| {
                started.fetch_add(1, Ordering::SeqCst);
                if i == 1 {
                    return Err(Error::ImageNotFound("one".into()));
                }
                thread::sleep(Duration::from_millis(30));
                Ok(())
            },
            |_| Ok(()),
        )
        .unwrap_err();
        assert!(err.to_string().contains("one"), "{err}");
        assert!(started.load(Ordering::SeqCst) < items.len());
    }

    #[test]
    fn the_failure_is_reported_not_the_cancellations_it_causes() {
        // Item 0 fails after the others are running; they fail at once when cancelled,
        // so their errors race the root one to the receiver.
        let items: Vec<usize> = (0..3).collect();
        for _ in 0..200 {
            let running = AtomicUsize::new(0);
            let err = concurrently(
                &items,
                |&i, cancel| {
                    running.fetch_add(1, Ordering::SeqCst);
                    while running.load(Ordering::SeqCst) < items.len() {
                        thread::yield_now();
                    }
                    if i == 0 {
                        return Err(Error::ImageNotFound("root cause".into()));
                    }
                    while !cancel.load(Ordering::Acquire) {
                        thread::yield_now();
                    }
                    Err(Error::ImageNotFound("cancelled".into()))
                },
                |_| Ok(()),
            )
            .unwrap_err();
            assert!(err.to_string().contains("root cause"), "{err}");
        }
    }

    #[test]
    fn a_cancelled_reader_ends_the_copy() {
        let d = Digest::of(b"");
        let cancel = AtomicBool::new(false);
        let seen = Mutex::new(Vec::new());
        let record = |p: Progress| seen.lock().expect("lock").push(p);
        let mut r = ProgressReader::new(io::repeat(0).take(1 << 20), &d, 1 << 20, &record, &cancel);
        assert_eq!(io::copy(&mut r, &mut io::sink()).expect("copy"), 1 << 20);
        assert!(matches!(
            seen.lock().expect("lock").last(),
            Some(Progress::Transferring { done, total, .. }) if *done == 1 << 20 && *total == 1 << 20
        ));
        cancel.store(true, Ordering::Relaxed);
        let mut r = ProgressReader::new(io::repeat(0), &d, 0, &record, &cancel);
        // Must fail, not spin: io::copy retries ErrorKind::Interrupted forever.
        assert!(io::copy(&mut r, &mut io::sink()).is_err());
    }
}
