//! NetSentinel: network traffic anomaly detection.
//!
//! Sensors and traffic generators stream packet records over TCP; the server
//! scores each with an Isolation Forest, stores it in PostgreSQL with its
//! verdict and answers the sender. This crate is the whole program; the
//! `netsentinel` binary (`src/main.rs`) parses the command line, loads the
//! configuration, dispatches and maps errors to exit codes.
//!
//! # Layout
//! From the bottom up (a module uses only those above it in this list):
//! - [`detect`]: the Isolation Forest (params, matrix, tree, forest);
//! - [`protocol`]: the wire format, a line → a validated packet or a precise error;
//! - [`config`]: `netsentinel.toml`, environment, flags → validated [`config::Config`];
//! - [`features`], [`detector`]: packets → features; features + forest as one detector;
//! - [`shutdown`], [`stats`], [`net`]: process-wide shutdown and signals, counters,
//!   dialable addresses;
//! - [`store`]: PostgreSQL (migrations, pool, batched writes, queries, models);
//! - [`trainer`]: the model in use, the retrain policy, training;
//! - [`web`]: the dashboard thread and its JSON API, over a narrow state;
//! - [`server`]: accept loop, connections, the FIFO, the worker; starts the dashboard;
//! - [`client`], [`demo`], [`eval`]: the other subcommands;
//! - [`cli`]: the command line (clap definitions only).

pub mod cli;
pub mod client;
pub mod config;
pub mod demo;
pub mod detect;
pub mod detector;
pub mod eval;
pub mod features;
pub mod net;
pub mod protocol;
pub mod server;
pub mod shutdown;
pub mod stats;
pub mod store;
pub mod trainer;
pub mod web;
