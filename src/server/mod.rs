//! `netsentinel server`: wires the threads together and runs them until shutdown.
//!
//! Threads: the accept loop ([`listener`], on the calling thread); one thread
//! per accepted connection ([`connection`]), at most `server.max_clients`
//! served at once ([`slots`]), the rest waiting first come, first served; ONE
//! worker ([`worker`]) fed by ONE bounded FIFO ([`queue`]) that every
//! connection pushes into; the trainer ([`crate::trainer`]); the dashboard
//! ([`crate::web`], given a narrow state of its own); the storage upkeep
//! ([`upkeep`]: partitions ahead, retention) and, after an upgrade, the mover
//! of the old rows ([`upgrade`]); the signal handler ([`crate::shutdown`]).
//!
//! Shutdown order: stop accepting → connections stop reading at a line
//! boundary and wait for their verdicts → the worker drains the FIFO, commits,
//! answers → the last connection hangs up, the FIFO disconnects, the worker
//! ends → the trainer and the dashboard stop → exit 0.

pub mod commit_watch;
pub mod connection;
pub mod listener;
pub mod names;
pub mod peers;
pub mod plan;
pub mod queue;
pub mod slots;
pub mod upgrade;
pub mod upkeep;
pub mod wire;
pub mod worker;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Receiver;

use crate::config::Config;
use crate::shutdown::Shutdown;
use crate::stats::Stats;
use crate::store::{self, StoreError};
use crate::trainer::{self, ModelSlot};
use crate::web::state::{IngestGauges, WebSettings, WebState};

use connection::ConnContext;
use listener::Admission;
use queue::Job;
use slots::Slots;
use worker::{Handles, Worker};

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The database is unreachable or broken at start.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The TLS certificate or key cannot be used.
    #[error(transparent)]
    Tls(#[from] wire::TlsError),
    /// The listening socket could not be opened.
    #[error(
        "cannot listen on {addr}: {source}. Is another server running there? Choose another \
             {key} ({flag}) or {host_key}"
    )]
    Bind {
        /// host:port.
        addr: String,
        /// The config key of the port.
        key: &'static str,
        /// Its command-line flag.
        flag: &'static str,
        /// The config key of the address.
        host_key: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// A thread could not be started.
    #[error("cannot start the {what} thread: {source}")]
    Thread {
        /// Which.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// An alert sink cannot be set up.
    #[error(transparent)]
    Alerts(#[from] crate::alerts::AlertError),
    /// Packets were left unstored because the database stayed down through shutdown.
    #[error("shut down with packets unstored (database unavailable); their senders got no verdict and must resend")]
    Unstored,
}

/// Where the server ended up listening.
#[derive(Debug, Clone, Copy)]
pub struct Listening {
    /// The packet listener.
    pub ingest: SocketAddr,
    /// The dashboard.
    pub dashboard: SocketAddr,
}

/// Options of a server run beyond the configuration.
#[derive(Default)]
pub struct RunOptions {
    /// Serve the dashboard's files from this folder instead of the embedded copies.
    pub static_dir: Option<std::path::PathBuf>,
    /// Told where the server listens once it accepts.
    pub ready: Option<crossbeam_channel::Sender<Listening>>,
}

/// The connection slots and the FIFO's depth, as the dashboard reads them.
struct Gauges {
    slots: Arc<Slots>,
    queue: Receiver<Job>,
    capacity: usize,
}

impl IngestGauges for Gauges {
    fn served(&self) -> usize {
        self.slots.served()
    }
    fn waiting(&self) -> usize {
        self.slots.waiting()
    }
    fn queue_depth(&self) -> usize {
        self.queue.len()
    }
    fn queue_capacity(&self) -> usize {
        self.capacity
    }
}

/// Runs the server until SIGINT/SIGTERM (or `shutdown` is triggered).
pub fn run(config: Config, shutdown: Shutdown, opts: RunOptions) -> Result<(), ServerError> {
    log::info!(
        "connecting to PostgreSQL at {}",
        store::parse_url(&config.database.url)
            .map(|c| store::describe(&c))
            .unwrap_or_else(|_| "(bad URL)".into())
    );
    // Bad TLS files stop the start before anything listens.
    let tls = match (&config.server.tls_cert, &config.server.tls_key) {
        (Some(cert), Some(key)) => {
            let tls = wire::server_config(cert.as_ref(), key.as_ref())?;
            log::info!("senders connect with TLS (certificate {cert})");
            Some(tls)
        }
        _ => None,
    };
    let pool = store::open_pool(&config.database.url, config.database.pool_size)?;
    let (listener, local) = bind_ingest(&config)?;
    let models = Arc::new(ModelSlot::default());
    let stored_total = {
        let mut c = pool.get().map_err(StoreError::from)?;
        if let Some(model) = trainer::load_newest(&mut *c, &config.detector.half_lives)? {
            models.publish(model);
        }
        store::models::stored_packets(&mut *c)?.max(0) as u64
    };

    let (jobs_tx, jobs_rx) = crossbeam_channel::bounded(config.server.queue_capacity);
    let stats = Arc::new(Stats::default());
    stats
        .commits
        .set_limit(Duration::from_secs(config.database.commit_timeout_s));
    {
        // Ends on its own once the worker has stopped (finish closes the watch).
        let stats = Arc::clone(&stats);
        spawn("commit-watch", move || commit_watch::run(stats))?;
    }
    let slots = Slots::new(config.server.max_clients);
    let (alerts, alert_threads) = crate::alerts::start(
        &config.alerts,
        pool.clone(),
        Arc::clone(&stats),
        shutdown.clone(),
    )?;
    let name: Arc<str> = server_name(&config, local).into();
    log::info!("server name {name:?} (server.name): recorded with each sender it stores");
    start_storage_threads(&config, Arc::clone(&name), &stats, &shutdown)?;
    let handles = Handles {
        name,
        pool: pool.clone(),
        models: Arc::clone(&models),
        stats: Arc::clone(&stats),
        shutdown: shutdown.clone(),
        alerts,
    };
    let (worker, trainer) = start_model_threads(&config, handles, jobs_rx.clone(), stored_total)?;
    {
        // Wake the blocking accept() and the waiting connections at shutdown.
        let wake_addr = crate::net::dialable(local);
        let slots = Arc::clone(&slots);
        shutdown.on_trigger(move || {
            slots.wake_all();
            let _ = TcpStream::connect_timeout(&wake_addr, Duration::from_secs(1));
        });
    }
    let gauges = Gauges {
        slots: Arc::clone(&slots),
        queue: jobs_rx,
        capacity: config.server.queue_capacity,
    };
    let settings = WebSettings {
        access: crate::web::guard::Access {
            write_token: config.dashboard.token.clone(),
            read_token: config.dashboard.read_token.clone(),
            allowed_hosts: config.dashboard.allowed_hosts.clone(),
        },
        retrain_interval: Duration::from_secs(config.dashboard.retrain_interval_s),
        detector: config.detector.clone(),
        storage: config.storage.clone(),
    };
    let web_state = WebState::new(
        pool.clone(),
        models,
        Arc::clone(&stats),
        Arc::new(gauges),
        settings,
    )
    .with_shutdown(shutdown.clone())
    .with_static_dir(opts.static_dir);
    let (web, dashboard_local) = start_dashboard(&config, web_state, &shutdown)?;
    announce(&config, local, dashboard_local, opts.ready);

    let secs = Duration::from_secs;
    let admission = Arc::new(Admission {
        slots: Arc::clone(&slots),
        ctx: Arc::new(ConnContext {
            jobs: jobs_tx,
            shutdown: shutdown.clone(),
            max_clients: config.server.max_clients,
            idle_timeout: secs(config.server.idle_timeout_s),
            hello_timeout: secs(config.server.hello_timeout_s),
            line_timeout: secs(config.server.line_timeout_s),
            idle_grace: secs(config.server.idle_grace_s),
            slots,
            names: names::LiveNames::new(),
            pool,
        }),
        peers: peers::PeerCounts::new(config.server.max_connections_per_address),
        tls,
        handshakes: Default::default(),
        stats: Arc::clone(&stats),
        max_waiting: config.server.max_waiting,
        queue_timeout: Duration::from_secs(config.server.queue_timeout_s),
    });
    listener::accept_loop(&listener, &admission);
    drop(admission);
    log::info!("stopped accepting; draining the queue");
    finish(worker, trainer, web, alert_threads, &shutdown, &stats)
}

/// Creates the partitions ahead (before any packet is accepted), then starts
/// the storage upkeep and, when an upgrade left old rows, the thread moving them.
fn start_storage_threads(
    config: &Config,
    name: Arc<str>,
    stats: &Arc<Stats>,
    shutdown: &Shutdown,
) -> Result<(), ServerError> {
    let url = config.database.url.clone();
    let mut keep = upkeep::Upkeep::new(&url, &config.storage, name, Arc::clone(stats));
    if let Err(e) = keep.round(chrono::Utc::now()) {
        // Not fatal: packets go to the default partition meanwhile.
        log::warn!(
            "storage upkeep failed at start ({e}); packets go to the default partition until \
             today's exists (tried again every storage.upkeep_interval_s)"
        );
    }
    {
        let shutdown = shutdown.clone();
        spawn("storage-upkeep", move || keep.run(shutdown))?;
    }
    let legacy = {
        let mut c = store::connect(&url)?;
        store::partitions::legacy_exists(&mut c)?
    };
    if legacy {
        let (cfg, stats, shutdown) = (config.storage.clone(), Arc::clone(stats), shutdown.clone());
        spawn("upgrade", move || upgrade::run(url, cfg, stats, shutdown))?;
    }
    Ok(())
}

/// `server.name`, else this host's name and the packet port (`HOST:PORT`).
fn server_name(config: &Config, local: SocketAddr) -> String {
    if let Some(name) = config
        .server
        .name
        .as_deref()
        .filter(|n| !n.trim().is_empty())
    {
        return name.trim().to_string();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "netsentinel".into());
    format!("{host}:{}", local.port())
}

/// Binds the packet listener; port 0 gets a free port, read back here.
fn bind_ingest(config: &Config) -> Result<(TcpListener, SocketAddr), ServerError> {
    let (host, port) = (config.server.host.as_str(), config.server.port);
    TcpListener::bind((host, port))
        .and_then(|l| l.local_addr().map(|a| (l, a)))
        .map_err(|source| ServerError::Bind {
            addr: format!("{host}:{port}"),
            key: "server.port",
            flag: "--port",
            host_key: "server.host",
            source,
        })
}

/// Starts the worker on `jobs` and the trainer thread (models stored by others).
fn start_model_threads(
    config: &Config,
    handles: Handles,
    jobs: Receiver<Job>,
    stored_total: u64,
) -> Result<(JoinHandle<bool>, JoinHandle<()>), ServerError> {
    let (pool, cfg, models, shutdown) = (
        handles.pool.clone(),
        config.detector.clone(),
        Arc::clone(&handles.models),
        handles.shutdown.clone(),
    );
    let worker = Worker::new(
        &config.server,
        &config.detector,
        &config.incidents,
        jobs,
        handles,
        stored_total,
    );
    let worker = spawn("worker", move || worker.run())?;
    let trainer = spawn("trainer", move || trainer::run(pool, cfg, models, shutdown))?;
    Ok((worker, trainer))
}

/// Logs where the server listens (tests read these lines) and tells `ready`.
fn announce(
    config: &Config,
    ingest: SocketAddr,
    dashboard: SocketAddr,
    ready: Option<crossbeam_channel::Sender<Listening>>,
) {
    log::info!("NetSentinel server started on {ingest}");
    log::info!("dashboard on http://{dashboard}/");
    if let Some(ready) = ready {
        let _ = ready.send(Listening { ingest, dashboard });
    }
    log::info!(
        "max_clients {}, queue {} packets, batches of up to {} packets or {} ms",
        config.server.max_clients,
        config.server.queue_capacity,
        config.server.batch_max,
        config.server.batch_wait_ms
    );
}

/// Binds the dashboard and starts its thread; returns it and where it listens.
fn start_dashboard(
    config: &Config,
    state: WebState,
    shutdown: &Shutdown,
) -> Result<(JoinHandle<()>, SocketAddr), ServerError> {
    let (host, port) = (config.dashboard.host.as_str(), config.dashboard.port);
    let limits = crate::web::HttpLimits {
        max_connections: config.dashboard.max_connections,
        request_timeout: std::time::Duration::from_secs(config.dashboard.request_timeout_s),
    };
    let server = crate::web::bind(host, port, limits).map_err(|source| {
        shutdown.trigger();
        ServerError::Bind {
            addr: format!("{host}:{port} (dashboard)"),
            key: "dashboard.port",
            flag: "--dashboard-port",
            host_key: "dashboard.host",
            source,
        }
    })?;
    let local = server
        .server_addr()
        .to_ip()
        .map(crate::net::dialable)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], port)));
    let state = Arc::new(state);
    let handle = spawn("dashboard", move || crate::web::serve(server, state))?;
    Ok((handle, local))
}

/// Waits for the worker to drain, then stops the trainer and the dashboard.
fn finish(
    worker: JoinHandle<bool>,
    trainer: JoinHandle<()>,
    web: JoinHandle<()>,
    alerts: Vec<JoinHandle<()>>,
    shutdown: &Shutdown,
    stats: &Stats,
) -> Result<(), ServerError> {
    let complete = worker.join().unwrap_or_else(|_| {
        log::error!("the worker thread panicked");
        false
    });
    stats.commits.close();
    shutdown.trigger();
    // The worker's end of the alert queues is gone: each sink sends what is
    // left (within alerts.shutdown_grace_s if it fails) and ends.
    for a in alerts {
        if a.join().is_err() {
            log::error!("an alert thread panicked");
        }
    }
    if trainer.join().is_err() {
        log::error!("the trainer thread panicked");
    }
    if web.join().is_err() {
        log::error!("the dashboard thread panicked");
    }
    log::info!(
        "NetSentinel server stopped: {} packets stored, {} anomalies",
        Stats::get(&stats.packets_stored),
        Stats::get(&stats.anomalies)
    );
    if complete {
        Ok(())
    } else {
        Err(ServerError::Unstored)
    }
}

fn spawn<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<JoinHandle<T>, ServerError> {
    std::thread::Builder::new()
        .name(what.into())
        .spawn(f)
        .map_err(|source| ServerError::Thread { what, source })
}
