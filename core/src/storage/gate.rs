//! The maintenance gate's rule, shared by both backends (the SQL that finds the active window,
//! and the locking that makes the check race-free, live in each backend's `maintenance.rs`).
//!
//! Policy: while a window is active, a change that would let a mirror in its scope run, change its
//! configuration or touch its source (dropping removes capture triggers and change-log entries) is
//! refused, naming the window. Maintenance itself may only add holds while its window is still
//! the active one and `enabling` ([`may_hold`]), so an aborted or ended window never gains holds. The one exception is the window's own
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
    /// Drop `mirror` (its worker stops; capture on the source is removed).
    Drop { mirror: &'a Mirror },
}

/// Whether window `window_id` may write a maintenance hold now: it must be the active window and
/// still `enabling`. Checked inside the hold's transaction, so a hold can never land after an
/// abort or a disable moved the window on (they change the phase in their own transaction).
pub(crate) fn may_hold(active: Option<&Window>, window_id: &str) -> Result<()> {
    match active {
        Some(w) if w.id == window_id && w.phase == WindowPhase::Enabling => Ok(()),
        Some(w) if w.id == window_id => Err(StorageError::Fenced(format!(
            "maintenance window {window_id} is {}: it no longer pauses mirrors",
            w.phase
        ))),
        _ => Err(StorageError::Fenced(format!(
            "maintenance window {window_id} is not active: it no longer pauses mirrors"
        ))),
    }
}

/// Whether maintenance should pause `mirror`: only a working mirror nothing holds yet. A mirror a
/// user paused (even a moment ago, while the window was pausing others) is not the window's to
/// back up or hold — "nothing else changed" (DESIGN §4, invariant 1).
pub(crate) fn maintenance_takes(mirror: &Mirror) -> bool {
    mirror.status.is_working() && mirror.holds.is_empty()
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
        GateTarget::Drop { mirror } => {
            if w.scope.covers(mirror) {
                return Err(StorageError::Refused(format!(
                    "mirror {:?} cannot be dropped during maintenance: {}; retry once it has ended",
                    mirror.name,
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
