//! The signed-in user's own account: password and API tokens.

pub mod password;
pub mod tokens;

pub use password::{change_password, ChangePassword};
pub use tokens::{
    create_token, list_all_tokens, list_own_tokens, revoke_token, CreateToken, ListAllTokens, ListOwnTokens,
    RevokeToken,
};
