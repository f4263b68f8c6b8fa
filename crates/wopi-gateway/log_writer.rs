//! Log lines leave the process in batches, written by a thread of their own.
//!
//! A request formats and redacts its line where it is logged and appends it to one shared
//! buffer: a copy under a lock held for just that copy, no system call. The writer thread
//! sleeps until a line arrives, then gathers for up to [`GATHER`] and writes the whole batch
//! with one `write`. So under load the process makes about twenty writes a second, however
//! many lines it logs, and no request wakes another thread: with one wake-up and one write
//! per line (a channel per line, as before), logging at `info` cost a WOPI call about a fifth
//! of its CPU time (docs/benchmarks.md, S2c).
//!
//! Nothing is dropped while the [`Guard`] lives: when [`LIMIT`] bytes are waiting (the output cannot keep up), a
//! caller waits for the writer. Warnings and errors are written at once, not gathered. The
//! [`Guard`] writes what is left when it is dropped.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tracing_subscriber::fmt::MakeWriter;

/// How long the writer gathers lines after the first one of a batch.
const GATHER: Duration = Duration::from_millis(50);
/// A batch this large is written without waiting for the rest of [`GATHER`].
const HIGH_WATER: usize = 64 * 1024;
/// Callers wait while this much is waiting to be written.
const LIMIT: usize = 4 * 1024 * 1024;

#[derive(Debug, Default)]
struct Pending {
    buf: Vec<u8>,
    /// A warning or an error is waiting: write without gathering.
    urgent: bool,
    closed: bool,
}

#[derive(Debug)]
struct Shared {
    /// How long the writer gathers a batch ([`GATHER`]; tests set their own).
    gather: Duration,
    pending: Mutex<Pending>,
    /// Signalled to the writer: the first line of a batch, an urgent line, a full batch,
    /// closing.
    wake: Condvar,
    /// Signalled to callers waiting for room.
    room: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Where the subscriber writes: cheap to clone, shared by every thread.
#[derive(Debug, Clone)]
pub(crate) struct LogSink(Arc<Shared>);

/// Writes what is still waiting and stops the writer thread when dropped.
#[derive(Debug)]
pub(crate) struct Guard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl LogSink {
    /// A sink whose batches go to `out`, written by a thread named `name`.
    pub(crate) fn new<W: Write + Send + 'static>(out: W, name: &str) -> (Self, Guard) {
        Self::gathering(out, name, GATHER)
    }

    fn gathering<W: Write + Send + 'static>(out: W, name: &str, gather: Duration) -> (Self, Guard) {
        let shared = Arc::new(Shared {
            gather,
            pending: Mutex::default(),
            wake: Condvar::new(),
            room: Condvar::new(),
        });
        let thread = std::thread::Builder::new().name(name.to_owned()).spawn({
            let shared = Arc::clone(&shared);
            move || write_batches(&shared, out)
        });
        let thread = match thread {
            Ok(t) => Some(t),
            Err(e) => {
                // Nothing would ever write the lines: take none, rather than make callers
                // wait for room that never comes.
                eprintln!("cannot start the log writer thread ({e}): no log lines will be written");
                shared.lock().closed = true;
                None
            }
        };
        (Self(Arc::clone(&shared)), Guard { shared, thread })
    }

    fn push(&self, line: &[u8], urgent: bool) {
        let shared = &*self.0;
        let mut p = shared.lock();
        while p.buf.len() >= LIMIT && !p.closed {
            p = shared.room.wait(p).unwrap_or_else(PoisonError::into_inner);
        }
        // After the guard (or without a writer thread) nothing writes the buffer any more.
        if p.closed {
            return;
        }
        let was_empty = p.buf.is_empty();
        let before = p.buf.len();
        p.buf.extend_from_slice(line);
        let crossed = before < HIGH_WATER && p.buf.len() >= HIGH_WATER;
        let wake = was_empty || crossed || (urgent && !p.urgent);
        p.urgent |= urgent;
        drop(p);
        if wake {
            shared.wake.notify_one();
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        self.shared.room.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The writer thread: one `write_all` per batch.
fn write_batches<W: Write>(shared: &Shared, mut out: W) {
    let mut spare = Vec::new();
    loop {
        let mut p = shared.lock();
        while p.buf.is_empty() && !p.closed {
            p = shared.wake.wait(p).unwrap_or_else(PoisonError::into_inner);
        }
        let deadline = Instant::now() + shared.gather;
        while !p.closed && !p.urgent && p.buf.len() < HIGH_WATER {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            p = shared
                .wake
                .wait_timeout(p, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        let mut batch = std::mem::replace(&mut p.buf, std::mem::take(&mut spare));
        p.urgent = false;
        let closed = p.closed;
        drop(p);
        shared.room.notify_all();
        // A log that cannot be written has nowhere to report it: the lines are lost, the
        // process goes on.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
        spare = batch;
        if closed && shared.lock().buf.is_empty() {
            return;
        }
    }
}

/// One line's writer: redacts and appends.
#[derive(Debug)]
pub(crate) struct LineWriter {
    sink: LogSink,
    urgent: bool,
}

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.sink
            .push(gateway::redact(&text).as_bytes(), self.urgent);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogSink {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter {
            sink: self.clone(),
            urgent: false,
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> LineWriter {
        LineWriter {
            sink: self.clone(),
            urgent: *meta.level() <= tracing::Level::WARN,
        }
    }
}

// The writer is an OS thread, not a task: these tests wait on real time, in small steps.
#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    /// One `write` call: when it came, and its bytes.
    type Write1 = (Instant, Vec<u8>);

    /// An output that records each `write` call and when it came.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<Write1>>>);

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().push((Instant::now(), buf.to_vec()));
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn text(r: &Recorder) -> String {
        let w = r.0.lock().unwrap();
        String::from_utf8(w.iter().flat_map(|(_, b)| b.clone()).collect()).unwrap()
    }

    #[test]
    fn lines_are_gathered_into_one_write_and_nothing_is_lost() {
        let rec = Recorder::default();
        let (sink, guard) = LogSink::new(rec.clone(), "test-log");
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let sink = sink.clone();
                std::thread::spawn(move || {
                    for i in 0..500 {
                        let mut w = sink.make_writer();
                        w.write_all(format!("t{t} line {i}\n").as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(guard);
        let out = text(&rec);
        assert_eq!(out.lines().count(), 2000);
        for t in 0..4 {
            // Each thread's lines arrive whole and in its order.
            let mine: Vec<&str> = out
                .lines()
                .filter(|l| l.starts_with(&format!("t{t} ")))
                .collect();
            let want: Vec<String> = (0..500).map(|i| format!("t{t} line {i}")).collect();
            assert_eq!(mine, want);
        }
        let writes = rec.0.lock().unwrap().len();
        assert!(writes < 100, "2,000 lines took {writes} writes");
    }

    #[test]
    fn a_warning_is_written_without_waiting_for_the_batch() {
        // A minute's gathering: only a line that is not gathered is written within the wait.
        let rec = Recorder::default();
        let (sink, _guard) = LogSink::gathering(rec.clone(), "test-log", Duration::from_secs(60));
        sink.make_writer().write_all(b"INFO first\n").unwrap();
        let mut w = LineWriter { sink, urgent: true };
        w.write_all(b"WARN something\n").unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while text(&rec).is_empty() {
            assert!(Instant::now() < deadline, "the warning was not written");
            std::thread::sleep(Duration::from_millis(1));
        }
        // The info line waiting before it goes out with it, in order.
        assert_eq!(text(&rec), "INFO first\nWARN something\n");
    }

    #[test]
    fn lines_after_the_guard_are_not_kept() {
        let rec = Recorder::default();
        let (sink, guard) = LogSink::new(rec.clone(), "test-log");
        sink.make_writer().write_all(b"INFO before\n").unwrap();
        drop(guard);
        sink.make_writer().write_all(b"INFO after\n").unwrap();
        assert_eq!(text(&rec), "INFO before\n");
        assert!(sink.0.lock().buf.is_empty());
    }

    #[test]
    fn an_info_line_is_written_after_the_gathering_time_without_more_lines() {
        let rec = Recorder::default();
        let (sink, _guard) = LogSink::new(rec.clone(), "test-log");
        sink.make_writer().write_all(b"INFO one\n").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while text(&rec).is_empty() {
            assert!(Instant::now() < deadline, "the line was never written");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(text(&rec), "INFO one\n");
    }

    #[test]
    fn secrets_are_redacted_on_the_way_in() {
        let rec = Recorder::default();
        let (sink, guard) = LogSink::new(rec.clone(), "test-log");
        sink.make_writer()
            .write_all(b"GET /wopi/files/1?access_token=s3cret done\n")
            .unwrap();
        drop(guard);
        assert_eq!(text(&rec), "GET /wopi/files/1?access_token=REDACTED done\n");
    }

    #[test]
    fn a_full_buffer_makes_callers_wait_and_drops_nothing() {
        /// An output slower than the callers.
        #[derive(Clone, Default)]
        struct Slow(Arc<Mutex<usize>>);
        impl Write for Slow {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                std::thread::sleep(Duration::from_millis(20));
                *self.0.lock().unwrap() += buf.len();
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let slow = Slow::default();
        let (sink, guard) = LogSink::new(slow.clone(), "test-log");
        let line = vec![b'x'; 1023];
        let mut total = 0;
        for _ in 0..(3 * LIMIT / 1024) {
            let mut l = line.clone();
            l.push(b'\n');
            sink.make_writer().write_all(&l).unwrap();
            total += l.len();
            assert!(sink.0.lock().buf.len() <= LIMIT + 1024);
        }
        drop(guard);
        assert_eq!(*slow.0.lock().unwrap(), total);
    }
}
