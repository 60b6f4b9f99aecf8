//! User administration (admins only) and the people audit.

pub mod audit;
pub mod create;
pub mod list;
pub mod reset_password;
pub mod set_disabled;
pub mod set_role;

pub use audit::list_audit;
pub use create::{create_user, CreateUser};
pub use list::list_users;
pub use reset_password::{reset_password, ResetPassword};
pub use set_disabled::{set_user_disabled, SetUserDisabled};
pub use set_role::{set_user_role, SetUserRole};
