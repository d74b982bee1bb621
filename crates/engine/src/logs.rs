//! Container logs in docker's json-file format, one JSON object per line:
//! `{"log":"hello\n","stream":"stdout","time":"2024-05-01T12:00:00.123456789Z"}`.
//!
//! [`LogWriter`] (used by the monitor) splits output into lines; a line without its
//! newline yet waits for the rest, up to docker's 16 KiB, and is written without a
//! trailing "\n" when the stream ends on it. [`read_logs`] is `docker logs`: `--tail`,
//! `--since`, `-t` and `-f`.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// docker's largest log entry: longer lines are split.
const MAX_ENTRY: usize = 16 * 1024;

/// How often `--follow` looks for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// Which of the container's streams a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Entry {
    log: String,
    stream: String,
    time: String,
}

/// Appends a container's output to its json-file log.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    /// The unfinished line of each stream (stdout, stderr).
    pending: [Vec<u8>; 2],
}

impl LogWriter {
    /// Opens (creating) the log file for appending.
    pub fn new(path: &Path) -> Result<LogWriter> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(LogWriter {
            path: path.to_path_buf(),
            file,
            pending: [Vec::new(), Vec::new()],
        })
    }

    /// Records `bytes` of `stream`: every complete line becomes an entry.
    pub fn write(&mut self, stream: Stream, bytes: &[u8]) -> Result<()> {
        let idx = stream as usize;
        let mut out = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let pending = &mut self.pending[idx];
            let room = MAX_ENTRY - pending.len();
            let take = match rest.iter().position(|b| *b == b'\n') {
                Some(nl) if nl < room => nl + 1,
                _ => rest.len().min(room),
            };
            pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if pending.ends_with(b"\n") || pending.len() >= MAX_ENTRY {
                encode(&mut out, stream, pending, SystemTime::now());
                pending.clear();
            }
        }
        self.append(&out)
    }

    /// Writes out unfinished lines (at the end of the container's output).
    pub fn flush(&mut self) -> Result<()> {
        let mut out = Vec::new();
        for (idx, stream) in [Stream::Stdout, Stream::Stderr].into_iter().enumerate() {
            if !self.pending[idx].is_empty() {
                encode(&mut out, stream, &self.pending[idx], SystemTime::now());
                self.pending[idx].clear();
            }
        }
        self.append(&out)
    }

    fn append(&mut self, out: &[u8]) -> Result<()> {
        if out.is_empty() {
            return Ok(());
        }
        self.file.write_all(out).map_err(|source| Error::Io {
            path: self.path.clone(),
            source,
        })
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

fn encode(out: &mut Vec<u8>, stream: Stream, line: &[u8], time: SystemTime) {
    let entry = Entry {
        log: String::from_utf8_lossy(line).into_owned(),
        stream: stream.name().into(),
        time: format_rfc3339_nano(time),
    };
    // Serializing three strings can't fail.
    if serde_json::to_writer(&mut *out, &entry).is_ok() {
        out.push(b'\n');
    }
}

/// What `docker logs` prints.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// Keep printing new lines until `still_running` says the container stopped.
    pub follow: bool,
    /// Only lines logged at or after this time.
    pub since: Option<SystemTime>,
    /// Only lines logged before this time; `follow` stops once it has passed.
    pub until: Option<SystemTime>,
    /// Only the last N lines (before `since` is applied, as docker).
    pub tail: Option<usize>,
    /// Prefix every line with its RFC 3339 time.
    pub timestamps: bool,
}

/// Prints the log at `path`: stdout lines to `out`, stderr lines to `err`. A missing log
/// file is an empty log.
pub fn read_logs(
    path: &Path,
    opts: &LogOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
    still_running: &dyn Fn() -> bool,
) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = match File::open(path) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(e)),
    };
    let mut offset = 0u64;
    if let Some(mut file) = file {
        let mut text = Vec::new();
        file.read_to_end(&mut text).map_err(io)?;
        // Only whole lines: the monitor may be writing the last one right now.
        let complete = text.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
        offset = complete as u64;
        let lines: Vec<&[u8]> = text[..complete]
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        let start = opts.tail.map_or(0, |n| lines.len().saturating_sub(n));
        for line in &lines[start..] {
            print_entry(line, opts, out, err).map_err(io)?;
        }
    }
    out.flush().map_err(io)?;
    err.flush().map_err(io)?;
    if opts.follow {
        follow(path, offset, opts, out, err, still_running)?;
    }
    Ok(())
}

fn follow(
    path: &Path,
    mut offset: u64,
    opts: &LogOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
    still_running: &dyn Fn() -> bool,
) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    loop {
        // Checked before reading, so lines written just before the container stopped are
        // still printed by this last round.
        let running = still_running();
        if let Ok(mut file) = File::open(path) {
            file.seek(SeekFrom::Start(offset)).map_err(io)?;
            let mut reader = BufReader::new(file);
            let mut line = Vec::new();
            loop {
                line.clear();
                let n = reader.read_until(b'\n', &mut line).map_err(io)?;
                if n == 0 || !line.ends_with(b"\n") {
                    break;
                }
                offset += n as u64;
                print_entry(&line[..n - 1], opts, out, err).map_err(io)?;
            }
            out.flush().map_err(io)?;
            err.flush().map_err(io)?;
        }
        let past_until = opts.until.is_some_and(|u| SystemTime::now() >= u);
        if !running || past_until {
            return Ok(());
        }
        std::thread::sleep(FOLLOW_POLL);
    }
}

fn print_entry(
    line: &[u8],
    opts: &LogOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> std::io::Result<()> {
    // A line that isn't an entry (a torn write after a crash) is skipped, as docker does.
    let Ok(entry) = serde_json::from_slice::<Entry>(line) else {
        return Ok(());
    };
    if opts.since.is_some() || opts.until.is_some() {
        let Some(t) = parse_rfc3339(&entry.time) else {
            return Ok(());
        };
        if opts.since.is_some_and(|s| t < s) || opts.until.is_some_and(|u| t >= u) {
            return Ok(());
        }
    }
    let sink: &mut dyn Write = if entry.stream == "stderr" { err } else { out };
    if opts.timestamps {
        write!(sink, "{} ", entry.time)?;
    }
    sink.write_all(entry.log.as_bytes())
}

/// `2024-05-01T12:00:00.123456789Z` (UTC, nanoseconds), docker's log time format.
pub fn format_rfc3339_nano(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Parses RFC 3339 times as docker writes and accepts them: `2024-05-01T12:00:00Z`, with
/// optional fraction and a `Z` or `±hh:mm` offset.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let mut padded: String = frac[..digits.min(9)].to_string();
        while padded.len() < 9 {
            padded.push('0');
        }
        nanos = padded.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (oh, om) = rest[1..].split_once(':')?;
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60)
        }
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// `--since` as docker takes it: an RFC 3339 time, a Unix time (`1700000000` or
/// `1700000000.5`), or a duration before `now` (`10m`, `1h30m`, `45s`).
pub fn parse_since(s: &str, now: SystemTime) -> Result<SystemTime> {
    parse_time(s, now, "since")
}

/// `--until`, in the same forms as `--since`.
pub fn parse_until(s: &str, now: SystemTime) -> Result<SystemTime> {
    parse_time(s, now, "until")
}

fn parse_time(s: &str, now: SystemTime, flag: &str) -> Result<SystemTime> {
    let bad = || Error::InvalidOption(format!("invalid value for \"{flag}\": {s:?}"));
    if let Some(t) = parse_rfc3339(s) {
        return Ok(t);
    }
    if !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
        let secs: f64 = s.parse().map_err(|_| bad())?;
        return Ok(UNIX_EPOCH + Duration::from_secs_f64(secs));
    }
    let ago = parse_duration(s).ok_or_else(bad)?;
    now.checked_sub(ago).ok_or_else(bad)
}

/// Go's duration strings: a sequence of number+unit (h, m, s, ms, us, ns).
fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[u..];
    }
    Some(Duration::from_secs_f64(total))
}

/// Days since 1970-01-01 -> (year, month, day) (Howard Hinnant's civil_from_days).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// (year, month, day) -> days since 1970-01-01.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn read(path: &Path, opts: &LogOptions) -> (String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        read_logs(path, opts, &mut out, &mut err, &|| false).unwrap();
        (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn times_round_trip() {
        let t = UNIX_EPOCH + Duration::new(1_714_564_800, 123_456_789);
        let s = format_rfc3339_nano(t);
        assert_eq!(s, "2024-05-01T12:00:00.123456789Z");
        assert_eq!(parse_rfc3339(&s), Some(t));
        assert_eq!(
            parse_rfc3339("2024-05-01T14:00:00+02:00"),
            Some(UNIX_EPOCH + Duration::from_secs(1_714_564_800))
        );
        assert_eq!(
            format_rfc3339_nano(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000000000Z"
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
        let now = UNIX_EPOCH + Duration::from_secs(10_000);
        assert_eq!(
            parse_since("1h30m", now).unwrap(),
            UNIX_EPOCH + Duration::from_secs(4_600)
        );
        assert_eq!(
            parse_since("1700000000", now).unwrap(),
            UNIX_EPOCH + Duration::from_secs(1_700_000_000)
        );
        assert!(parse_since("soon", now).is_err());
    }

    #[test]
    fn lines_are_split_and_partial_lines_wait() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let mut w = LogWriter::new(&path).unwrap();
        w.write(Stream::Stdout, b"one\ntw").unwrap();
        w.write(Stream::Stderr, b"oops \"quoted\"\n").unwrap();
        w.write(Stream::Stdout, b"o\nthree").unwrap();
        drop(w);
        let text = std::fs::read_to_string(&path).unwrap();
        let entries: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(entries.len(), 4);
        assert_eq!(entries[0]["log"], "one\n");
        assert_eq!(entries[1]["stream"], "stderr");
        assert_eq!(entries[2]["log"], "two\n");
        assert_eq!(entries[3]["log"], "three");
        assert!(parse_rfc3339(entries[0]["time"].as_str().unwrap()).is_some());

        let (out, err) = read(&path, &LogOptions::default());
        assert_eq!(out, "one\ntwo\nthree");
        assert_eq!(err, "oops \"quoted\"\n");
        let (out, err) = read(
            &path,
            &LogOptions {
                tail: Some(2),
                ..Default::default()
            },
        );
        assert_eq!((out.as_str(), err.as_str()), ("two\nthree", ""));
        let (out, _) = read(
            &path,
            &LogOptions {
                tail: Some(1),
                timestamps: true,
                ..Default::default()
            },
        );
        assert!(out.ends_with("Z three") && out.starts_with("20"), "{out}");
        let (out, err) = read(
            &path,
            &LogOptions {
                since: Some(SystemTime::now() + Duration::from_secs(60)),
                ..Default::default()
            },
        );
        assert_eq!((out.as_str(), err.as_str()), ("", ""));
        // --until: everything was logged before a minute from now, nothing before the epoch.
        let until = |t| {
            read(
                &path,
                &LogOptions {
                    until: Some(t),
                    ..Default::default()
                },
            )
        };
        let (out, err) = until(SystemTime::now() + Duration::from_secs(60));
        assert_eq!(
            (out.as_str(), err.as_str()),
            ("one\ntwo\nthree", "oops \"quoted\"\n")
        );
        assert_eq!(until(UNIX_EPOCH).0, "");
        // No log yet is an empty log.
        assert_eq!(read(&dir.path().join("none"), &LogOptions::default()).0, "");
    }

    #[test]
    fn long_lines_are_cut_at_16k() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut w = LogWriter::new(&path).unwrap();
        w.write(Stream::Stdout, &vec![b'x'; MAX_ENTRY + 10])
            .unwrap();
        w.write(Stream::Stdout, b"\n").unwrap();
        drop(w);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert_eq!(read(&path, &LogOptions::default()).0.len(), MAX_ENTRY + 11);
    }

    #[test]
    fn follow_prints_lines_written_until_the_container_stops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut w = LogWriter::new(&path).unwrap();
        w.write(Stream::Stdout, b"before\n").unwrap();
        let rounds = Cell::new(0);
        let mut out = Vec::new();
        let still_running = || {
            // The "monitor" writes one more line, then the container stops.
            rounds.set(rounds.get() + 1);
            if rounds.get() == 2 {
                w_write_after(&path);
            }
            rounds.get() < 3
        };
        let opts = LogOptions {
            follow: true,
            ..Default::default()
        };
        read_logs(&path, &opts, &mut out, &mut Vec::new(), &still_running).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "before\nafter\n");
        drop(w);
    }

    fn w_write_after(path: &Path) {
        let mut w = LogWriter::new(path).unwrap();
        w.write(Stream::Stdout, b"after\n").unwrap();
    }
}
