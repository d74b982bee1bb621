//! `berth history`: an image's history entries, newest first, each with the size of the
//! layer it made (metadata-only entries have none).

use berth_image::{Digest, ImageStore};
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};

/// One line of `berth history`.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryRow {
    /// The image id on the newest line only (the others have no image of their own).
    pub id: Option<Digest>,
    pub created: Option<String>,
    pub created_by: String,
    /// Size of the layer blob this entry made (0 for metadata-only entries).
    pub size: u64,
    pub comment: String,
    pub empty_layer: bool,
}

pub fn history(store: &ImageStore, r: &str) -> Result<Vec<HistoryRow>> {
    let s = store.image_state(r)?;
    let cfg: Value = serde_json::from_slice(&s.config)
        .map_err(|e| Error::Other(format!("image {r}: config: {e}")))?;
    let entries = cfg
        .get("history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut layers = s.layers.iter();
    let mut rows = Vec::new();
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(String::from);
    for h in &entries {
        let empty = h
            .get("empty_layer")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let size = if empty {
            0
        } else {
            layers.next().map_or(0, |l| l.size)
        };
        rows.push(HistoryRow {
            id: None,
            created: text(h, "created"),
            created_by: text(h, "created_by").unwrap_or_default(),
            size,
            comment: text(h, "comment").unwrap_or_default(),
            empty_layer: empty,
        });
    }
    // Layers the history doesn't account for (images made without one).
    for l in layers {
        rows.push(HistoryRow {
            id: None,
            created: None,
            created_by: String::new(),
            size: l.size,
            comment: String::new(),
            empty_layer: false,
        });
    }
    rows.reverse();
    if let Some(first) = rows.first_mut() {
        first.id = Some(s.config_digest.clone());
    }
    Ok(rows)
}
