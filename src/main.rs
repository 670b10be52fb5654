//! The `netsentinel` binary: parses the command line, loads the configuration,
//! runs one subcommand and turns its error into a message and an exit code
//! (0 success, 1 runtime failure, 2 bad usage, config or input).

use std::process::ExitCode;

use clap::Parser;

use netsentinel::cli::{Cli, Command, DatabaseArgs, EvalArgs, ServerArgs};
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
    }
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
        ],
    )?;
    apply_database(&mut config, &args.database)?;
    let stop = shutdown::Shutdown::new();
    shutdown::install_signal_handlers(stop.clone()).map_err(|e| Failure {
        code: 1,
        message: format!("cannot install signal handlers: {e}"),
    })?;
    server::run(config, stop)?;
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
