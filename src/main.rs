//! The `netsentinel` binary: parses the command line, loads and validates the
//! configuration, runs one subcommand, and maps its error to a message and an
//! exit code in one place ([`Failure::exit_code`]): 0 success, 1 runtime
//! failure, 2 bad usage, configuration or input file.

use std::process::ExitCode;

use clap::Parser;

use netsentinel::cli::{
    Cli, Command, ConfigArgs, EvalArgs, EvalPcapArgs, SenderAction, SenderArgs, ServerArgs,
    SuppressAction, SuppressArgs,
};
use netsentinel::client::{self, ClientError, ClientOptions};
use netsentinel::config::{self, Config, ConfigError};
use netsentinel::demo::{self, DemoError};
use netsentinel::eval::{self, EvalError, EvalOptions};
use netsentinel::server::{self, ServerError};
use netsentinel::shutdown::{self, Shutdown};
use netsentinel::store::StoreError;
use netsentinel::trainer::{self, TrainError};

/// Every way a subcommand fails.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("config error: {0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error(transparent)]
    Eval(#[from] EvalError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Demo(#[from] DemoError),
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error("{0}")]
    Usage(String),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

impl Failure {
    /// 1 for what went wrong while running, 2 for what the user must fix first.
    fn exit_code(&self) -> u8 {
        match self {
            Failure::Config(_) | Failure::Eval(_) | Failure::Usage(_) => 2,
            Failure::Client(
                ClientError::Usage(_)
                | ClientError::Input(_)
                | ClientError::Labels(_)
                | ClientError::InputAfterSending(_),
            ) => 2,
            Failure::Client(ClientError::Capture(e)) if e.is_usage() => 2,
            // A database.url that does not parse is a configuration error.
            Failure::Server(ServerError::Store(StoreError::BadUrl { .. }))
            | Failure::Demo(DemoError::Server(ServerError::Store(StoreError::BadUrl { .. })))
            | Failure::Train(TrainError::Store(StoreError::BadUrl { .. })) => 2,
            // An alert sink that cannot be set up is a configuration error too.
            Failure::Server(ServerError::Alerts(e))
            | Failure::Demo(DemoError::Server(ServerError::Alerts(e)))
                if !matches!(e, netsentinel::alerts::AlertError::Thread { .. }) =>
            {
                2
            }
            Failure::Client(_)
            | Failure::Server(_)
            | Failure::Demo(_)
            | Failure::Train(_)
            | Failure::Signals(_) => 1,
        }
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("netsentinel: {f}");
            ExitCode::from(f.exit_code())
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    let mut config = Config::load(cli.config.as_deref())?;
    for pair in &cli.set {
        config.set_pair(pair)?;
    }
    for (key, value, flag) in cli.command.config_overrides() {
        config.set(key, value, flag)?;
    }
    config.validate()?;
    match cli.command {
        Command::Eval(args) => run_eval(&config, args),
        Command::EvalPcap(args) => run_eval_pcap(&config, args),
        Command::Server(args) => run_server(config, args),
        Command::Retrain(_) => run_retrain(&config),
        Command::Client(args) => match ClientOptions::from_args(&config, &args)? {
            Some(opts) => Ok(client::run_and_report(&opts, args.json)?),
            None => Ok(()),
        },
        Command::Demo(args) => Ok(demo::run(
            config,
            args.rate,
            args.anomaly_ratio,
            args.scenario,
        )?),
        Command::Config(args) => run_config(&config, args),
        Command::Sender(args) => run_sender(&config, args),
        Command::Suppress(args) => run_suppress(&config, args),
    }
}

fn run_server(config: Config, args: ServerArgs) -> Result<(), Failure> {
    if let Some(dir) = &args.static_dir {
        if !dir.join("index.html").is_file() {
            return Err(Failure::Usage(format!(
                "--static-dir {}: no index.html there (use the repo's static/ folder)",
                dir.display()
            )));
        }
    }
    let stop = Shutdown::new();
    shutdown::trigger_on_signals(stop.clone()).map_err(Failure::Signals)?;
    let opts = server::RunOptions {
        static_dir: args.static_dir,
        ready: None,
    };
    Ok(server::run(config, stop, opts)?)
}

fn run_retrain(config: &Config) -> Result<(), Failure> {
    let model = trainer::retrain_stored(&config.database.url, &config.detector)?;
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

fn run_suppress(config: &Config, args: SuppressArgs) -> Result<(), Failure> {
    use netsentinel::incidents::rules;
    use netsentinel::store::suppressions;
    let mut c = netsentinel::store::connect(&config.database.url).map_err(ServerError::from)?;
    match args.action {
        SuppressAction::Add {
            source,
            destination,
            port,
            protocol,
            sender,
            until,
            note,
        } => {
            let fields = rules::RuleFields {
                source,
                destination,
                port,
                protocol,
                sender,
                until,
                note,
            };
            let rule = rules::check(&fields, chrono::Utc::now())
                .map_err(|(field, message)| Failure::Usage(format!("--{field}: {message}")))?;
            let row = suppressions::create(&mut c, &rule, "cli").map_err(ServerError::from)?;
            println!("{}", row.id);
            eprintln!(
                "suppression rule {} added{}; it suppressed {} open or acknowledged incident(s) now",
                row.id,
                row.until
                    .map(|u| format!(" until {}", u.to_rfc3339()))
                    .unwrap_or_default(),
                row.suppressed
            );
            Ok(())
        }
        SuppressAction::List => {
            let all = suppressions::list(&mut c).map_err(ServerError::from)?;
            if all.is_empty() {
                eprintln!("no suppression rule: every incident is sent to the alert sinks");
            }
            println!(
                "id\tsource\tdestination\tport\tprotocol\tsender\tuntil\tactive\tsuppressed\tnote"
            );
            let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
            for r in all {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    r.id,
                    dash(r.source),
                    dash(r.destination),
                    dash(r.port.map(|p| p.to_string())),
                    dash(r.protocol),
                    dash(r.sender),
                    dash(r.until.map(|u| u.to_rfc3339())),
                    if r.active { "yes" } else { "expired" },
                    r.suppressed,
                    r.note.replace(['\t', '\n'], " ")
                );
            }
            Ok(())
        }
        SuppressAction::Remove { id } => {
            if suppressions::delete(&mut c, id).map_err(ServerError::from)? {
                eprintln!(
                    "suppression rule {id} removed; the incidents it suppressed stay suppressed"
                );
                Ok(())
            } else {
                Err(Failure::Usage(format!(
                    "no suppression rule with id {id}; see `netsentinel suppress list`"
                )))
            }
        }
    }
}

fn run_sender(config: &Config, args: SenderArgs) -> Result<(), Failure> {
    use netsentinel::store::senders;
    let mut c = netsentinel::store::connect(&config.database.url).map_err(ServerError::from)?;
    match args.action {
        SenderAction::Add { name } => {
            let valid = !name.trim().is_empty()
                && name.chars().count() <= netsentinel::protocol::MAX_CLIENT_NAME_CHARS
                && !name.chars().any(char::is_control);
            if !valid {
                return Err(Failure::Usage(format!(
                    "sender name {name:?} must be 1-{} characters without control characters",
                    netsentinel::protocol::MAX_CLIENT_NAME_CHARS
                )));
            }
            match senders::add(&mut c, &name).map_err(ServerError::from)? {
                Some(token) => {
                    println!("{token}");
                    eprintln!(
                        "sender {name:?} registered; its token is above (shown once: only its \
                         SHA-256 is kept). Send with: netsentinel client {name} --token TOKEN \
                         (or NETSENTINEL_TOKEN=TOKEN). From now on the server admits registered \
                         senders only."
                    );
                    Ok(())
                }
                None => Err(Failure::Usage(format!(
                    "sender {name:?} is registered already; `netsentinel sender remove {name}` \
                     first to give it a new token"
                ))),
            }
        }
        SenderAction::Remove { name } => {
            if senders::remove(&mut c, &name).map_err(ServerError::from)? {
                eprintln!("sender {name:?} removed: its token no longer works");
                Ok(())
            } else {
                Err(Failure::Usage(format!("sender {name:?} is not registered")))
            }
        }
        SenderAction::List => {
            let all = senders::list(&mut c).map_err(ServerError::from)?;
            if all.is_empty() {
                eprintln!("no sender is registered: the server admits any name");
            }
            for (name, created) in all {
                println!("{name}\t{}", created.to_rfc3339());
            }
            Ok(())
        }
    }
}

fn run_eval(config: &Config, args: EvalArgs) -> Result<(), Failure> {
    let opts = EvalOptions::new(&config.detector, args.seeds);
    let report = eval::run_file(&args.file, &args.label, &opts)?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", eval::render_text(&report, opts.contamination));
    }
    Ok(())
}

fn run_eval_pcap(config: &Config, args: EvalPcapArgs) -> Result<(), Failure> {
    use netsentinel::eval::capture::{self, CaptureInput};
    if args.labels.len() > args.captures.len() {
        return Err(EvalError::TooManyLabels {
            labels: args.labels.len(),
            captures: args.captures.len(),
        }
        .into());
    }
    let warmup = match &args.train {
        Some(path) => capture::load_unlabelled(path)?,
        None => Vec::new(),
    };
    let mut reports = Vec::with_capacity(args.captures.len());
    for (i, file) in args.captures.iter().enumerate() {
        let labels = match args.labels.get(i) {
            Some(l) => l.clone(),
            None => {
                capture::default_labels(file).ok_or_else(|| EvalError::NoLabels(file.clone()))?
            }
        };
        log::info!("judging {} (labels {})", file.display(), labels.display());
        let input = CaptureInput {
            capture: file.clone(),
            labels,
        };
        reports.push(capture::evaluate(&input, &warmup, &config.detector)?);
    }
    if args.json {
        let doc = serde_json::json!({ "detector": {
            "half_lives": config.detector.half_lives,
            "contamination": config.detector.contamination,
            "min_train_packets": config.detector.min_train_packets,
        }, "captures": reports });
        println!("{doc:#}");
    } else {
        print!("{}", capture::render_text(&reports, &config.detector));
    }
    Ok(())
}

fn run_config(config: &Config, args: ConfigArgs) -> Result<(), Failure> {
    let text = if args.defaults {
        config::document::render(&Config::default(), false)
    } else {
        config::document::render(config, !args.show_secrets)
    };
    print!("{text}");
    Ok(())
}
