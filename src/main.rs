//! The `netsentinel` binary: parses the command line, loads the configuration,
//! runs one subcommand and turns its error into a message and an exit code
//! (0 success, 1 runtime failure, 2 bad usage, config or input).

use std::process::ExitCode;

use clap::Parser;

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use netsentinel::cli::{Cli, ClientArgs, Command, DatabaseArgs, DemoArgs, EvalArgs, ServerArgs};
use netsentinel::client::{self, ClientError, ClientOptions, Mode, Pacing};
use netsentinel::config::{Config, ConfigError};
use netsentinel::eval::{self, EvalError, EvalOptions};
use netsentinel::server::{self, shutdown, ServerError};

/// A failure on its way to the user: what to print and how to exit.
struct Failure {
    code: u8,
    message: String,
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Failure {
            code: 2,
            message: format!("config error: {e}"),
        }
    }
}

impl From<ServerError> for Failure {
    fn from(e: ServerError) -> Self {
        Failure {
            code: 1,
            message: e.to_string(),
        }
    }
}

impl From<EvalError> for Failure {
    fn from(e: EvalError) -> Self {
        Failure {
            code: 2,
            message: e.to_string(),
        }
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("netsentinel: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    let mut config = Config::load(cli.config.as_deref())?;
    for pair in &cli.set {
        config.set_pair(pair)?;
    }
    match cli.command {
        Command::Eval(args) => run_eval(config, args),
        Command::Server(args) => run_server(config, args),
        Command::Retrain(args) => run_retrain(config, args),
        Command::Client(args) => run_client(config, args),
        Command::Demo(args) => run_demo(config, args),
    }
}

/// host:port of the configured server, with a wildcard host made reachable.
fn server_address(config: &Config) -> String {
    let host = match config.server.host.as_str() {
        "0.0.0.0" | "::" | "[::]" => "127.0.0.1",
        h => h,
    };
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{}", config.server.port)
    } else {
        format!("{host}:{}", config.server.port)
    }
}

fn run_client(config: Config, args: ClientArgs) -> Result<(), Failure> {
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("client-{}", std::process::id()));
    if name.trim().is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(Failure {
            code: 2,
            message: format!(
                "client name {name:?} must be 1-64 characters without control characters"
            ),
        });
    }
    let server = args
        .server
        .clone()
        .unwrap_or_else(|| server_address(&config));
    let flag_pacing = match (args.delay, args.rate) {
        (Some(d), _) => Some(Pacing::Delay(Duration::from_secs_f64(d))),
        (None, Some(r)) if r > 0.0 => Some(Pacing::Rate(r)),
        (None, Some(_)) => Some(Pacing::Fastest),
        (None, None) => None,
    };
    let (mode, pacing) = match (&args.pcap, args.count, args.continuous) {
        (Some(file), _, _) => (
            Mode::Pcap {
                file: file.clone(),
                labels: args.labels.clone(),
                speed: args.speed,
            },
            flag_pacing.unwrap_or(Pacing::Fastest),
        ),
        (None, Some(n), _) => (Mode::Count(n), flag_pacing.unwrap_or(Pacing::Fastest)),
        (None, None, true) => (Mode::Continuous, flag_pacing.unwrap_or(Pacing::Rate(20.0))),
        (None, None, false) => {
            if !std::io::stdin().is_terminal() {
                return Err(Failure {
                    code: 2,
                    message: "choose what to send: --count N, --continuous or --pcap FILE \
                              (in a terminal, the client asks)"
                        .into(),
                });
            }
            match client::menu::ask(&name, &server) {
                Ok(Some(choice)) => choice,
                Ok(None) => return Ok(()),
                Err(e) => {
                    return Err(Failure {
                        code: 1,
                        message: format!("cannot read the answer: {e}"),
                    })
                }
            }
        }
    };
    let opts = ClientOptions {
        name,
        server,
        mode,
        pacing,
        anomaly_ratio: args.anomaly_ratio,
        seed: args.seed,
        protocols: config.traffic.protocols.clone(),
        verbose: args.verbose,
        progress: true,
        window: args.window as usize,
    };
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        shutdown::on_signals(move |_, count| {
            if count > 1 {
                std::process::exit(130);
            }
            stop.store(true, Ordering::SeqCst);
        })
        .map_err(|e| Failure {
            code: 1,
            message: format!("cannot install signal handlers: {e}"),
        })?;
    }
    let outcome = client::run(&opts, stop).map_err(|e| Failure {
        code: match e {
            ClientError::Session(_) => 1,
            _ => 2,
        },
        message: e.to_string(),
    })?;
    if args.json {
        let json = serde_json::to_string(&outcome.report).map_err(|e| Failure {
            code: 1,
            message: format!("cannot encode the report: {e}"),
        })?;
        println!("{json}");
    } else {
        print!("{}", outcome.report.to_text());
    }
    if let Some(e) = outcome.input_error {
        return Err(Failure {
            code: 2,
            message: format!("{e} (the packets before it were sent)"),
        });
    }
    if !outcome.report.complete() {
        return Err(Failure {
            code: 1,
            message: format!(
                "{} of {} packets got no verdict",
                outcome.report.sent - outcome.report.acked,
                outcome.report.sent
            ),
        });
    }
    Ok(())
}

fn run_demo(mut config: Config, args: DemoArgs) -> Result<(), Failure> {
    apply_database(&mut config, &args.database)?;
    apply_flags(
        &mut config,
        &[("dashboard.port", &args.dashboard_port, "--dashboard-port")],
    )?;
    netsentinel::demo::run(config, args.rate, args.anomaly_ratio).map_err(|e| Failure {
        code: 1,
        message: e.to_string(),
    })
}

/// Applies `flag` values to config keys; each is validated like the file's.
fn apply_flags(
    config: &mut Config,
    flags: &[(&str, &Option<String>, &str)],
) -> Result<(), Failure> {
    for (key, value, flag) in flags {
        if let Some(v) = value {
            config.set(key, v, flag)?;
        }
    }
    Ok(())
}

fn apply_database(config: &mut Config, args: &DatabaseArgs) -> Result<(), Failure> {
    apply_flags(
        config,
        &[("database.url", &args.database_url, "--database-url")],
    )
}

fn run_server(mut config: Config, args: ServerArgs) -> Result<(), Failure> {
    apply_flags(
        &mut config,
        &[
            ("server.host", &args.host, "--host"),
            ("server.port", &args.port, "--port"),
            ("server.max_clients", &args.max_clients, "--max-clients"),
            ("dashboard.port", &args.dashboard_port, "--dashboard-port"),
        ],
    )?;
    if let Some(dir) = &args.static_dir {
        if !dir.join("index.html").is_file() {
            return Err(Failure {
                code: 2,
                message: format!(
                    "--static-dir {}: no index.html there (use the repo's static/ folder)",
                    dir.display()
                ),
            });
        }
    }
    apply_database(&mut config, &args.database)?;
    let stop = shutdown::Shutdown::new();
    shutdown::install_signal_handlers(stop.clone()).map_err(|e| Failure {
        code: 1,
        message: format!("cannot install signal handlers: {e}"),
    })?;
    server::run(
        config,
        stop,
        server::RunOptions {
            static_dir: args.static_dir,
            ready: None,
        },
    )?;
    Ok(())
}

fn run_retrain(mut config: Config, args: DatabaseArgs) -> Result<(), Failure> {
    apply_database(&mut config, &args)?;
    let runtime = |e: String| Failure {
        code: 1,
        message: e,
    };
    let mut client =
        netsentinel::store::connect(&config.database.url).map_err(|e| runtime(e.to_string()))?;
    let model = server::trainer::train_and_store(&mut client, &config.detector)
        .map_err(|e| runtime(e.to_string()))?;
    println!(
        "model {} trained at {} on {} packets: threshold {:.4} (contamination {})",
        model.info.id,
        model.info.created_at.to_rfc3339(),
        model.info.training_rows,
        model.info.threshold,
        model.info.contamination
    );
    Ok(())
}

fn run_eval(mut config: Config, args: EvalArgs) -> Result<(), Failure> {
    let flags = [
        ("detector.trees", &args.trees, "--trees"),
        ("detector.sample_size", &args.sample_size, "--sample-size"),
        (
            "detector.contamination",
            &args.contamination,
            "--contamination",
        ),
    ];
    for (key, value, flag) in flags {
        if let Some(v) = value {
            config.set(key, v, flag)?;
        }
    }
    let opts = EvalOptions {
        trees: config.detector.trees,
        sample_size: config.detector.sample_size,
        contamination: config.detector.contamination,
        seeds: args.seeds,
    };
    log::info!("reading {}", args.file.display());
    let data = eval::dataset::load(&args.file, &args.label).map_err(EvalError::from)?;
    log::info!(
        "{} rows, {} features; {} trees, sample size {}, seeds {:?}",
        data.labels.len(),
        data.feature_names.len(),
        opts.trees,
        opts.sample_size,
        opts.seeds
    );
    let report = eval::evaluate(&data, &opts)?;
    if args.json {
        let json = serde_json::to_string(&report).map_err(|e| Failure {
            code: 1,
            message: format!("cannot encode the report as JSON: {e}"),
        })?;
        println!("{json}");
    } else {
        print!("{}", eval::render_text(&report, opts.contamination));
    }
    Ok(())
}
