//! Quiesce's domain crate: the types and events every layer shares and, behind the `server`
//! feature, the catalog storage, the mirror engine and the demo seed and the maintenance orchestrator.
//!
//! Policy: this crate never depends on Leptos or axum. The browser build compiles it without the
//! `server` feature and gets plain serialisable types only; nothing here may assume a runtime
//! unless it sits behind `server`.

pub mod auth;
pub mod domain;
pub mod events;
pub mod schedule;
pub mod tokens;
pub mod webhooks;

#[cfg(feature = "server")]
pub mod engine;

#[cfg(feature = "server")]
pub mod demo;

#[cfg(feature = "server")]
pub mod maintenance;

#[cfg(feature = "server")]
pub mod storage;

#[cfg(feature = "server")]
pub mod accounts;

#[cfg(feature = "server")]
pub mod hasher;

#[cfg(feature = "server")]
pub mod secrets;

#[cfg(feature = "server")]
pub mod processes;

#[cfg(feature = "server")]
pub mod relay;

#[cfg(feature = "server")]
pub mod ownership;

#[cfg(feature = "testing")]
pub mod testing;

pub use domain::{Backend, InstanceStatus};
