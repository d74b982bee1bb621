//! Content-addressed blobs in an OCI image layout: `<root>/blobs/sha256/<hex>`.
//!
//! A blob is written to `<root>/tmp/` while its digest is computed, fsynced, checked against
//! the expected digest and only then renamed into place, so no half-written or wrong blob is
//! ever visible under its name.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, IoContext, Result};

/// The blob store of one engine root.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique name for a temporary file or directory in this process.
pub(crate) fn tmp_name(prefix: &str) -> String {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{t}", std::process::id())
}

impl BlobStore {
    /// Open (creating if needed) the layout under `root`.
    pub fn open(root: &Path) -> Result<BlobStore> {
        let s = BlobStore {
            root: root.to_path_buf(),
        };
        fs::create_dir_all(s.blobs_dir()).at(s.blobs_dir())?;
        fs::create_dir_all(s.tmp_dir()).at(s.tmp_dir())?;
        let layout = root.join("oci-layout");
        if !layout.exists() {
            write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#, &s.tmp_dir())?;
        }
        Ok(s)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Where the blob `d` lives (whether or not it exists).
    pub fn path(&self, d: &Digest) -> PathBuf {
        self.blobs_dir().join(d.hex())
    }

    pub fn contains(&self, d: &Digest) -> bool {
        self.path(d).is_file()
    }

    /// Size of a stored blob.
    pub fn size(&self, d: &Digest) -> Result<u64> {
        match fs::metadata(self.path(d)) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::BlobNotFound(d.clone())),
            Err(e) => Err(Error::Io {
                path: self.path(d),
                source: e,
            }),
        }
    }

    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        match File::open(self.path(d)) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::BlobNotFound(d.clone())),
            Err(e) => Err(Error::Io {
                path: self.path(d),
                source: e,
            }),
        }
    }

    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.open_blob(d)?.read_to_end(&mut v).at(self.path(d))?;
        Ok(v)
    }

    /// Store the bytes of `reader`. With `expected`, the content must have that digest (and
    /// `expected_size`, if given) or nothing is stored. Returns the digest and size.
    pub fn put(
        &self,
        reader: &mut dyn Read,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<(Digest, u64)> {
        let tmp = self.tmp_dir().join(tmp_name("blob"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)
            .at(&tmp)?;
        let mut w = HashingWriter::new(io::BufWriter::new(file));
        let res = io::copy(reader, &mut w);
        let (digest, size, buf) = w.finish();
        let cleanup = |e: Error| {
            let _ = fs::remove_file(&tmp);
            e
        };
        if let Err(e) = res {
            let what = expected.map_or_else(|| tmp.clone(), |d| PathBuf::from(d.as_str()));
            return Err(cleanup(Error::Io {
                path: what,
                source: e,
            }));
        }
        let file = buf
            .into_inner()
            .map_err(|e| e.into_error())
            .at(&tmp)
            .map_err(cleanup)?;
        if let Some(exp) = expected {
            if *exp != digest {
                return Err(cleanup(Error::DigestMismatch {
                    expected: exp.clone(),
                    actual: digest,
                }));
            }
        }
        if let Some(exp) = expected_size {
            if exp != size {
                return Err(cleanup(Error::SizeMismatch {
                    digest,
                    expected: exp,
                    actual: size,
                }));
            }
        }
        file.sync_all().at(&tmp).map_err(cleanup)?;
        drop(file);
        let dest = self.path(&digest);
        fs::rename(&tmp, &dest).at(&dest).map_err(cleanup)?;
        sync_dir(&self.blobs_dir())?;
        Ok((digest, size))
    }

    /// Store a blob held in memory.
    pub fn put_bytes(&self, data: &[u8]) -> Result<Digest> {
        let d = Digest::of(data);
        if !self.contains(&d) {
            self.put(&mut &data[..], Some(&d), Some(data.len() as u64))?;
        }
        Ok(d)
    }

    /// Remove a blob (missing is fine).
    pub fn remove(&self, d: &Digest) -> Result<()> {
        match fs::remove_file(self.path(d)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::Io {
                path: self.path(d),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// Every blob in the store.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for e in fs::read_dir(self.blobs_dir()).at(self.blobs_dir())? {
            let e = e.at(self.blobs_dir())?;
            if let Some(name) = e.file_name().to_str() {
                if let Ok(d) = Digest::from_hex(name) {
                    out.push(d);
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|f| f.sync_all()).at(dir)
}

/// Write a small file atomically: temp file in `tmp_dir`, fsync, rename.
pub(crate) fn write_atomic(dest: &Path, data: &[u8], tmp_dir: &Path) -> Result<()> {
    let tmp = tmp_dir.join(tmp_name("file"));
    let res = (|| -> io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, dest)
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res.at(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_verifies_and_leaves_nothing_on_mismatch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = BlobStore::open(dir.path()).expect("open");
        let d = s.put_bytes(b"hello").expect("put");
        assert_eq!(s.read_blob(&d).expect("read"), b"hello");
        let wrong = Digest::of(b"other");
        let err = s.put(&mut &b"hello!"[..], Some(&wrong), None).unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        assert!(!s.contains(&wrong));
        assert_eq!(s.list().expect("list"), vec![d.clone()]);
        let err = s.put(&mut &b"hello"[..], Some(&d), Some(3)).unwrap_err();
        assert!(matches!(err, Error::SizeMismatch { .. }), "{err}");
        assert_eq!(fs::read_dir(s.tmp_dir()).expect("tmp").count(), 0);
    }
}
