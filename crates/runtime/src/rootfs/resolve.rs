//! Paths inside the container's root, resolved by the kernel with RESOLVE_IN_ROOT so that
//! no symlink (planted in the image or swapped in while we work) can lead outside it
//! (CVE-2021-30465). Everything we mount onto, create or write under the root goes through
//! here and is then addressed by descriptor, never by re-walking a path string.

use crate::error::{Result, RuntimeError};
use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

fn how(flags: OFlag, mode: Mode) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .mode(mode)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

/// "/proc/self/fd/N": how mount(2) is pointed at the object we resolved.
pub fn fd_path(fd: &impl AsRawFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

impl Root {
    pub fn open(path: &Path) -> Result<Root> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| err(path, e))?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The container path as the host sees it, for messages only.
    pub fn display(&self, rel: &Path) -> PathBuf {
        self.path.join(relative(rel))
    }

    pub fn open_at(&self, rel: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
        openat2(
            self.fd.as_fd(),
            &relative_or_dot(rel),
            how(flags, Mode::empty()),
        )
    }

    /// O_PATH descriptor of an existing object, `None` when it doesn't exist.
    pub fn lookup(&self, rel: &Path) -> Result<Option<OwnedFd>> {
        match self.open_at(rel, OFlag::O_PATH) {
            Ok(fd) => Ok(Some(fd)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(err(&self.display(rel), e)),
        }
    }

    /// Creates every missing directory of `rel` and returns an O_PATH descriptor of the last.
    /// Each directory we create is made with mkdirat in its parent's descriptor and then
    /// reopened from the root, so a symlink raced into its place still resolves inside.
    pub fn mkdir_all(&self, rel: &Path, mode: u32) -> Result<OwnedFd> {
        self.mkdir_all_depth(rel, mode, 0)
    }

    fn mkdir_all_depth(&self, rel: &Path, mode: u32, links: u32) -> Result<OwnedFd> {
        let rel = relative(rel);
        match self.open_at(&rel, OFlag::O_PATH | OFlag::O_DIRECTORY) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOENT) if !rel.as_os_str().is_empty() => {}
            Err(e) => return Err(err(&self.display(&rel), e)),
        }
        let (parent, name) = split(&rel);
        let dir = self.mkdir_all_depth(&parent, mode, links)?;
        match nix::sys::stat::mkdirat(dir.as_fd(), &name, Mode::from_bits_retain(mode)) {
            Ok(()) => {}
            Err(Errno::EEXIST) => {
                // A dangling symlink (an image's /mnt/data -> /srv/data, say): create its
                // target, which resolving inside the root keeps inside the root.
                if let Ok(target) = nix::fcntl::readlinkat(&dir, &name) {
                    if links >= 40 {
                        return Err(err(&self.display(&rel), Errno::ELOOP));
                    }
                    let target = Path::new(&target);
                    let within = if target.is_absolute() {
                        target.to_path_buf()
                    } else {
                        parent.join(target)
                    };
                    self.mkdir_all_depth(&within, mode, links + 1)?;
                }
            }
            Err(e) => return Err(err(&self.display(&rel), e)),
        }
        self.open_at(&rel, OFlag::O_PATH | OFlag::O_DIRECTORY)
            .map_err(|e| err(&self.display(&rel), e))
    }

    /// Ensures a regular file (or whatever already exists) at `rel`, creating its parents;
    /// returns an O_PATH descriptor of it. Used as a bind-mount target for files.
    pub fn ensure_file(&self, rel: &Path) -> Result<OwnedFd> {
        if let Some(fd) = self.lookup(rel)? {
            return Ok(fd);
        }
        let (parent, _) = split(rel);
        self.mkdir_all(&parent, 0o755)?;
        openat2(
            self.fd.as_fd(),
            &relative_or_dot(rel),
            how(
                OFlag::O_CREAT | OFlag::O_WRONLY,
                Mode::from_bits_retain(0o644),
            ),
        )
        .map_err(|e| err(&self.display(rel), e))?;
        self.lookup(rel)?
            .ok_or_else(|| err(&self.display(rel), Errno::ENOENT))
    }

    /// Replaces whatever is at `rel` (a symlink planted by the image, say) with a new empty
    /// regular file, created without following links; returns its O_PATH descriptor. For
    /// mount targets that must not be redirected (/dev/console: CVE-2025-52565).
    pub fn fresh_file(&self, rel: &Path) -> Result<OwnedFd> {
        let (dir, name) = self.parent_of(rel)?;
        match nix::unistd::unlinkat(&dir, &name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(err(&self.display(rel), e)),
        }
        let fd = nix::fcntl::openat(
            &dir,
            &name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::from_bits_retain(0o600),
        )
        .map_err(|e| err(&self.display(rel), e))?;
        drop(fd);
        openat2(
            dir.as_fd(),
            &name,
            OpenHow::new()
                .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
                .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_BENEATH),
        )
        .map_err(|e| err(&self.display(rel), e))
    }

    /// The parent directory's descriptor (created if missing) and the final name, for the
    /// *at() calls that create one entry (mknodat, symlinkat).
    pub fn parent_of(&self, rel: &Path) -> Result<(OwnedFd, PathBuf)> {
        let (parent, name) = split(rel);
        let dir = self.mkdir_all(&parent, 0o755)?;
        Ok((dir, name))
    }
}

fn split(rel: &Path) -> (PathBuf, PathBuf) {
    let rel = relative(rel);
    let parent = rel.parent().map(Path::to_path_buf).unwrap_or_default();
    let name = rel
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    (parent, name)
}

/// Container paths are absolute; under the root they are taken relative to it, cleaned
/// lexically like Go's filepath.Clean ("/a/../b" is "b"; ".." never climbs above the root).
pub fn relative(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

fn relative_or_dot(p: &Path) -> PathBuf {
    let r = relative(p);
    if r.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        r
    }
}

fn err(path: &Path, e: Errno) -> RuntimeError {
    RuntimeError::Io {
        path: path.to_path_buf(),
        source: e.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_strips_root() {
        assert_eq!(relative(Path::new("/a/b")), PathBuf::from("a/b"));
        assert_eq!(relative(Path::new("/")), PathBuf::new());
        assert_eq!(relative(Path::new("/a/../b")), PathBuf::from("b"));
        assert_eq!(relative(Path::new("/../../etc")), PathBuf::from("etc"));
    }

    #[test]
    fn symlink_cannot_escape() {
        let base = std::env::temp_dir().join(format!("berth-resolve-{}", std::process::id()));
        let root = base.join("root");
        std::fs::create_dir_all(&root).expect("mkdir");
        std::os::unix::fs::symlink("/../../..", root.join("up")).expect("symlink");
        let r = Root::open(&root).expect("open root");
        let fd = r
            .mkdir_all(Path::new("/up/escaped"), 0o755)
            .expect("mkdir through link");
        drop(fd);
        assert!(root.join("escaped").is_dir(), "created inside the root");
        assert!(!Path::new("/escaped").exists());
        std::fs::remove_dir_all(&base).expect("cleanup");
    }
}
