//! Peers: the databases mirrors read from and write to. Listing is for everyone signed in;
//! adding and removing peers is for admins.

pub mod create;
pub mod delete;
pub mod list;

pub use create::{create_peer, CreatePeer};
pub use delete::{delete_peer, DeletePeer};
pub use list::list_peers;
