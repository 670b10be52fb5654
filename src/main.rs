//! The `netsentinel` binary: parses the command line, loads the configuration,
//! runs one subcommand and turns its error into a message and an exit code
//! (0 success, 1 runtime failure, 2 bad usage, config or input).

use std::process::ExitCode;

use clap::Parser;

use netsentinel::cli::{Cli, Command, EvalArgs};
use netsentinel::config::{Config, ConfigError};
use netsentinel::eval::{self, EvalError, EvalOptions};

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
    }
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
