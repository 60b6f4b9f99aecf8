//! Peers: the databases mirrors read from and write to. Listing them and their health is for
//! everyone signed in; adding and removing peers is for admins.

pub mod create;
pub mod delete;
pub mod health;
pub mod list;

pub use create::{create_peer, CreatePeer};
pub use delete::{delete_peer, DeletePeer};
pub use health::peers_health;
pub use list::list_peers;
