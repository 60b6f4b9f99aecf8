//! The maintenance gate's rule, shared by both backends (the SQL that finds the active window,
//! and the locking that makes the check race-free, live in each backend's `maintenance.rs`).
//!
//! Policy: while a window is active, a change that would let a mirror in its scope run or change
//! its configuration is refused, naming the window. The one exception is the window's own
//! orchestrator releasing the window's own `maintenance:<id>` hold while the window is
//! `disabling` (disable or abort): that is how maintenance ends.

use crate::domain::{Hold, Mirror, MirrorStatus, Window, WindowPhase};
use crate::storage::{Result, StorageError};

/// What a gated change is about to do.
pub(crate) enum GateTarget<'a> {
    /// Create a mirror between these peers.
    Create { source_peer_id: &'a str, dest_peer_id: &'a str },
    /// Remove `hold` from `mirror` (it may then run).
    RemoveHold { mirror: &'a Mirror, hold: &'a Hold },
}

/// Decides a gated change given the active window (if any).
pub(crate) fn decide(active: Option<&Window>, target: &GateTarget<'_>) -> Result<()> {
    if let GateTarget::RemoveHold { mirror, .. } = target {
        if mirror.status == MirrorStatus::Dropped {
            return Err(StorageError::Refused(format!("mirror {:?} is dropped", mirror.name)));
        }
    }
    let Some(w) = active else { return Ok(()) };
    match target {
        GateTarget::Create { source_peer_id, dest_peer_id } => {
            if w.scope.covers_peers(source_peer_id, dest_peer_id) {
                return Err(StorageError::Refused(format!(
                    "mirrors cannot be created during maintenance: {}; retry once it has ended",
                    w.describe()
                )));
            }
        }
        GateTarget::RemoveHold { mirror, hold } => {
            if !w.scope.covers(mirror) {
                return Ok(());
            }
            let own = matches!(hold, Hold::Maintenance(id) if *id == w.id);
            if own && w.phase == WindowPhase::Disabling {
                return Ok(());
            }
            return Err(StorageError::Refused(format!(
                "mirror {:?} cannot be resumed during maintenance: {}; retry once it has ended",
                mirror.name,
                w.describe()
            )));
        }
    }
    Ok(())
}
