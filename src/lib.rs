//! Sigil: a registry, hosting and gateway for MCP servers in one binary.
//! See docs/ARCHITECTURE.md for the map.

pub mod ambient;
pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod cloudrun;
pub mod config;
pub mod deployments;
pub mod error;
pub mod gateway;
pub mod mirror;
pub mod registry;
pub mod runtime;
pub mod scan;
pub mod search;
pub mod store;
pub mod vault;
pub mod web;
pub mod worker;
