//! What a pull or push reports while it works, layer by layer (docker's status words).
//! Events come from the transfer threads too: the callback must be `Sync`.

use crate::digest::Digest;

/// One step of a pull or push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The manifest being pulled or pushed (after a platform was picked from an index).
    Manifest {
        digest: Digest,
        /// `os/arch[/variant]` when it was picked from an index.
        platform: Option<String>,
    },
    /// A layer to transfer, not started yet.
    Waiting { digest: Digest, size: u64 },
    /// The layer is already in the store (pull) or in the registry (push).
    AlreadyExists { digest: Digest },
    /// Push: the registry took the layer from another of its repositories.
    Mounted { digest: Digest, from: String },
    /// Bytes moved so far.
    Transferring {
        digest: Digest,
        done: u64,
        total: u64,
    },
    /// Downloaded and verified (pull), or uploaded and accepted (push).
    Transferred { digest: Digest },
    /// Pull: unpacking the layer.
    Extracting { digest: Digest },
    /// Pull: the layer is unpacked and recorded.
    Extracted { digest: Digest },
}

impl Progress {
    /// The layer (or manifest) the event is about.
    pub fn digest(&self) -> &Digest {
        match self {
            Progress::Manifest { digest, .. }
            | Progress::Waiting { digest, .. }
            | Progress::AlreadyExists { digest }
            | Progress::Mounted { digest, .. }
            | Progress::Transferring { digest, .. }
            | Progress::Transferred { digest }
            | Progress::Extracting { digest }
            | Progress::Extracted { digest } => digest,
        }
    }
}

/// Where events go.
pub type ProgressFn<'a> = &'a (dyn Fn(Progress) + Sync);
