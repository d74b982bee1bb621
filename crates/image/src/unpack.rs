//! Safe layer extraction.
//!
//! Every entry is written relative to a directory descriptor reached from the layer root
//! one component at a time with `O_NOFOLLOW | O_DIRECTORY`: a symlink (from an earlier
//! entry) is never followed, `..` is refused, absolute paths are taken as relative to the
//! root, hard links must point at something already inside the root, and the final name is
//! created with `O_EXCL`/`mknodat`/`symlinkat` after removing whatever was there, so no
//! write can land outside the root. Whiteouts become overlayfs whiteouts (a 0/0 character
//! device; `trusted.overlay.opaque=y` for `.wh..wh..opq`), so the unpacked directory can be
//! used as an overlay lower layer as it is.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmodat, fstatat, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

use crate::compress::{decompress, Compression};
use crate::digest::{Digest, HashingReader};
use crate::error::{Error, Result};
use crate::sys;

pub const WHITEOUT_PREFIX: &str = ".wh.";
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
pub const OPAQUE_XATTR: &[u8] = b"trusted.overlay.opaque";

/// What an unpack may do.
#[derive(Debug, Clone)]
pub struct UnpackOptions {
    /// Create character and block device nodes (inside the root only). On by default: the
    /// engine runs as root.
    pub allow_devices: bool,
}

impl Default for UnpackOptions {
    fn default() -> Self {
        UnpackOptions {
            allow_devices: true,
        }
    }
}

/// The result of unpacking a layer.
#[derive(Debug, Clone)]
pub struct Unpacked {
    /// sha256 of the uncompressed tar stream.
    pub diff_id: Digest,
    pub compression: Compression,
    pub entries: u64,
}

/// Unpack the (possibly compressed) layer tar `reader` into the existing directory `root`.
/// `layer` names the layer in errors.
///
/// Decompression and the diff id's sha256 run on a second thread, a few chunks ahead of
/// the thread that parses the tar and makes the files (as `tar -z` runs gzip beside tar):
/// on a ~120 MB Debian layer that overlap is most of the difference to `tar -xzf`.
pub fn unpack_layer<R: Read + Send>(
    reader: R,
    root: &Path,
    layer: &str,
    opts: &UnpackOptions,
) -> Result<Unpacked> {
    let io_err = |source: io::Error| Error::Layer {
        layer: layer.to_string(),
        reason: source.to_string(),
    };
    std::thread::scope(|s| {
        let (start_tx, start_rx) = mpsc::sync_channel(1);
        let (chunk_tx, chunk_rx) = mpsc::sync_channel(PIPE_CHUNKS);
        let (spare_tx, spare_rx) = mpsc::sync_channel(PIPE_CHUNKS + 2);
        let producer = s.spawn(move || inflate_and_hash(reader, start_tx, chunk_tx, spare_rx));
        let compression = match start_rx.recv() {
            Ok(r) => r.map_err(io_err)?,
            Err(_) => return Err(io_err(io::Error::other("decompression thread ended"))),
        };
        let root_fd = openat(
            nix::fcntl::AT_FDCWD,
            root,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::Io {
            path: root.to_path_buf(),
            source: e.into(),
        })?;
        let mut u = Unpacker {
            root: root_fd,
            layer,
            opts,
            dir_times: Vec::new(),
        };
        let mut archive = tar::Archive::new(PipeReader {
            chunks: chunk_rx,
            spare: spare_tx,
            cur: Vec::new(),
            pos: 0,
            done: false,
        });
        let mut entries = 0u64;
        for entry in archive.entries().map_err(io_err)? {
            let mut entry = entry.map_err(|e| Error::Layer {
                layer: layer.to_string(),
                reason: format!("corrupt tar after {entries} entries: {e}"),
            })?;
            u.entry(&mut entry)?;
            entries += 1;
        }
        u.finish_dir_times()?;
        // The rest of the stream (end-of-archive blocks) belongs to the diff id too.
        let mut pipe = archive.into_inner();
        io::copy(&mut pipe, &mut io::sink()).map_err(io_err)?;
        drop(pipe);
        let diff_id = match producer.join() {
            Ok(Some(d)) => d,
            _ => return Err(io_err(io::Error::other("decompression thread failed"))),
        };
        Ok(Unpacked {
            diff_id,
            compression,
            entries,
        })
    })
}

/// Uncompressed bytes in flight between the two threads: PIPE_CHUNKS of PIPE_CHUNK.
const PIPE_CHUNKS: usize = 8;
const PIPE_CHUNK: usize = 256 * 1024;

/// The decompressing thread: sends the compression, then the uncompressed stream in chunks
/// (or the error that ended it), and returns its sha256 when all of it was taken. Returns
/// early (None) when the reader hangs up.
fn inflate_and_hash<R: Read>(
    reader: R,
    start: mpsc::SyncSender<io::Result<Compression>>,
    chunks: mpsc::SyncSender<io::Result<Vec<u8>>>,
    spare: mpsc::Receiver<Vec<u8>>,
) -> Option<Digest> {
    let mut plain = match decompress(reader) {
        Ok((c, plain)) => {
            start.send(Ok(c)).ok()?;
            HashingReader::new(plain)
        }
        Err(e) => {
            let _ = start.send(Err(e));
            return None;
        }
    };
    loop {
        let mut buf = spare.try_recv().unwrap_or_default();
        buf.resize(PIPE_CHUNK, 0);
        let mut n = 0;
        while n < buf.len() {
            match plain.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = chunks.send(Err(e));
                    return None;
                }
            }
        }
        if n == 0 {
            break;
        }
        buf.truncate(n);
        chunks.send(Ok(buf)).ok()?;
    }
    drop(chunks);
    plain.finish().ok().map(|(d, _)| d)
}

/// The parsing thread's end of the pipe.
struct PipeReader {
    chunks: mpsc::Receiver<io::Result<Vec<u8>>>,
    spare: mpsc::SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Read for PipeReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            if self.done {
                return Ok(0);
            }
            match self.chunks.recv() {
                Ok(Ok(buf)) => {
                    let used = std::mem::replace(&mut self.cur, buf);
                    self.pos = 0;
                    if used.capacity() > 0 {
                        let _ = self.spare.try_send(used);
                    }
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                // The producer is done: the stream ended.
                Err(_) => self.done = true,
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Split a tar path into clean components: empty and `.` components dropped (so absolute
/// paths become relative), `..` refused.
pub fn clean_path(p: &[u8]) -> std::result::Result<Vec<OsString>, &'static str> {
    let mut out = Vec::new();
    for c in p.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("`..` in path"),
            c if c.contains(&0) => return Err("NUL in path"),
            c => out.push(OsString::from_vec(c.to_vec())),
        }
    }
    Ok(out)
}

fn display(comps: &[OsString]) -> String {
    let v: Vec<_> = comps.iter().map(|c| c.to_string_lossy()).collect();
    v.join("/")
}

struct Meta {
    uid: u64,
    gid: u64,
    mode: u32,
    mtime: i64,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

struct Unpacker<'a> {
    root: OwnedFd,
    layer: &'a str,
    opts: &'a UnpackOptions,
    dir_times: Vec<(Vec<OsString>, i64)>,
}

impl Unpacker<'_> {
    fn unsafe_entry(&self, entry: &str, reason: impl Into<String>) -> Error {
        Error::UnsafeEntry {
            layer: self.layer.to_string(),
            entry: entry.to_string(),
            reason: reason.into(),
        }
    }

    fn io(&self, entry: &str, source: impl Into<io::Error>) -> Error {
        Error::Unpack {
            layer: self.layer.to_string(),
            entry: entry.to_string(),
            source: source.into(),
        }
    }

    /// Open the directory `comps` below the root, component by component, never following
    /// a symlink; missing directories are made (0755) when `create`.
    fn open_dir(&self, comps: &[OsString], create: bool, entry: &str) -> Result<OwnedFd> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mut cur =
            openat(&self.root, ".", flags, Mode::empty()).map_err(|e| self.io(entry, e))?;
        for (i, c) in comps.iter().enumerate() {
            let next = match openat(&cur, c.as_os_str(), flags, Mode::empty()) {
                Err(Errno::ENOENT) if create => {
                    match mkdirat(&cur, c.as_os_str(), Mode::from_bits_truncate(0o755)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(self.io(entry, e)),
                    }
                    openat(&cur, c.as_os_str(), flags, Mode::empty())
                }
                r => r,
            };
            cur = match next {
                Ok(fd) => fd,
                Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => {
                    return Err(self.unsafe_entry(
                        entry,
                        format!(
                            "{:?} is a symlink or not a directory; refusing to write through it",
                            display(&comps[..=i])
                        ),
                    ))
                }
                Err(e) => return Err(self.io(entry, e)),
            };
        }
        Ok(cur)
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let raw_path = entry.path_bytes().into_owned();
        let name_str = String::from_utf8_lossy(&raw_path).into_owned();
        let kind = entry.header().entry_type();
        use tar::EntryType as T;
        if matches!(
            kind,
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink
        ) {
            return Ok(());
        }
        let comps = clean_path(&raw_path).map_err(|r| self.unsafe_entry(&name_str, r))?;
        let meta = self.meta(entry, &name_str)?;

        let Some((name, parent_comps)) = comps.split_last() else {
            // The root itself ("./"): only a directory may describe it.
            if kind != T::Directory {
                return Err(self.unsafe_entry(&name_str, "non-directory entry for the layer root"));
            }
            let root = openat(
                &self.root,
                ".",
                OFlag::O_RDONLY | OFlag::O_DIRECTORY,
                Mode::empty(),
            )
            .map_err(|e| self.io(&name_str, e))?;
            nix::unistd::fchown(
                &root,
                Some(Uid::from_raw(meta.uid as u32)),
                Some(Gid::from_raw(meta.gid as u32)),
            )
            .map_err(|e| self.io(&name_str, e))?;
            nix::sys::stat::fchmod(&root, Mode::from_bits_truncate(meta.mode & 0o7777))
                .map_err(|e| self.io(&name_str, e))?;
            self.dir_times.push((Vec::new(), meta.mtime));
            return Ok(());
        };
        let name_bytes = name.as_bytes();

        // Whiteouts.
        if name_bytes == OPAQUE_MARKER.as_bytes() {
            let dir = self.open_dir(parent_comps, true, &name_str)?;
            sys::fsetxattr(dir.as_fd(), OPAQUE_XATTR, b"y").map_err(|e| self.io(&name_str, e))?;
            return Ok(());
        }
        if let Some(target) = name_bytes.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            if target.starts_with(WHITEOUT_PREFIX.as_bytes()) {
                // Other aufs metadata (.wh..wh.plnk, ...): nothing to do.
                return Ok(());
            }
            if matches!(target, b"" | b"." | b"..") {
                return Err(self.unsafe_entry(&name_str, "whiteout of `.` or `..`"));
            }
            let dir = self.open_dir(parent_comps, true, &name_str)?;
            let target = OsStr::from_bytes(target);
            // A whiteout hides lower layers only: what this layer already put at the name
            // stays (a directory of this layer just stops showing lower contents).
            match fstatat(&dir, target, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Err(Errno::ENOENT) => mknodat(&dir, target, SFlag::S_IFCHR, Mode::empty(), 0)
                    .map_err(|e| self.io(&name_str, e))?,
                Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
                    let d = openat(
                        &dir,
                        target,
                        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| self.io(&name_str, e))?;
                    sys::fsetxattr(d.as_fd(), OPAQUE_XATTR, b"y")
                        .map_err(|e| self.io(&name_str, e))?;
                }
                Ok(_) => {}
                Err(e) => return Err(self.io(&name_str, e)),
            }
            return Ok(());
        }

        let dir = self.open_dir(parent_comps, true, &name_str)?;
        match kind {
            T::Directory => {
                let was_whiteout = is_whiteout_at(&dir, name);
                if !self.clear(&dir, name, true, &name_str)? {
                    mkdirat(&dir, name.as_os_str(), Mode::from_bits_truncate(0o700))
                        .map_err(|e| self.io(&name_str, e))?;
                    if was_whiteout {
                        // Deleted and re-made in this layer: nothing of the lower
                        // directory may show through.
                        let d = openat(
                            &dir,
                            name.as_os_str(),
                            OFlag::O_RDONLY
                                | OFlag::O_DIRECTORY
                                | OFlag::O_NOFOLLOW
                                | OFlag::O_CLOEXEC,
                            Mode::empty(),
                        )
                        .map_err(|e| self.io(&name_str, e))?;
                        sys::fsetxattr(d.as_fd(), OPAQUE_XATTR, b"y")
                            .map_err(|e| self.io(&name_str, e))?;
                    }
                }
            }
            T::Regular | T::Continuous | T::GNUSparse => {
                self.clear(&dir, name, false, &name_str)?;
                let fd = openat(
                    &dir,
                    name.as_os_str(),
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(|e| self.io(&name_str, e))?;
                let mut f = File::from(fd);
                io::copy(entry, &mut f).map_err(|e| self.io(&name_str, e))?;
            }
            T::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.unsafe_entry(&name_str, "symlink without a target"))?
                    .into_owned();
                self.clear(&dir, name, false, &name_str)?;
                symlinkat(OsStr::from_bytes(&target), &dir, name.as_os_str())
                    .map_err(|e| self.io(&name_str, e))?;
            }
            T::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.unsafe_entry(&name_str, "hard link without a target"))?
                    .into_owned();
                let tcomps = clean_path(&target)
                    .map_err(|r| self.unsafe_entry(&name_str, format!("hard link target: {r}")))?;
                let Some((tname, tparent)) = tcomps.split_last() else {
                    return Err(self.unsafe_entry(&name_str, "hard link to the layer root"));
                };
                if tcomps == comps {
                    return Err(self.unsafe_entry(&name_str, "hard link to itself"));
                }
                let tdir = self
                    .open_dir(tparent, false, &name_str)
                    .map_err(|e| match e {
                        Error::Unpack { source, .. }
                            if source.kind() == io::ErrorKind::NotFound =>
                        {
                            self.unsafe_entry(
                                &name_str,
                                format!(
                                    "hard link target {:?} is not in the layer",
                                    display(&tcomps)
                                ),
                            )
                        }
                        e => e,
                    })?;
                match fstatat(&tdir, tname.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                    Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
                        return Err(self.unsafe_entry(&name_str, "hard link to a directory"))
                    }
                    Ok(_) => {}
                    Err(Errno::ENOENT) => {
                        return Err(self.unsafe_entry(
                            &name_str,
                            format!(
                                "hard link target {:?} is not in the layer",
                                display(&tcomps)
                            ),
                        ))
                    }
                    Err(e) => return Err(self.io(&name_str, e)),
                }
                self.clear(&dir, name, false, &name_str)?;
                // flags 0: never follows a symlink target; links the entry itself.
                linkat(
                    &tdir,
                    tname.as_os_str(),
                    &dir,
                    name.as_os_str(),
                    AtFlags::empty(),
                )
                .map_err(|e| self.io(&name_str, e))?;
                // A hard link shares the target's metadata: nothing more to set.
                return Ok(());
            }
            T::Char | T::Block | T::Fifo => {
                let sflag = match kind {
                    T::Char => SFlag::S_IFCHR,
                    T::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                if sflag != SFlag::S_IFIFO && !self.opts.allow_devices {
                    return Err(self.unsafe_entry(&name_str, "device nodes are not allowed"));
                }
                let h = entry.header();
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                self.clear(&dir, name, false, &name_str)?;
                mknodat(
                    &dir,
                    name.as_os_str(),
                    sflag,
                    Mode::from_bits_truncate(0o600),
                    nix::sys::stat::makedev(u64::from(major), u64::from(minor)),
                )
                .map_err(|e| self.io(&name_str, e))?;
            }
            other => {
                return Err(
                    self.unsafe_entry(&name_str, format!("unsupported entry type {other:?}"))
                )
            }
        }
        self.apply_meta(
            &dir,
            name,
            kind == T::Symlink,
            kind == T::Directory,
            &comps,
            &meta,
            &name_str,
        )
    }

    fn meta<R: Read>(&self, entry: &mut tar::Entry<'_, R>, name: &str) -> Result<Meta> {
        let h = entry.header();
        let bad = |what: &str, e: io::Error| {
            self.unsafe_entry(name, format!("bad {what} in header: {e}"))
        };
        let mut m = Meta {
            uid: h.uid().map_err(|e| bad("uid", e))?,
            gid: h.gid().map_err(|e| bad("gid", e))?,
            mode: h.mode().map_err(|e| bad("mode", e))?,
            mtime: h.mtime().map_err(|e| bad("mtime", e))? as i64,
            xattrs: Vec::new(),
        };
        if let Some(pax) = entry.pax_extensions().map_err(|e| bad("pax header", e))? {
            for ext in pax {
                let ext = ext.map_err(|e| bad("pax header", e))?;
                let Ok(key) = ext.key() else { continue };
                let value = ext.value_bytes();
                let num = || -> Option<i64> {
                    let s = std::str::from_utf8(value).ok()?;
                    s.split('.').next()?.parse().ok()
                };
                match key {
                    "uid" => m.uid = num().map_or(m.uid, |v| v as u64),
                    "gid" => m.gid = num().map_or(m.gid, |v| v as u64),
                    "mtime" => m.mtime = num().unwrap_or(m.mtime),
                    k => {
                        if let Some(x) = k.strip_prefix("SCHILY.xattr.") {
                            m.xattrs.push((x.as_bytes().to_vec(), value.to_vec()));
                        }
                    }
                }
            }
        }
        if m.uid > u64::from(u32::MAX - 1) || m.gid > u64::from(u32::MAX - 1) {
            return Err(self.unsafe_entry(name, "uid/gid out of range"));
        }
        Ok(m)
    }

    /// Make room for `name` in `dir`: remove what is there, unless both it and the new
    /// entry are directories (then it stays and `true` is returned).
    fn clear(&self, dir: &OwnedFd, name: &OsStr, new_is_dir: bool, entry: &str) -> Result<bool> {
        match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(self.io(entry, e)),
            Ok(st) => {
                let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
                if is_dir && new_is_dir {
                    return Ok(true);
                }
                remove_all_at(dir.as_fd(), name).map_err(|e| self.io(entry, e))?;
                Ok(false)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_meta(
        &mut self,
        dir: &OwnedFd,
        name: &OsStr,
        is_symlink: bool,
        is_dir: bool,
        comps: &[OsString],
        m: &Meta,
        entry: &str,
    ) -> Result<()> {
        fchownat(
            dir,
            name,
            Some(Uid::from_raw(m.uid as u32)),
            Some(Gid::from_raw(m.gid as u32)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| self.io(entry, e))?;
        if !is_symlink {
            // The name was just created by us in a directory reached without following any
            // symlink, and is not a symlink: following is safe here (and fchmodat can't
            // not follow on every kernel).
            fchmodat(
                dir,
                name,
                Mode::from_bits_truncate(m.mode & 0o7777),
                FchmodatFlags::FollowSymlink,
            )
            .map_err(|e| self.io(entry, e))?;
        }
        if !m.xattrs.is_empty() {
            // The directory descriptor's /proc link pins the real directory; lsetxattr
            // doesn't follow the last component.
            let mut p = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
            p.push(name);
            for (k, v) in &m.xattrs {
                if k.starts_with(b"trusted.overlay.") {
                    // Would steer overlayfs (redirects, opaque dirs): never from a tar.
                    continue;
                }
                if let Err(e) = sys::lsetxattr(&p, k, v) {
                    let ignorable = is_symlink
                        && matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::ENOTSUP));
                    if !ignorable {
                        return Err(self.io(
                            entry,
                            io::Error::new(
                                e.kind(),
                                format!("xattr {}: {e}", String::from_utf8_lossy(k)),
                            ),
                        ));
                    }
                }
            }
        }
        if is_dir {
            self.dir_times.push((comps.to_vec(), m.mtime));
        } else {
            let t = TimeSpec::new(m.mtime, 0);
            utimensat(dir, name, &t, &t, UtimensatFlags::NoFollowSymlink)
                .map_err(|e| self.io(entry, e))?;
        }
        Ok(())
    }

    /// Directory mtimes last: writing into a directory changes its mtime.
    fn finish_dir_times(&mut self) -> Result<()> {
        let times = std::mem::take(&mut self.dir_times);
        for (comps, mtime) in times.iter().rev() {
            let t = TimeSpec::new(*mtime, 0);
            let entry = display(comps);
            let res = match comps.split_last() {
                None => utimensat(&self.root, ".", &t, &t, UtimensatFlags::NoFollowSymlink),
                Some((name, parent)) => match self.open_dir(parent, false, &entry) {
                    Ok(d) => utimensat(
                        &d,
                        name.as_os_str(),
                        &t,
                        &t,
                        UtimensatFlags::NoFollowSymlink,
                    ),
                    // Removed or replaced later in the layer.
                    Err(_) => continue,
                },
            };
            match res {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(self.io(&entry, e)),
            }
        }
        Ok(())
    }
}

/// Is `name` in `dir` an overlay whiteout (a 0/0 character device)?
fn is_whiteout_at(dir: &OwnedFd, name: &OsStr) -> bool {
    matches!(fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW),
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == 0)
}

/// Remove `name` in `dir` and everything below it, never following a symlink.
pub(crate) fn remove_all_at(dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<()> {
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => return Ok(()),
        Err(Errno::EISDIR) | Err(Errno::EPERM) => {}
        Err(e) => return Err(e),
    }
    let sub = openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut names = Vec::new();
    {
        let mut d = nix::dir::Dir::from_fd(sub.try_clone().map_err(|_| Errno::EMFILE)?)?;
        for e in d.iter() {
            let e = e?;
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(OsString::from_vec(n.to_vec()));
            }
        }
    }
    for n in &names {
        remove_all_at(sub.as_fd(), n)?;
    }
    unlinkat(dir, name, UnlinkatFlags::RemoveDir)
}

/// Remove a directory tree by path (the top given by the caller; nothing below is followed).
pub(crate) fn remove_tree(path: &Path) -> Result<()> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(());
    };
    let dir = match openat(
        nix::fcntl::AT_FDCWD,
        parent,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(d) => d,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source: e.into(),
            })
        }
    };
    remove_all_at(dir.as_fd(), name).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths() {
        assert_eq!(
            clean_path(b"/a//b/./c/").ok(),
            Some(vec!["a".into(), "b".into(), "c".into()])
        );
        assert!(clean_path(b"a/../b").is_err());
        assert!(clean_path(b"../x").is_err());
        assert_eq!(clean_path(b"./").ok(), Some(vec![]));
    }
}
