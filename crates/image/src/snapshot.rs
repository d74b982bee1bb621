//! Overlay snapshots of a layer stack, and the reverse: an upper directory back into a layer.
//!
//! Mounting uses the new mount API: `fsopen("overlay")`, one `fsconfig("lowerdir+")` per
//! layer (kernel 6.8+), so the page-sized limit of the legacy option string never applies
//! and a long stack can't be cut off silently; overlayfs itself stacks at most 500 lower
//! layers, and more is refused up front with [`Error::TooManyLayers`].

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, IoContext, Result};
use crate::sys;
use crate::unpack::{OPAQUE_MARKER, OPAQUE_XATTR, WHITEOUT_PREFIX};

/// Overlayfs' limit on lower layers (OVL_MAX_STACK).
pub const MAX_LAYERS: usize = 500;

/// A writable overlay: `lowers` bottom first, `upper` and `work` on the same file system.
#[derive(Debug, Clone)]
pub struct OverlaySpec {
    pub lowers: Vec<PathBuf>,
    pub upper: Option<(PathBuf, PathBuf)>,
}

fn cstring(target: &Path, s: &[u8]) -> Result<CString> {
    CString::new(s).map_err(|_| Error::Mount {
        target: target.to_path_buf(),
        step: "path contains NUL".into(),
        source: io::Error::from_raw_os_error(libc::EINVAL),
    })
}

/// Read the messages the kernel left on a file system context (best effort).
fn fs_context_log(fs: &std::os::fd::OwnedFd) -> String {
    let mut msgs = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(n) = nix::unistd::read(fs.as_fd(), &mut buf) {
        if n == 0 {
            break;
        }
        msgs.push(String::from_utf8_lossy(&buf[..n]).trim().to_string());
    }
    msgs.join("; ")
}

/// Mount `spec` on `target`. Without an upper dir the mount is read-only (overlayfs then
/// needs at least two lower layers; a single layer is bind-mounted read-only instead).
pub fn mount_overlay(spec: &OverlaySpec, target: &Path) -> Result<()> {
    let n = spec.lowers.len();
    if n > MAX_LAYERS {
        return Err(Error::TooManyLayers {
            count: n,
            max: MAX_LAYERS,
        });
    }
    if n == 0 {
        return Err(Error::Mount {
            target: target.to_path_buf(),
            step: "no layers".into(),
            source: io::Error::from_raw_os_error(libc::EINVAL),
        });
    }
    let err = |step: String, source: io::Error| Error::Mount {
        target: target.to_path_buf(),
        step,
        source,
    };
    if n == 1 && spec.upper.is_none() {
        use nix::mount::{mount, MsFlags};
        mount(
            Some(&spec.lowers[0]),
            target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| err("bind the only layer".into(), e.into()))?;
        return mount(
            None::<&str>,
            target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(|e| err("remount read-only".into(), e.into()));
    }
    let fs = sys::fsopen(c"overlay").map_err(|e| err("fsopen(overlay)".into(), e))?;
    let set = |k: &std::ffi::CStr, v: &[u8], what: String| -> Result<()> {
        let v = cstring(target, v)?;
        sys::fsconfig_set_string(fs.as_fd(), k, &v).map_err(|e| {
            let log = fs_context_log(&fs);
            err(
                if log.is_empty() {
                    what
                } else {
                    format!("{what}: {log}")
                },
                e,
            )
        })
    };
    // Topmost first: the kernel appends each lowerdir+ below the previous ones.
    for (i, l) in spec.lowers.iter().enumerate().rev() {
        set(
            c"lowerdir+",
            l.as_os_str().as_bytes(),
            format!("lowerdir+ {} (layer {} of {n})", l.display(), i + 1),
        )?;
    }
    if let Some((upper, work)) = &spec.upper {
        set(
            c"upperdir",
            upper.as_os_str().as_bytes(),
            format!("upperdir {}", upper.display()),
        )?;
        set(
            c"workdir",
            work.as_os_str().as_bytes(),
            format!("workdir {}", work.display()),
        )?;
        // Plain copy-up semantics, so an upper dir converts back into a layer exactly.
        set(c"redirect_dir", b"off", "redirect_dir=off".into())?;
        set(c"metacopy", b"off", "metacopy=off".into())?;
        set(c"index", b"off", "index=off".into())?;
    } else {
        sys::fsconfig_set_flag(fs.as_fd(), c"ro").map_err(|e| err("ro".into(), e))?;
    }
    sys::fsconfig_create(fs.as_fd()).map_err(|e| {
        let log = fs_context_log(&fs);
        err(
            format!(
                "create overlay superblock ({n} layers){}",
                if log.is_empty() {
                    String::new()
                } else {
                    format!(": {log}")
                }
            ),
            e,
        )
    })?;
    let attrs = if spec.upper.is_none() {
        libc::MOUNT_ATTR_RDONLY as libc::c_uint
    } else {
        0
    };
    let mnt = sys::fsmount(fs.as_fd(), attrs).map_err(|e| err("fsmount".into(), e))?;
    sys::move_mount_to(mnt.as_fd(), target).map_err(|e| err("move_mount".into(), e))
}

/// Unmount a snapshot.
pub fn unmount(target: &Path) -> Result<()> {
    nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH).at(target)
}

/// Write the overlay upper directory `upper` as an uncompressed OCI layer tar to `out`:
/// overlay whiteouts (0/0 character devices) become `.wh.<name>`, opaque directories get a
/// `.wh..wh..opq` entry, hard links inside the upper dir stay hard links, xattrs other
/// than `trusted.overlay.*` are kept (as PAX `SCHILY.xattr.*`). Entries are sorted, so the
/// same tree gives the same bytes. Returns the diff id and size.
pub fn diff_upper<W: Write>(upper: &Path, out: W) -> Result<(Digest, u64)> {
    let mut b = tar::Builder::new(HashingWriter::new(out));
    b.follow_symlinks(false);
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    walk(upper, Path::new(""), &mut b, &mut links)?;
    let w = b.into_inner().at(upper)?;
    let (d, n, mut inner) = w.finish();
    inner.flush().at(upper)?;
    Ok((d, n))
}

/// A file's extended attributes (not following symlinks), without `trusted.overlay.*`.
pub fn xattrs_of(path: &Path) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    for name in sys::llistxattr(path).at(path)? {
        if name.starts_with(b"trusted.overlay.") {
            continue;
        }
        if let Some(v) = sys::lgetxattr(path, &name).at(path)? {
            out.push((name, v));
        }
    }
    out.sort();
    Ok(out)
}

fn header_for(md: &fs::Metadata) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_mode(md.mode() & 0o7777);
    h.set_uid(u64::from(md.uid()));
    h.set_gid(u64::from(md.gid()));
    h.set_mtime(md.mtime().max(0) as u64);
    h.set_size(0);
    h
}

fn append<W: Write>(
    b: &mut tar::Builder<W>,
    mut h: tar::Header,
    rel: &Path,
    xattrs: &[(Vec<u8>, Vec<u8>)],
    data: &mut dyn io::Read,
) -> Result<()> {
    if !xattrs.is_empty() {
        let exts: Vec<(String, &[u8])> = xattrs
            .iter()
            .map(|(k, v)| {
                (
                    format!("SCHILY.xattr.{}", String::from_utf8_lossy(k)),
                    v.as_slice(),
                )
            })
            .collect();
        b.append_pax_extensions(exts.iter().map(|(k, v)| (k.as_str(), *v)))
            .at(rel)?;
    }
    b.append_data(&mut h, rel, data).at(rel)
}

fn walk<W: Write>(
    root: &Path,
    rel: &Path,
    b: &mut tar::Builder<W>,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<()> {
    let dir = root.join(rel);
    let mut names: Vec<_> = fs::read_dir(&dir)
        .at(&dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .at(&dir)?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let r = rel.join(&name);
        let md = fs::symlink_metadata(&path).at(&path)?;
        let ft = md.file_type();
        if ft.is_char_device() && md.rdev() == 0 {
            // overlay whiteout
            let mut wname = std::ffi::OsString::from(WHITEOUT_PREFIX);
            wname.push(&name);
            let mut h = header_for(&md);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            append(b, h, &rel.join(wname), &[], &mut io::empty())?;
            continue;
        }
        let xattrs = xattrs_of(&path)?;
        let mut h = header_for(&md);
        if ft.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            append(b, h, &r, &xattrs, &mut io::empty())?;
            if sys::lgetxattr(&path, OPAQUE_XATTR).at(&path)?.as_deref() == Some(b"y") {
                let mut oh = header_for(&md);
                oh.set_entry_type(tar::EntryType::Regular);
                oh.set_mode(0o644);
                append(b, oh, &r.join(OPAQUE_MARKER), &[], &mut io::empty())?;
            }
            walk(root, &r, b, links)?;
            continue;
        }
        if md.nlink() > 1 {
            let key = (md.dev(), md.ino());
            if let Some(first) = links.get(&key) {
                h.set_entry_type(tar::EntryType::Link);
                b.append_link(&mut h, &r, first).at(&r)?;
                continue;
            }
            links.insert(key, r.clone());
        }
        if ft.is_file() {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(md.len());
            let mut f = fs::File::open(&path).at(&path)?;
            append(b, h, &r, &xattrs, &mut f)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&path).at(&path)?;
            h.set_entry_type(tar::EntryType::Symlink);
            if !xattrs.is_empty() {
                let exts: Vec<(String, &[u8])> = xattrs
                    .iter()
                    .map(|(k, v)| {
                        (
                            format!("SCHILY.xattr.{}", String::from_utf8_lossy(k)),
                            v.as_slice(),
                        )
                    })
                    .collect();
                b.append_pax_extensions(exts.iter().map(|(k, v)| (k.as_str(), *v)))
                    .at(&r)?;
            }
            b.append_link(&mut h, &r, &target).at(&r)?;
        } else if ft.is_fifo() || ft.is_char_device() || ft.is_block_device() {
            h.set_entry_type(if ft.is_fifo() {
                tar::EntryType::Fifo
            } else if ft.is_char_device() {
                tar::EntryType::Char
            } else {
                tar::EntryType::Block
            });
            let rdev = md.rdev();
            h.set_device_major(nix::sys::stat::major(rdev) as u32)
                .at(&r)?;
            h.set_device_minor(nix::sys::stat::minor(rdev) as u32)
                .at(&r)?;
            append(b, h, &r, &xattrs, &mut io::empty())?;
        }
        // sockets are skipped, as docker does
    }
    Ok(())
}
