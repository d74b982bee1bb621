//! File operations confined to a root directory (the build context, another stage's or
//! image's root file system, the image view a COPY writes into).
//!
//! Paths are resolved by the kernel with `openat2(RESOLVE_IN_ROOT)` (symlinks inside the
//! root are followed *as if the root were `/`*, so `..` and absolute links can't leave it),
//! or with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` where nothing may be followed at all.
//! Everything below that is addressed by directory descriptor plus one single name, opened
//! with `O_NOFOLLOW`, so a symlink planted at the last component is never followed either.

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, readlinkat, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{fchown, Gid, Uid};

/// Open a directory to use as a root (`O_PATH`).
pub fn open_root(path: &Path) -> nix::Result<OwnedFd> {
    nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

fn rel_or_dot(rel: &str) -> &str {
    let r = rel.trim_start_matches('/');
    if r.is_empty() {
        "."
    } else {
        r
    }
}

/// Open `rel` inside `root`, symlinks followed but never out of `root`.
pub fn open_in_root(root: BorrowedFd<'_>, rel: &str, flags: OFlag) -> nix::Result<OwnedFd> {
    openat2(
        root,
        rel_or_dot(rel),
        OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS),
    )
}

/// Open `rel` below `dir` without following any symlink on the way.
pub fn open_beneath(dir: BorrowedFd<'_>, rel: &str, flags: OFlag) -> nix::Result<OwnedFd> {
    openat2(
        dir,
        rel_or_dot(rel),
        OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
            .resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_SYMLINKS
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS,
            ),
    )
}

/// `lstat` of one name in a directory.
pub fn lstat_at(dir: BorrowedFd<'_>, name: &str) -> nix::Result<FileStat> {
    fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
}

/// Open the child directory `name` of `dir` (not following a symlink).
pub fn open_child_dir(dir: BorrowedFd<'_>, name: &str) -> nix::Result<OwnedFd> {
    openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// `mkdir -p` of `rel` inside `root`, creating missing directories with `mode` and
/// `owner`. Symlinks on the way are followed as if `root` were `/` (as docker does for a
/// destination): the walk goes one name at a time from directory descriptors, an absolute
/// link restarts at `root`, `..` stops at `root`. Returns the directory opened for reading.
pub fn mkdir_p_in_root(
    root: BorrowedFd<'_>,
    rel: &str,
    mode: u32,
    owner: Option<(u32, u32)>,
) -> nix::Result<OwnedFd> {
    let dir_flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
    let top = || open_in_root(root, "", dir_flags);
    let mut pending: VecDeque<String> = rel
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(String::from)
        .collect();
    let mut path: Vec<String> = Vec::new();
    let mut cur = top()?;
    let mut links = 0;
    while let Some(comp) = pending.pop_front() {
        if comp == ".." {
            path.pop();
            cur = open_in_root(root, &path.join("/"), dir_flags)?;
            continue;
        }
        match lstat_at(cur.as_fd(), &comp) {
            Err(Errno::ENOENT) => {
                match mkdirat(cur.as_fd(), comp.as_str(), Mode::from_bits_truncate(mode)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e),
                }
                let fd = open_child_dir(cur.as_fd(), &comp)?;
                nix::sys::stat::fchmod(fd.as_fd(), Mode::from_bits_truncate(mode))?;
                if let Some((u, g)) = owner {
                    fchown(fd.as_fd(), Some(Uid::from_raw(u)), Some(Gid::from_raw(g)))?;
                }
                cur = fd;
                path.push(comp);
            }
            Err(e) => return Err(e),
            Ok(st) if st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFLNK.bits() => {
                links += 1;
                if links > 40 {
                    return Err(Errno::ELOOP);
                }
                let target = readlinkat(cur.as_fd(), comp.as_str())?;
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    path.clear();
                    cur = top()?;
                }
                for c in target
                    .split('/')
                    .rev()
                    .filter(|c| !c.is_empty() && *c != ".")
                {
                    pending.push_front(c.to_string());
                }
            }
            Ok(st) if st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFDIR.bits() => {
                cur = open_child_dir(cur.as_fd(), &comp)?;
                path.push(comp);
            }
            Ok(_) => return Err(Errno::ENOTDIR),
        }
    }
    Ok(cur)
}
