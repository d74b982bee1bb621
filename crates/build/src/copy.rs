//! Writing COPY/ADD sources into the image's view (an overlay of the parent's layers with a
//! fresh upper dir), with docker's destination rules:
//!
//! * a relative destination is taken from the WORKDIR;
//! * a destination ending in `/`, or several sources, or an existing directory means
//!   "into this directory"; missing directories are made (`mkdir -p`);
//! * a source directory copies its *contents*;
//! * ADD extracts a local tar archive (plain, gzip or zstd) into the destination directory;
//! * files get uid/gid 0 unless `--chown` (or, for `--from`, they keep their owners), and
//!   `--chmod` replaces their mode; modification times are kept.
//!
//! Every write goes through [`crate::fsops`]: destination directories are resolved inside
//! the view's root and files are created by descriptor + single name with `O_NOFOLLOW`,
//! so a symlink in the image can't redirect a write outside the layer.

use std::collections::HashMap;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fchmod, futimens, mkdirat, mknodat, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

use crate::fsops;
use crate::source::{Kind, Match, Node};

/// How to write one COPY/ADD.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Absolute destination as given (a trailing `/` means a directory).
    pub dest: String,
    /// `--chown` resolved to ids.
    pub chown: Option<(u32, u32)>,
    /// `--chmod` (octal).
    pub chmod: Option<u32>,
    /// Keep the sources' owners (`COPY --from`) instead of 0:0.
    pub keep_owner: bool,
    /// ADD: extract local tar archives.
    pub extract: bool,
}

/// A heredoc source or other in-memory file.
pub struct InlineFile {
    pub name: String,
    pub content: Vec<u8>,
}

fn io_err(what: &str, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

/// Split an absolute destination into (parent dir, last name).
fn split_dest(dest: &str) -> (String, String) {
    let d = dest.trim_end_matches('/');
    match d.rsplit_once('/') {
        Some((p, n)) => (p.to_string(), n.to_string()),
        None => (String::new(), d.to_string()),
    }
}

struct Writer<'a> {
    root: BorrowedFd<'a>,
    opts: &'a CopyOptions,
    /// Directories whose times are set once their contents are written.
    dir_times: Vec<(OwnedFd, (i64, i64))>,
}

impl Writer<'_> {
    fn owner(&self, n: &Node) -> (u32, u32) {
        match self.opts.chown {
            Some(o) => o,
            None if self.opts.keep_owner => (n.uid, n.gid),
            None => (0, 0),
        }
    }

    fn mode(&self, n: &Node) -> u32 {
        self.opts.chmod.unwrap_or(n.mode)
    }

    fn mkdir_p(&self, rel: &str) -> Result<OwnedFd, String> {
        let owner = self.opts.chown;
        fsops::mkdir_p_in_root(self.root, rel, 0o755, owner)
            .map_err(|e| io_err(&format!("mkdir {rel:?}"), e))
    }

    /// Remove whatever non-directory is at `name` (a directory there is an error unless
    /// `dir_ok`, in which case it is kept).
    fn clear(&self, dir: BorrowedFd<'_>, name: &str, dir_ok: bool) -> Result<bool, String> {
        match fsops::lstat_at(dir, name) {
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(io_err(name, e)),
            Ok(st) if st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFDIR.bits() => {
                if dir_ok {
                    Ok(true)
                } else {
                    Err(format!(
                        "cannot replace directory {name:?} with a non-directory"
                    ))
                }
            }
            Ok(_) => {
                unlinkat(dir, name, UnlinkatFlags::NoRemoveDir).map_err(|e| io_err(name, e))?;
                Ok(false)
            }
        }
    }

    /// Write one node as `name` in `dir`; a directory's descriptor is returned.
    fn write_node(
        &mut self,
        m: &Match,
        n: &Node,
        dir: BorrowedFd<'_>,
        name: &str,
    ) -> Result<Option<OwnedFd>, String> {
        let (uid, gid) = self.owner(n);
        let mode = Mode::from_bits_truncate(self.mode(n));
        let what = if n.rel.is_empty() {
            m.path.clone()
        } else {
            format!("{}/{}", m.path, n.rel)
        };
        let times = |t: (i64, i64)| TimeSpec::new(t.0, t.1);
        match &n.kind {
            Kind::Dir => {
                if !self.clear(dir, name, true)? {
                    mkdirat(dir, name, mode).map_err(|e| io_err(name, e))?;
                }
                let fd = fsops::open_child_dir(dir, name).map_err(|e| io_err(name, e))?;
                fchown(
                    fd.as_fd(),
                    Some(Uid::from_raw(uid)),
                    Some(Gid::from_raw(gid)),
                )
                .map_err(|e| io_err(name, e))?;
                fchmod(fd.as_fd(), mode).map_err(|e| io_err(name, e))?;
                let keep = fd.try_clone().map_err(|e| io_err(name, e))?;
                self.dir_times.push((keep, n.mtime));
                Ok(Some(fd))
            }
            Kind::File => {
                self.clear(dir, name, false)?;
                let mut src = m.open(n).map_err(|e| io_err(&what, e))?;
                let fd = openat(
                    dir,
                    name,
                    OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_WRONLY
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(|e| io_err(name, e))?;
                let mut dst = std::fs::File::from(fd);
                std::io::copy(&mut src, &mut dst).map_err(|e| io_err(&what, e))?;
                fchown(
                    dst.as_fd(),
                    Some(Uid::from_raw(uid)),
                    Some(Gid::from_raw(gid)),
                )
                .map_err(|e| io_err(name, e))?;
                fchmod(dst.as_fd(), mode).map_err(|e| io_err(name, e))?;
                futimens(dst.as_fd(), &times(n.mtime), &times(n.mtime))
                    .map_err(|e| io_err(name, e))?;
                Ok(None)
            }
            Kind::Symlink(target) => {
                self.clear(dir, name, false)?;
                symlinkat(target.as_path(), dir, name).map_err(|e| io_err(name, e))?;
                fchownat(
                    dir,
                    name,
                    Some(Uid::from_raw(uid)),
                    Some(Gid::from_raw(gid)),
                    nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(|e| io_err(name, e))?;
                utimensat(
                    dir,
                    name,
                    &times(n.mtime),
                    &times(n.mtime),
                    UtimensatFlags::NoFollowSymlink,
                )
                .map_err(|e| io_err(name, e))?;
                Ok(None)
            }
            Kind::Special { rdev, fmt } => {
                self.clear(dir, name, false)?;
                let kind = SFlag::from_bits_truncate(*fmt);
                mknodat(dir, name, kind, mode, *rdev).map_err(|e| io_err(name, e))?;
                fchownat(
                    dir,
                    name,
                    Some(Uid::from_raw(uid)),
                    Some(Gid::from_raw(gid)),
                    nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(|e| io_err(name, e))?;
                Ok(None)
            }
        }
    }

    /// Copy a directory match's contents into `target`.
    fn copy_tree(&mut self, m: &Match, target: OwnedFd) -> Result<(), String> {
        let mut dirs: HashMap<String, OwnedFd> = HashMap::new();
        dirs.insert(String::new(), target);
        for n in m.nodes.iter().skip(1) {
            let (parent, name) = match n.rel.rsplit_once('/') {
                Some((p, n)) => (p.to_string(), n.to_string()),
                None => (String::new(), n.rel.clone()),
            };
            let Some(pfd) = dirs.get(&parent) else {
                return Err(format!("{}: parent directory missing in the walk", n.rel));
            };
            let pfd = pfd.try_clone().map_err(|e| io_err(&n.rel, e))?;
            if let Some(fd) = self.write_node(m, n, pfd.as_fd(), &name)? {
                dirs.insert(n.rel.clone(), fd);
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<(), String> {
        for (fd, t) in self.dir_times.into_iter().rev() {
            let ts = TimeSpec::new(t.0, t.1);
            futimens(fd.as_fd(), &ts, &ts).map_err(|e| io_err("directory times", e))?;
        }
        Ok(())
    }
}

/// Whether the file is a tar archive (possibly gzip/zstd compressed).
fn is_tar(mut f: std::fs::File) -> bool {
    let Ok((_, mut plain)) = berth_image::compress::decompress(&mut f) else {
        return false;
    };
    let mut head = vec![0u8; 512];
    let mut got = 0;
    while got < head.len() {
        match plain.read(&mut head[got..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => got += k,
        }
    }
    got == 512 && &head[257..262] == b"ustar"
}

/// Write `matches` (and `inline` files) into the view rooted at `root`.
pub fn copy_into(
    root: BorrowedFd<'_>,
    matches: &[Match],
    inline: &[InlineFile],
    opts: &CopyOptions,
) -> Result<(), String> {
    let mut w = Writer {
        root,
        opts,
        dir_times: Vec::new(),
    };
    let dest = opts.dest.as_str();
    let many = matches.len() + inline.len() > 1;
    let existing_dir =
        fsops::open_in_root(root, dest, OFlag::O_RDONLY | OFlag::O_DIRECTORY).is_ok();
    let into_dir = dest.ends_with('/') || many || existing_dir;
    for m in matches {
        let top = &m.nodes[0];
        if m.is_dir() {
            let target = w.mkdir_p(dest)?;
            w.copy_tree(m, target)?;
            continue;
        }
        if opts.extract
            && top.kind == Kind::File
            && is_tar(m.open(top).map_err(|e| io_err(&m.path, e))?)
        {
            let target = w.mkdir_p(dest)?;
            let path = std::path::PathBuf::from(format!("/proc/self/fd/{}", target.as_raw_fd()));
            let f = m.open(top).map_err(|e| io_err(&m.path, e))?;
            berth_image::unpack::unpack_layer(
                f,
                &path,
                &m.path,
                &berth_image::unpack::UnpackOptions::default(),
            )
            .map_err(|e| e.to_string())?;
            continue;
        }
        let (dir, name) = if into_dir {
            (w.mkdir_p(dest)?, m.name.clone())
        } else {
            let (p, n) = split_dest(dest);
            (w.mkdir_p(&p)?, n)
        };
        w.write_node(m, top, dir.as_fd(), &name)?;
    }
    for f in inline {
        let (dir, name) = if into_dir {
            (w.mkdir_p(dest)?, f.name.clone())
        } else {
            let (p, n) = split_dest(dest);
            (w.mkdir_p(&p)?, n)
        };
        w.clear(dir.as_fd(), &name, false)?;
        let fd = openat(
            dir.as_fd(),
            name.as_str(),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| io_err(&name, e))?;
        let mut dst = std::fs::File::from(fd);
        std::io::Write::write_all(&mut dst, &f.content).map_err(|e| io_err(&name, e))?;
        let (uid, gid) = opts.chown.unwrap_or((0, 0));
        fchown(
            dst.as_fd(),
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
        )
        .map_err(|e| io_err(&name, e))?;
        fchmod(
            dst.as_fd(),
            Mode::from_bits_truncate(opts.chmod.unwrap_or(0o644)),
        )
        .map_err(|e| io_err(&name, e))?;
    }
    w.finish()
}
