//! Alerts: each new incident sent where people already look. Three sinks,
//! each configured in `[alerts]` and run on a thread of its own:
//! - [`webhook`]: an HTTP(S) JSON POST, optionally signed with HMAC-SHA256;
//! - [`syslog`]: RFC 5424 over UDP, or TCP with octet counting (RFC 6587);
//! - [`jsonl`]: one JSON line per incident appended to a file, like
//!   Suricata's `eve.json`.
//!
//! The worker publishes each new incident's id after it is stored
//! ([`Alerts::publish`], never blocking). Each sink has a bounded queue of
//! ids (`alerts.queue_capacity`); a full queue drops the id (counted in
//! `/metrics`) and loses nothing, because a sink always sends what the
//! `incidents` table holds above its cursor (`alert_cursors`), in id order,
//! moving the cursor after each delivery. A failed delivery is retried with
//! doubling pauses up to `alerts.max_backoff_s`, the same incident first, so
//! a receiver that is down for a while gets every incident once, in order,
//! when it is back; a restart picks up where the cursor stands. Suppressed
//! incidents are not sent. See [`runner`].

pub mod jsonl;
pub mod runner;
pub mod syslog;
pub mod webhook;

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError};

use crate::config::AlertsConfig;
use crate::shutdown::Shutdown;
use crate::stats::{Stats, SINK_NAMES};
use crate::store::incidents::IncidentRow;
use crate::store::Pool;

/// One way of delivering an incident.
pub trait Sink: Send {
    /// Delivers `incident` (as the table holds it now); an error says why
    /// it failed, for the log, and the delivery is tried again.
    fn deliver(&mut self, incident: &IncidentRow) -> Result<(), String>;
}

/// The event every sink sends: when, what kind, the incident.
pub fn event(incident: &IncidentRow) -> serde_json::Value {
    serde_json::json!({
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "event_type": "incident",
        "incident": incident,
    })
}

/// The worker's end: one bounded queue per configured sink.
#[derive(Clone, Default)]
pub struct Alerts {
    queues: Vec<(usize, Sender<i64>)>,
    stats: Option<Arc<Stats>>,
}

impl Alerts {
    /// Tells every sink that incident `id` was stored. Never blocks: a full
    /// queue drops the id, and the sink finds the incident in the table.
    pub fn publish(&self, id: i64) {
        for (sink, tx) in &self.queues {
            match tx.try_send(id) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    if let Some(s) = &self.stats {
                        Stats::add(&s.sinks[*sink].overflows, 1);
                    }
                }
                Err(TrySendError::Disconnected(_)) => {}
            }
        }
        if let Some(s) = &self.stats {
            for (sink, tx) in &self.queues {
                Stats::set(&s.sinks[*sink].queued, tx.len() as u64);
            }
        }
    }

    /// True when no sink is configured.
    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }
}

/// A sink's settings could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// The JSON-lines file cannot be opened for appending.
    #[error("alerts.jsonl_path {path:?} cannot be opened for appending: {source}. Check that its folder exists and is writable")]
    Jsonl {
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A sink's address is not usable.
    #[error("{key} {value:?}: {message}")]
    Address {
        /// The config key.
        key: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        message: String,
    },
    /// A sink thread could not be started.
    #[error("cannot start the alert thread for {sink}: {source}")]
    Thread {
        /// Which sink.
        sink: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Starts a thread for each configured sink; returns the worker's end and
/// the threads (they end once the worker's end is dropped and what is queued
/// was delivered, or `alerts.shutdown_grace_s` after shutdown began).
pub fn start(
    cfg: &AlertsConfig,
    pool: Pool,
    stats: Arc<Stats>,
    shutdown: Shutdown,
) -> Result<(Alerts, Vec<JoinHandle<()>>), AlertError> {
    let mut sinks: Vec<(usize, Box<dyn Sink>)> = Vec::new();
    if let Some(url) = &cfg.webhook_url {
        let hook = webhook::Webhook::new(
            url,
            cfg.webhook_secret.clone(),
            Duration::from_secs(cfg.webhook_timeout_s),
        )?;
        sinks.push((0, Box::new(hook)));
    }
    if let Some(target) = &cfg.syslog {
        sinks.push((1, Box::new(syslog::Syslog::new(target)?)));
    }
    if let Some(path) = &cfg.jsonl_path {
        sinks.push((2, Box::new(jsonl::Jsonl::open(path)?)));
    }
    let mut alerts = Alerts {
        queues: Vec::new(),
        stats: Some(Arc::clone(&stats)),
    };
    let mut threads = Vec::new();
    for (index, sink) in sinks {
        let name = SINK_NAMES[index];
        let (tx, rx) = crossbeam_channel::bounded(cfg.queue_capacity);
        alerts.queues.push((index, tx));
        Stats::set(&stats.sinks[index].enabled, 1);
        let run = runner::Runner {
            name,
            index,
            sink,
            queue: rx,
            pool: pool.clone(),
            stats: Arc::clone(&stats),
            shutdown: shutdown.clone(),
            max_backoff: Duration::from_secs(cfg.max_backoff_s),
            grace: Duration::from_secs(cfg.shutdown_grace_s),
        };
        let handle = std::thread::Builder::new()
            .name(format!("alert-{name}"))
            .spawn(move || run.run())
            .map_err(|source| AlertError::Thread { sink: name, source })?;
        log::info!("alerts: sending new incidents to the {name} sink");
        threads.push(handle);
    }
    Ok((alerts, threads))
}
