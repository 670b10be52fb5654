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
//! - [`features`], [`context`], [`detector`]: packets → per-packet features;
//!   behaviour over time per source, pair and destination; one forest per view
//!   as one detector;
//! - [`shutdown`], [`stats`], [`net`]: process-wide shutdown and signals, counters,
//!   dialable addresses;
//! - [`store`]: PostgreSQL (migrations, pool, batched writes, queries, models);
//! - [`schedule`]: the retrain policy (when a new model is due), pure;
//! - [`trainer`]: the model in use, training from stored history, the trainer thread;
//! - [`judge`]: the judging path (features, scoring, training at fixed counts,
//!   late scores) the worker and `eval-pcap` share;
//! - [`web`]: the dashboard thread and its JSON API, over a narrow state;
//! - [`server`]: accept loop, connections, the FIFO, the worker; starts the dashboard;
//! - [`client`], [`demo`], [`eval`]: the other subcommands;
//! - [`cli`]: the command line (clap definitions only).

pub mod alerts;
pub mod capture;
pub mod cli;
pub mod client;
pub mod config;
pub mod context;
pub mod demo;
pub mod detect;
pub mod detector;
pub mod eval;
pub mod features;
pub mod incidents;
pub mod judge;
pub mod net;
pub mod protocol;
pub mod schedule;
pub mod server;
pub mod shutdown;
pub mod stats;
pub mod store;
pub mod trainer;
pub mod web;
