//! NetSentinel: network traffic anomaly detection.
//!
//! Sensors and traffic generators stream packet records over TCP; the server
//! scores each with an Isolation Forest, stores it in PostgreSQL with its
//! verdict and answers the sender. This crate is the whole program; the
//! `netsentinel` binary is thin glue over these modules.
//!
//! # Layout
//! - [`config`]: `netsentinel.toml` → validated [`config::Config`];
//! - [`detect`]: the Isolation Forest;
//! - [`eval`]: `netsentinel eval`, quality and speed on labelled data;
//! - [`cli`]: the command line (clap definitions only).

pub mod cli;
pub mod client;
pub mod config;
pub mod demo;
pub mod detect;
pub mod eval;
pub mod features;
pub mod model;
pub mod protocol;
pub mod server;
pub mod store;
pub mod web;
