//! Scratch space of one build step: `<root>/build/<pid>-<n>/` with an overlay's `upper`,
//! `work` and `merged` directories (and `bundle` for a RUN's runtime state). Dropping it
//! unmounts and removes everything, whatever happened; directories left by a build that
//! died (its pid gone) are cleaned up by the next build.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use berth_image::snapshot::{self, OverlaySpec};

use crate::error::{IoContext, Result};

static NEXT: AtomicU64 = AtomicU64::new(0);

/// The directory builds keep their scratch dirs in.
pub fn scratch_root(root: &Path) -> PathBuf {
    root.join("build")
}

/// Remove scratch dirs of builds that are no longer running.
pub fn clean_stale(root: &Path) {
    let dir = scratch_root(root);
    let Ok(entries) = fs::read_dir(&dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let p = e.path();
        for m in ["merged", "from"] {
            let _ = nix::mount::umount2(&p.join(m), nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = fs::remove_dir_all(&p);
    }
}

/// One step's scratch directory.
pub struct Scratch {
    dir: PathBuf,
    mounted: Vec<PathBuf>,
}

impl Scratch {
    pub fn new(root: &Path) -> Result<Scratch> {
        let dir = scratch_root(root).join(format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        for d in ["upper", "work", "merged", "bundle", "empty"] {
            fs::create_dir_all(dir.join(d)).at(dir.join(d))?;
        }
        Ok(Scratch {
            dir,
            mounted: Vec::new(),
        })
    }

    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }

    pub fn merged(&self) -> PathBuf {
        self.dir.join("merged")
    }

    pub fn bundle(&self) -> PathBuf {
        self.dir.join("bundle")
    }

    /// Mount `lowers` (bottom first; none = an empty root) with the writable upper dir at
    /// `merged`.
    pub fn mount_writable(&mut self, mut lowers: Vec<PathBuf>) -> Result<PathBuf> {
        if lowers.is_empty() {
            lowers.push(self.dir.join("empty"));
        }
        let target = self.merged();
        snapshot::mount_overlay(
            &OverlaySpec {
                lowers,
                upper: Some((self.upper(), self.dir.join("work"))),
            },
            &target,
        )?;
        self.mounted.push(target.clone());
        Ok(target)
    }

    /// Mount `lowers` read-only at a directory named `name` (another stage or image to
    /// copy from).
    pub fn mount_readonly(&mut self, name: &str, mut lowers: Vec<PathBuf>) -> Result<PathBuf> {
        let target = self.dir.join(name);
        fs::create_dir_all(&target).at(&target)?;
        if lowers.is_empty() {
            lowers.push(self.dir.join("empty"));
        }
        snapshot::mount_overlay(
            &OverlaySpec {
                lowers,
                upper: None,
            },
            &target,
        )?;
        self.mounted.push(target.clone());
        Ok(target)
    }

    /// Unmount everything (before the upper dir is read).
    pub fn unmount_all(&mut self) -> Result<()> {
        while let Some(m) = self.mounted.pop() {
            snapshot::unmount(&m)?;
        }
        Ok(())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let mut all_unmounted = true;
        while let Some(m) = self.mounted.pop() {
            if snapshot::unmount(&m).is_err() {
                all_unmounted = false;
            }
        }
        if all_unmounted {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}
