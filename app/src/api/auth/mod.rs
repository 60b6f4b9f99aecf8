//! Signing in and out, the current user, and the one-time first-admin set-up.

pub mod login;
pub mod logout;
pub mod me;
pub mod setup;

pub use login::{login, Login};
pub use logout::{logout, Logout};
pub use me::me;
pub use setup::{complete_setup, CompleteSetup};
