//! `list`: every container under the state root.

use crate::error::Result;
use crate::state::{State, StateRoot};

pub fn list(root: &StateRoot) -> Result<Vec<State>> {
    let mut out = Vec::new();
    for id in root.ids()? {
        // A container deleted while we list is simply not listed.
        if let Ok(st) = super::state::read(root, &id) {
            out.push(st);
        }
    }
    Ok(out)
}
