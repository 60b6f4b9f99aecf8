//! One process per SQLite catalog: an exclusive OS file lock on `<catalog file>.lock`, taken
//! before the catalog is opened and held for the life of the process.
//!
//! Policy: SQLite has no way for two processes to share the catalog's work safely (no row locks,
//! no notifications), so a second server on the same file is refused at start with one clear
//! line, and the first keeps running untouched (the refused one never opens the database). The
//! lock is `flock`-style: the OS releases it when the process ends, however it ends (`kill -9`
//! included), so a stale lock file never blocks a restart. Postgres catalogs take no lock:
//! several processes share them by design.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::PathBuf;

use quiesce_core::engine::peer::rules::sqlite_catalog_files;

/// Why the catalog lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another Quiesce server is already running on the SQLite catalog {path} (it holds {lock}); \
         a SQLite catalog serves one process — stop the other one, or use a Postgres catalog to run several"
    )]
    Held { path: String, lock: String },
    #[error("cannot open the catalog database: cannot create or lock {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// The held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct CatalogLock {
    _file: File,
    path: PathBuf,
}

impl CatalogLock {
    /// Locks the SQLite catalog named by `database_url`; `None` for other catalogs (and for an
    /// in-memory SQLite database, which no other process can open).
    pub fn acquire(database_url: &str) -> Result<Option<CatalogLock>, LockError> {
        let Some(db) = sqlite_catalog_files(database_url).into_iter().next() else { return Ok(None) };
        let mut lock = db.clone().into_os_string();
        lock.push(".lock");
        let path = PathBuf::from(lock);
        let io = |source| LockError::Io { path: path.display().to_string(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(CatalogLock { _file: file, path })),
            Err(TryLockError::WouldBlock) => {
                Err(LockError::Held { path: db.display().to_string(), lock: path.display().to_string() })
            }
            Err(TryLockError::Error(e)) => Err(io(e)),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_catalog_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/catalog.db", dir.path().display());
        let first = CatalogLock::acquire(&url).unwrap().expect("a SQLite catalog is locked");
        let err = CatalogLock::acquire(&url).unwrap_err();
        assert!(err.to_string().contains("another Quiesce server is already running"), "{err}");
        drop(first);
        assert!(CatalogLock::acquire(&url).unwrap().is_some());
    }

    #[test]
    fn postgres_catalogs_take_no_lock() {
        assert!(CatalogLock::acquire("postgres://u@h/db").unwrap().is_none());
    }
}
