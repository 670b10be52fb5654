//! `netsentinel demo`: the server and three paced clients in one process, over
//! real TCP (the third optionally running an attack scenario), until Ctrl-C; then the clients drain, the server shuts down
//! cleanly, and each client's report is printed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::client::generate::Scenario;
use crate::client::{self, ClientOptions, Mode, Pacing};
use crate::config::Config;
use crate::server::{self, ServerError};
use crate::shutdown::{self, Shutdown};

/// Names of the demo's clients.
pub const CLIENTS: [&str; 3] = ["client1", "client2", "client3"];

/// Why the demo stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The server failed.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// A thread or signal handler could not start.
    #[error("cannot start the demo: {0}")]
    Start(String),
}

/// Runs the demo until Ctrl-C/SIGTERM; with `scenario`, the last client
/// also runs that attack.
pub fn run(
    config: Config,
    rate: f64,
    anomaly_ratio: f64,
    scenario: Option<Scenario>,
) -> Result<(), DemoError> {
    let stop_clients = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop_clients);
        shutdown::on_signals(
            "stopping the demo: clients finish their in-flight packets, then the server shuts down",
            move || stop.store(true, Ordering::SeqCst),
        )
        .map_err(|e| DemoError::Start(e.to_string()))?;
    }
    let server_shutdown = Shutdown::new();
    let (server, listening) = start_server(&config, &server_shutdown)?;
    let addr = crate::net::dialable(listening.ingest).to_string();
    let dashboard = crate::net::dialable(listening.dashboard);

    println!("NetSentinel demo running.");
    println!("  dashboard: http://{dashboard}/");
    println!(
        "  packets: {} clients × {rate} packets/s to {addr}",
        CLIENTS.len()
    );
    println!(
        "  database: {}",
        crate::store::parse_url(&config.database.url)
            .map(|c| crate::store::describe(&c))
            .unwrap_or_default()
    );
    if let Some(s) = scenario {
        println!(
            "  attack: {} also runs the {} scenario (see the Incidents panel)",
            CLIENTS[CLIENTS.len() - 1],
            format!("{s:?}").to_lowercase()
        );
    }
    println!("  Press Ctrl-C to stop.");

    let clients: Vec<_> = CLIENTS
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let opts = ClientOptions {
                name: name.to_string(),
                server: addr.clone(),
                mode: Mode::Continuous,
                pacing: Pacing::Rate(rate),
                anomaly_ratio,
                scenario: scenario.filter(|_| i == CLIENTS.len() - 1),
                attack_share: crate::client::generate::DEFAULT_ATTACK_SHARE,
                seed: i as u64 + 1,
                protocols: config.traffic.protocols.clone(),
                verbose: false,
                progress: false,
                window: client::DEFAULT_WINDOW,
                wait: true,
                json: false,
                token: None,
                tls: None,
            };
            let stop = Arc::clone(&stop_clients);
            std::thread::spawn(move || client::run(&opts, stop))
        })
        .collect();

    let mut reports = Vec::new();
    for handle in clients {
        match handle.join() {
            Ok(Ok(outcome)) => reports.push(outcome.report),
            Ok(Err(e)) => log::error!("a demo client failed: {e}"),
            Err(_) => log::error!("a demo client thread panicked"),
        }
    }
    server_shutdown.trigger();
    let result = match server.join() {
        Ok(r) => r.map_err(DemoError::from),
        Err(_) => Err(DemoError::Start("the server thread panicked".into())),
    };
    for r in &reports {
        print!("{}", r.to_text());
    }
    result
}

type ServerThread = std::thread::JoinHandle<Result<(), ServerError>>;

/// Starts the server on a thread of its own and waits until it listens (or
/// returns its start-up error).
fn start_server(
    config: &Config,
    shutdown: &Shutdown,
) -> Result<(ServerThread, server::Listening), DemoError> {
    let server_config = config.clone();
    let server_shutdown = shutdown.clone();
    let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
    let server = std::thread::Builder::new()
        .name("demo-server".into())
        .spawn(move || {
            let opts = server::RunOptions {
                static_dir: None,
                ready: Some(ready_tx),
            };
            server::run(server_config, server_shutdown, opts)
        })
        .map_err(|e| DemoError::Start(e.to_string()))?;
    match ready_rx.recv_timeout(Duration::from_secs(60)) {
        Ok(listening) => Ok((server, listening)),
        Err(_) => {
            shutdown.trigger();
            match server.join() {
                Ok(Err(e)) => Err(e.into()),
                Ok(Ok(())) => Err(DemoError::Start(
                    "the server stopped before listening".into(),
                )),
                Err(_) => Err(DemoError::Start("the server thread panicked".into())),
            }
        }
    }
}
