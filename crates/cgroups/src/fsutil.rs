//! Small file helpers for cgroupfs: one open + one read or write per call, errors carrying
//! the path. cgroup files must be written with a single `write(2)`, never created or
//! truncated, so `std::fs::write` is not used.

use crate::CgroupError;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Writes `value` to `dir/file` with one `write(2)`.
pub(crate) fn write(dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    write_path(&dir.join(file), value)
}

/// Writes `value` to `path` with one `write(2)`.
pub(crate) fn write_path(path: &Path, value: &str) -> Result<(), CgroupError> {
    write_raw(path, value).map_err(|source| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    })
}

/// Like [`write_path`] but returns the bare `io::Error` so callers can look at its kind.
pub(crate) fn write_raw(path: &Path, value: &str) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)?;
    let n = f.write(value.as_bytes())?;
    if n != value.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, "short write"));
    }
    Ok(())
}

/// Opens a cgroup file for several single-write updates (see [`write_to`]).
pub(crate) fn open_write(path: &Path) -> Result<File, CgroupError> {
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|source| CgroupError::Write {
            path: path.to_path_buf(),
            value: String::new(),
            source,
        })
}

/// One `write(2)` of `value` to an already open cgroup file.
pub(crate) fn write_to(f: &mut File, path: &Path, value: &str) -> Result<(), CgroupError> {
    let err = |source| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    };
    let n = f.write(value.as_bytes()).map_err(err)?;
    if n != value.len() {
        return Err(err(io::Error::new(io::ErrorKind::WriteZero, "short write")));
    }
    Ok(())
}

/// Reads the whole of `dir/file`.
pub(crate) fn read(dir: &Path, file: &str) -> Result<String, CgroupError> {
    read_path(&dir.join(file))
}

/// Reads the whole of `path`.
pub(crate) fn read_path(path: &Path) -> Result<String, CgroupError> {
    read_raw(path).map_err(|source| CgroupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn read_raw(path: &Path) -> io::Result<String> {
    read_with_capacity(path, 64)
}

/// Reads a /proc or cgroupfs file with a buffer of `cap` bytes to start with: these files
/// report size 0, and each short read of a generated file like mountinfo costs a pass of
/// the kernel over its data, so big files get a big buffer up front.
pub(crate) fn read_with_capacity(path: &Path, cap: usize) -> io::Result<String> {
    let mut s = String::with_capacity(cap);
    File::open(path)?.read_to_string(&mut s)?;
    Ok(s)
}

/// Reads `dir/file`, `None` when it does not exist (controller or feature absent).
pub(crate) fn read_opt(dir: &Path, file: &str) -> Result<Option<String>, CgroupError> {
    let path = dir.join(file);
    match read_raw(&path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read { path, source }),
    }
}

/// Parses a cgroup number; `max` is `u64::MAX`.
pub(crate) fn parse_u64(path: &Path, s: &str) -> Result<u64, CgroupError> {
    let s = s.trim();
    if s == "max" {
        return Ok(u64::MAX);
    }
    s.parse().map_err(|_| CgroupError::Parse {
        path: path.to_path_buf(),
        reason: format!("expected a number, found {s:?}"),
    })
}

/// Reads `dir/file` as one number (`max` is `u64::MAX`); `None` when the file is absent.
pub(crate) fn read_u64_opt(dir: &Path, file: &str) -> Result<Option<u64>, CgroupError> {
    match read_opt(dir, file)? {
        Some(s) => parse_u64(&dir.join(file), &s).map(Some),
        None => Ok(None),
    }
}

/// Parses `key value` lines (memory.stat, cpu.stat, memory.events ...).
pub(crate) fn parse_flat_keyed(text: &str) -> impl Iterator<Item = (&str, u64)> {
    text.lines().filter_map(|l| {
        let mut it = l.split_whitespace();
        let k = it.next()?;
        let v = it.next()?.parse().ok()?;
        Some((k, v))
    })
}

/// Creates the cgroup directory `path`, and its missing parents (top-down) only when the
/// first `mkdir` says they are missing. Returns the directories created, outermost first
/// (empty when `path` already existed).
pub(crate) fn mkdir_all(path: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let mut created = Vec::new();
    mkdir_rec(path, &mut created, 0)?;
    Ok(created)
}

fn mkdir_rec(path: &Path, created: &mut Vec<PathBuf>, depth: usize) -> Result<(), CgroupError> {
    let err = |source| CgroupError::Create {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::create_dir(path) {
        Ok(()) => {
            created.push(path.to_path_buf());
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound && depth < 64 => {
            let parent = path.parent().ok_or_else(|| err(e))?;
            mkdir_rec(parent, created, depth + 1)?;
            match std::fs::create_dir(path) {
                Ok(()) => {
                    created.push(path.to_path_buf());
                    Ok(())
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
                Err(e) => Err(err(e)),
            }
        }
        Err(e) => Err(err(e)),
    }
}

/// Removes the cgroup directory `path` and every cgroup below it, deepest first. A missing
/// directory is not an error. `EBUSY` (processes still leaving) is retried a few times.
pub(crate) fn remove_cgroup(path: &Path) -> Result<(), CgroupError> {
    let mut delay = std::time::Duration::from_millis(1);
    let mut children_removed = false;
    for attempt in 0.. {
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            // Child cgroups: remove them first (listing a cgroup directory only when it
            // has some keeps the common case to one rmdir per hierarchy).
            Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) && !children_removed => {
                remove_children(path)?;
                children_removed = true;
            }
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 8 => {
                std::thread::sleep(delay);
                delay *= 2;
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
    }
    Ok(())
}

fn remove_children(path: &Path) -> Result<(), CgroupError> {
    let entries = std::fs::read_dir(path).map_err(|source| CgroupError::Remove {
        path: path.to_path_buf(),
        source,
    })?;
    for entry in entries.flatten() {
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_cgroup(&entry.path())?;
        }
    }
    Ok(())
}

/// Every pid listed in `cgroup.procs` of `dir` and of every cgroup below it.
pub(crate) fn pids_recursive(dir: &Path, out: &mut Vec<i32>) -> Result<(), CgroupError> {
    let procs = dir.join("cgroup.procs");
    let text = match read_raw(&procs) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(CgroupError::Read {
                path: procs,
                source,
            })
        }
    };
    for l in text.lines() {
        let pid = l.trim().parse().map_err(|_| CgroupError::Parse {
            path: procs.clone(),
            reason: format!("not a pid: {l:?}"),
        })?;
        out.push(pid);
    }
    let entries = std::fs::read_dir(dir).map_err(|source| CgroupError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries.flatten() {
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            pids_recursive(&entry.path(), out)?;
        }
    }
    Ok(())
}

/// Whether `e` says the file does not exist.
pub(crate) fn is_not_found(e: &CgroupError) -> bool {
    match e {
        CgroupError::Write { source, .. } | CgroupError::Read { source, .. } => {
            source.kind() == io::ErrorKind::NotFound
        }
        _ => false,
    }
}
