//! Mirrors: listing for everyone signed in; creating, pausing, resuming and dropping for
//! operators and admins.

pub mod create;
pub mod drop;
pub mod list;
pub mod pause;
pub mod resume;

pub use create::{create_mirror, CreateMirror};
pub use drop::{drop_mirror, DropMirror};
pub use list::{list_mirror_page, list_mirrors, ListMirrorPage, ListMirrors, Query, PAGE_SIZE};
pub use pause::{pause_mirror, PauseMirror};
pub use resume::{resume_mirror, ResumeMirror};
