//! `netsentinel server`: wires the threads together and runs them until shutdown.
//!
//! Threads: the accept loop (this thread); one thread per accepted connection,
//! at most `server.max_clients` served at once ([`slots`]), the rest waiting
//! first come, first served; ONE worker ([`worker`]) fed by ONE bounded FIFO
//! that every connection pushes into; the trainer ([`trainer`]); the signal
//! handler ([`shutdown`]).
//!
//! Shutdown order: stop accepting → connections stop reading at a line
//! boundary and wait for their verdicts → the worker drains the FIFO, commits,
//! answers → the last connection hangs up, the FIFO disconnects, the worker
//! ends → exit 0.

pub mod connection;
pub mod shutdown;
pub mod slots;
pub mod stats;
pub mod trainer;
pub mod worker;

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::protocol::{self, ErrorLine};
use crate::store::{self, Pool, StoreError};

use connection::ConnContext;
use shutdown::Shutdown;
use slots::{Entry, Slots, WaitError};
use stats::Stats;
use trainer::ModelSlot;
use worker::Worker;

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The database is unreachable or broken at start.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The listening socket could not be opened.
    #[error(
        "cannot listen on {addr}: {source}. Is another server running there? Choose another \
             server.port (--port) or server.host"
    )]
    Bind {
        /// host:port.
        addr: String,
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
    /// Packets were left unstored because the database stayed down through shutdown.
    #[error("shut down with packets unstored (database unavailable); their senders got no verdict and must resend")]
    Unstored,
}

/// Everything the threads share.
pub struct Shared {
    /// Configuration.
    pub config: Config,
    /// Database pool.
    pub pool: Pool,
    /// The model in use.
    pub models: Arc<ModelSlot>,
    /// Counters.
    pub stats: Arc<Stats>,
    /// Connection slots.
    pub slots: Arc<Slots>,
    /// Shutdown flag.
    pub shutdown: Shutdown,
    /// Depth of the FIFO, read through a clone of its receiver.
    pub queue: crossbeam_channel::Receiver<worker::Job>,
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

/// Runs the server until SIGINT/SIGTERM (or `shutdown` is triggered).
pub fn run(config: Config, shutdown: Shutdown, opts: RunOptions) -> Result<(), ServerError> {
    log::info!(
        "connecting to PostgreSQL at {}",
        store::parse_url(&config.database.url)
            .map(|c| store::describe(&c))
            .unwrap_or_else(|_| "(bad URL)".into())
    );
    let pool = store::open_pool(&config.database.url, config.database.pool_size)?;
    let addr = format!("{}:{}", config.server.host, config.server.port);
    let listener = TcpListener::bind(&addr).map_err(|source| ServerError::Bind {
        addr: addr.clone(),
        source,
    })?;
    let local = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: addr.clone(),
        source,
    })?;

    let models = Arc::new(ModelSlot::default());
    let stored_total = {
        let mut c = pool.get().map_err(StoreError::from)?;
        if let Some(model) = trainer::load_newest(&mut *c)? {
            models.publish(model);
        }
        store::models::stored_packets(&mut *c)?.max(0) as u64
    };

    let (jobs_tx, jobs_rx) = crossbeam_channel::bounded(config.server.queue_capacity);
    let (train_tx, train_rx) = crossbeam_channel::bounded(1);
    let stats = Arc::new(Stats::default());
    let shared = Arc::new(Shared {
        config: config.clone(),
        pool: pool.clone(),
        models: Arc::clone(&models),
        stats: Arc::clone(&stats),
        slots: Slots::new(config.server.max_clients),
        shutdown: shutdown.clone(),
        queue: jobs_rx.clone(),
    });

    let worker = Worker::new(
        config.clone(),
        jobs_rx,
        pool.clone(),
        Arc::clone(&models),
        Arc::clone(&stats),
        train_tx,
        shutdown.clone(),
        stored_total,
    );
    let worker = spawn("worker", move || worker.run())?;
    let trainer = {
        let (pool, cfg, models, shutdown) = (
            pool.clone(),
            config.detector.clone(),
            Arc::clone(&models),
            shutdown.clone(),
        );
        spawn("trainer", move || {
            trainer::run(pool, cfg, models, train_rx, shutdown)
        })?
    };

    // Wake the blocking accept() when shutdown begins.
    {
        let wake_addr = wake_address(local);
        let slots = Arc::clone(&shared.slots);
        shutdown.on_trigger(move || {
            slots.wake_all();
            let _ = TcpStream::connect_timeout(&wake_addr, Duration::from_secs(1));
        });
    }

    let dashboard_addr = format!("{}:{}", config.dashboard.host, config.dashboard.port);
    let dashboard =
        crate::web::bind(&config.dashboard.host, config.dashboard.port).map_err(|e| {
            shutdown.trigger();
            ServerError::Bind {
                addr: format!("{dashboard_addr} (dashboard)"),
                source: std::io::Error::other(e),
            }
        })?;
    let dashboard_local = dashboard
        .server_addr()
        .to_ip()
        .unwrap_or_else(|| wake_address(local));
    let web_state = Arc::new(crate::web::api::WebState::new(
        Arc::clone(&shared),
        opts.static_dir,
    ));
    let web = spawn("dashboard", move || crate::web::serve(dashboard, web_state))?;

    log::info!("NetSentinel server started on {local}");
    log::info!("dashboard on http://{dashboard_local}/");
    if let Some(ready) = opts.ready {
        let _ = ready.send(Listening {
            ingest: local,
            dashboard: dashboard_local,
        });
    }
    log::info!(
        "max_clients {}, queue {} packets, batches of up to {} packets or {} ms",
        config.server.max_clients,
        config.server.queue_capacity,
        config.server.batch_max,
        config.server.batch_wait_ms
    );
    accept_loop(&listener, &shared, jobs_tx);
    log::info!("stopped accepting; draining the queue");

    let complete = worker.join().unwrap_or_else(|_| {
        log::error!("the worker thread panicked");
        false
    });
    shutdown.trigger();
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

/// Where to connect to wake our own accept(): an unspecified bind address is
/// reachable on loopback.
fn wake_address(local: SocketAddr) -> SocketAddr {
    let mut addr = local;
    if addr.ip().is_unspecified() {
        addr.set_ip(match local {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}

fn spawn<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<std::thread::JoinHandle<T>, ServerError> {
    std::thread::Builder::new()
        .name(what.into())
        .spawn(f)
        .map_err(|source| ServerError::Thread { what, source })
}

/// Accepts connections until shutdown; each gets a thread that waits for a
/// slot (telling the client its place in line) and then serves it.
fn accept_loop(
    listener: &TcpListener,
    shared: &Arc<Shared>,
    jobs: crossbeam_channel::Sender<worker::Job>,
) {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    let cfg = &shared.config.server;
    let ctx = Arc::new(ConnContext {
        jobs,
        shutdown: shared.shutdown.clone(),
        max_clients: cfg.max_clients,
        idle_timeout: Duration::from_secs(cfg.idle_timeout_s),
    });
    loop {
        let accepted = listener.accept();
        if shared.shutdown.is_triggered() {
            return;
        }
        let (mut stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: pause instead of spinning.
                log::warn!("accept failed: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        Stats::add(&shared.stats.connections_accepted, 1);
        let entry = shared.slots.enter(cfg.max_waiting);
        if let Entry::Full = entry {
            log::warn!(
                "connection {id} from {peer} refused: {} already waiting",
                cfg.max_waiting
            );
            refuse(
                &mut stream,
                &format!(
                    "server busy: {} clients served and {} waiting (server.max_waiting); try again later",
                    cfg.max_clients, cfg.max_waiting
                ),
            );
            continue;
        }
        let (ctx, shared2) = (Arc::clone(&ctx), Arc::clone(shared));
        let spawned = std::thread::Builder::new()
            .name(format!("conn-{id}"))
            .spawn(move || {
                let queue_timeout = Duration::from_secs(shared2.config.server.queue_timeout_s);
                let _permit = match entry {
                    Entry::Served(p) => p,
                    Entry::Waiting(ticket) => {
                        log::info!("connection {id} from {peer} waits for a slot, position {}", ticket.position);
                        let line = protocol::queued(ticket.position, ctx.max_clients);
                        if stream.write_all(format!("{line}\n").as_bytes()).is_err() {
                            return;
                        }
                        match ticket.wait(queue_timeout, &shared2.shutdown) {
                            Ok(p) => p,
                            Err(WaitError::TimedOut) => {
                                refuse(
                                    &mut stream,
                                    &format!(
                                        "waited {} s for a free slot (server.queue_timeout_s); try again later",
                                        queue_timeout.as_secs()
                                    ),
                                );
                                return;
                            }
                            Err(WaitError::ShuttingDown) => {
                                refuse(&mut stream, "server shutting down");
                                return;
                            }
                        }
                    }
                    Entry::Full => unreachable!("refused above"),
                };
                log::info!("connection {id} from {peer} served");
                connection::serve(stream, peer, id, &ctx);
            });
        if let Err(e) = spawned {
            log::error!("cannot start a thread for connection {id} from {peer}: {e}");
        }
    }
}

/// Sends one closing error line and hangs up.
fn refuse(stream: &mut TcpStream, error: &str) {
    let mut out = Vec::new();
    protocol::write_line(
        &mut out,
        &ErrorLine {
            line: 0,
            seq: None,
            error: error.to_string(),
            closing: true,
        },
    );
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = stream.write_all(&out);
    let _ = stream.shutdown(std::net::Shutdown::Both);
}
