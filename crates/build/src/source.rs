//! COPY/ADD sources: a path or glob resolved inside a source root (the build context, or
//! the root file system of a stage or image for `--from`), walked without following
//! symlinks, filtered by `.dockerignore`, and digested (names, modes, owners, content;
//! never mtimes) for the layer cache.

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::SFlag;
use sha2::{Digest as _, Sha256};

use crate::fsops;
use crate::ignore::{clean, docker_glob, IgnoreRules};

/// What kind of file a node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink(PathBuf),
    /// Fifos and devices: docker copies them; so do we (as themselves).
    Special {
        rdev: u64,
        fmt: u32,
    },
}

/// One file found under a match.
#[derive(Debug, Clone)]
pub struct Node {
    /// Relative to the match ("" is the match itself).
    pub rel: String,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: (i64, i64),
}

/// One path a source names, with everything below it.
#[derive(Debug)]
pub struct Match {
    /// Path from the source root (for messages; "" is the root).
    pub path: String,
    /// Its last component (the name a file gets in a destination directory).
    pub name: String,
    /// The directory holding the match (the match itself when `path` is the root).
    pub parent: OwnedFd,
    /// `nodes[0]` is the match; then, for a directory, everything below it, parents first.
    pub nodes: Vec<Node>,
}

impl Match {
    pub fn is_dir(&self) -> bool {
        self.nodes.first().is_some_and(|n| n.kind == Kind::Dir)
    }

    /// Open a regular file of this match for reading (nothing followed).
    pub fn open(&self, node: &Node) -> nix::Result<std::fs::File> {
        let rel = if self.path.is_empty() {
            node.rel.clone()
        } else if node.rel.is_empty() {
            self.name.clone()
        } else {
            format!("{}/{}", self.name, node.rel)
        };
        fsops::open_beneath(self.parent.as_fd(), &rel, OFlag::O_RDONLY).map(std::fs::File::from)
    }
}

/// Where sources are read from.
pub struct SourceRoot {
    pub fd: OwnedFd,
    /// For messages.
    pub what: String,
    pub ignore: Option<IgnoreRules>,
}

/// Why a source can't be used.
#[derive(Debug)]
pub enum SourceError {
    Outside(String),
    NotFound(String),
    BadPattern(String, String),
    Io(String, Errno),
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceError::Outside(p) => write!(f, "forbidden path outside the build context: {p}"),
            SourceError::NotFound(p) => write!(
                f,
                "{p}: not found (no such file in the source, or excluded by .dockerignore)"
            ),
            SourceError::BadPattern(p, e) => write!(f, "bad pattern {p:?}: {e}"),
            SourceError::Io(p, e) => write!(f, "{p}: {}", e.desc()),
        }
    }
}

fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn node_of(
    st: &nix::sys::stat::FileStat,
    rel: String,
    dir: BorrowedFd<'_>,
    name: &str,
) -> nix::Result<Node> {
    let fmt = st.st_mode & SFlag::S_IFMT.bits();
    let kind = if fmt == SFlag::S_IFDIR.bits() {
        Kind::Dir
    } else if fmt == SFlag::S_IFREG.bits() {
        Kind::File
    } else if fmt == SFlag::S_IFLNK.bits() {
        Kind::Symlink(PathBuf::from(nix::fcntl::readlinkat(dir, name)?))
    } else {
        Kind::Special {
            rdev: st.st_rdev,
            fmt,
        }
    };
    Ok(Node {
        rel,
        kind,
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
        size: st.st_size as u64,
        mtime: (st.st_mtime, st.st_mtime_nsec),
    })
}

impl SourceRoot {
    fn excluded(&self, full: &str) -> bool {
        self.ignore.as_ref().is_some_and(|i| i.excluded(full))
    }

    /// Walk the directory `dir` (at `full` from the root, `rel` from the match) into `out`.
    fn walk(
        &self,
        dir: BorrowedFd<'_>,
        full: &str,
        rel: &str,
        out: &mut Vec<Node>,
    ) -> Result<(), SourceError> {
        let io = |e| SourceError::Io(full.to_string(), e);
        let mut d = nix::dir::Dir::openat(
            dir,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(io)?;
        let mut names: Vec<String> = Vec::new();
        for e in d.iter() {
            let e = e.map_err(io)?;
            let n = e.file_name().to_string_lossy().into_owned();
            if n != "." && n != ".." {
                names.push(n);
            }
        }
        names.sort();
        for name in names {
            let f = join(full, &name);
            let r = join(rel, &name);
            let excluded = self.excluded(&f);
            let st = fsops::lstat_at(dir, &name).map_err(|e| SourceError::Io(f.clone(), e))?;
            let node =
                node_of(&st, r.clone(), dir, &name).map_err(|e| SourceError::Io(f.clone(), e))?;
            let is_dir = node.kind == Kind::Dir;
            if excluded && !(is_dir && self.ignore.as_ref().is_some_and(|i| i.has_exceptions())) {
                continue;
            }
            if !excluded || is_dir {
                out.push(node);
            }
            if is_dir {
                let child =
                    fsops::open_child_dir(dir, &name).map_err(|e| SourceError::Io(f.clone(), e))?;
                self.walk(child.as_fd(), &f, &r, out)?;
            }
        }
        Ok(())
    }

    fn match_at(
        &self,
        parent: OwnedFd,
        parent_path: &str,
        name: &str,
    ) -> Result<Match, SourceError> {
        let path = join(parent_path, name);
        let st = fsops::lstat_at(parent.as_fd(), name).map_err(|e| match e {
            Errno::ENOENT | Errno::ENOTDIR => SourceError::NotFound(path.clone()),
            e => SourceError::Io(path.clone(), e),
        })?;
        let top = node_of(&st, String::new(), parent.as_fd(), name)
            .map_err(|e| SourceError::Io(path.clone(), e))?;
        let mut nodes = vec![top];
        if nodes[0].kind == Kind::Dir {
            let d = fsops::open_child_dir(parent.as_fd(), name)
                .map_err(|e| SourceError::Io(path.clone(), e))?;
            self.walk(d.as_fd(), &path, "", &mut nodes)?;
        }
        Ok(Match {
            path,
            name: name.to_string(),
            parent,
            nodes,
        })
    }

    /// Every match of the source `src` (a path or glob; absolute paths and `..` are taken
    /// inside the root; leaving it is an error).
    pub fn resolve(&self, src: &str) -> Result<Vec<Match>, SourceError> {
        let cleaned = clean(src).ok_or_else(|| SourceError::Outside(src.to_string()))?;
        let comps: Vec<&str> = cleaned.split('/').filter(|c| !c.is_empty()).collect();
        if comps.is_empty() {
            // The root itself.
            let root =
                fsops::open_in_root(self.fd.as_fd(), "", OFlag::O_RDONLY | OFlag::O_DIRECTORY)
                    .map_err(|e| SourceError::Io(self.what.clone(), e))?;
            let st = nix::sys::stat::fstat(root.as_fd())
                .map_err(|e| SourceError::Io(self.what.clone(), e))?;
            let mut nodes = vec![Node {
                rel: String::new(),
                kind: Kind::Dir,
                mode: st.st_mode & 0o7777,
                uid: st.st_uid,
                gid: st.st_gid,
                size: 0,
                mtime: (st.st_mtime, st.st_mtime_nsec),
            }];
            self.walk(root.as_fd(), "", "", &mut nodes)?;
            return Ok(vec![Match {
                path: String::new(),
                name: String::new(),
                parent: root,
                nodes,
            }]);
        }
        let first_glob = comps.iter().position(|c| is_glob(c));
        let prefix_len = first_glob.unwrap_or(comps.len() - 1);
        let prefix = comps[..prefix_len].join("/");
        let open_prefix = |p: &str| {
            fsops::open_in_root(self.fd.as_fd(), p, OFlag::O_RDONLY | OFlag::O_DIRECTORY).map_err(
                |e| match e {
                    Errno::ENOENT | Errno::ENOTDIR => SourceError::NotFound(cleaned.clone()),
                    e => SourceError::Io(p.to_string(), e),
                },
            )
        };
        let dir = open_prefix(&prefix)?;
        let Some(_) = first_glob else {
            let name = comps[comps.len() - 1];
            if self.excluded(&cleaned) {
                return Err(SourceError::NotFound(cleaned));
            }
            return Ok(vec![self.match_at(dir, &prefix, name)?]);
        };
        // A glob: walk below the prefix and match whole paths.
        let matcher = docker_glob(&cleaned)
            .map_err(|e| SourceError::BadPattern(src.to_string(), e.to_string()))?;
        let mut all = Vec::new();
        self.walk(dir.as_fd(), &prefix, "", &mut all)?;
        let mut out: Vec<Match> = Vec::new();
        for n in all {
            let full = join(&prefix, &n.rel);
            if !matcher.is_match(&full)
                || out
                    .iter()
                    .any(|m| full.starts_with(&format!("{}/", m.path)))
            {
                continue;
            }
            let (parent_rel, name) = match n.rel.rsplit_once('/') {
                Some((p, n)) => (p.to_string(), n.to_string()),
                None => (String::new(), n.rel.clone()),
            };
            let parent = fsops::open_beneath(
                dir.as_fd(),
                &parent_rel,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY,
            )
            .map_err(|e| SourceError::Io(full.clone(), e))?;
            out.push(self.match_at(parent, &join(&prefix, &parent_rel), &name)?);
        }
        if out.is_empty() {
            return Err(SourceError::NotFound(cleaned));
        }
        Ok(out)
    }
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}/{b}"),
    }
}

/// The cache digest of a set of matches: names, kinds, modes, owners, sizes, symlink
/// targets and file content (sha256), in order. Modification times are left out, so a
/// touched but unchanged file still hits the cache.
pub fn digest(matches: &[Match]) -> Result<String, SourceError> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    for m in matches {
        h.update(format!("match {:?}\n", m.path));
        for n in &m.nodes {
            let kind = match &n.kind {
                Kind::File => "f".to_string(),
                Kind::Dir => "d".to_string(),
                Kind::Symlink(t) => format!("l {}", t.display()),
                Kind::Special { rdev, fmt } => format!("s {fmt:o} {rdev}"),
            };
            h.update(format!(
                "{:?} {kind} {:o} {}:{} {}\n",
                n.rel, n.mode, n.uid, n.gid, n.size
            ));
            if n.kind == Kind::File {
                let mut f = m
                    .open(n)
                    .map_err(|e| SourceError::Io(join(&m.path, &n.rel), e))?;
                let mut fh = Sha256::new();
                loop {
                    let k = f.read(&mut buf).map_err(|e| {
                        SourceError::Io(
                            join(&m.path, &n.rel),
                            Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
                        )
                    })?;
                    if k == 0 {
                        break;
                    }
                    fh.update(&buf[..k]);
                }
                h.update(fh.finalize());
            }
        }
    }
    Ok(hex::encode(h.finalize()))
}
