//! The signed-in user's own account.

pub mod password;

pub use password::{change_password, ChangePassword};
