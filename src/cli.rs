//! The command line: clap definitions only. `main.rs` acts on them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// NetSentinel: network traffic anomaly detection with an Isolation Forest.
#[derive(Debug, Parser)]
#[command(name = "netsentinel", version, about, long_about = None)]
#[command(
    after_help = "Configuration: --config PATH, else ./netsentinel.toml, else built-in \
defaults; DATABASE_URL and NETSENTINEL_<SECTION>_<KEY> environment variables override the file, \
flags override both. Logging: RUST_LOG=debug (default info).\n\
Exit codes: 0 success, 1 runtime failure, 2 bad usage, config or input file."
)]
pub struct Cli {
    /// Config file (default: ./netsentinel.toml when it exists, else built-in defaults).
    #[arg(long, short = 'c', global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Override one config key, e.g. --set detector.trees=200 (repeatable).
    #[arg(long = "set", global = true, value_name = "SECTION.KEY=VALUE")]
    pub set: Vec<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Measure the detector on a labelled CSV: ROC AUC, average precision,
    /// precision/recall/F1 at the threshold, fit and score time, per seed and mean.
    Eval(EvalArgs),
    /// Run the ingest server: accept senders over TCP, score every packet, store
    /// it in PostgreSQL, answer each sender with its verdict. Stops cleanly on
    /// Ctrl-C/SIGTERM (a second one exits at once).
    Server(ServerArgs),
    /// Train a new model now on the newest stored packets (detector.train_window)
    /// and store it; a running server picks it up within seconds.
    Retrain(DatabaseArgs),
}

/// `--database-url`, shared by the subcommands that use PostgreSQL.
#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL URL [default: database.url, or DATABASE_URL].
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
}

/// `netsentinel server`.
#[derive(Debug, Args)]
#[command(
    after_help = "Wire protocol: docs/PROTOCOL.md. Senders connect to server.host:server.port \
and send one JSON packet per line; each gets {\"seq\",\"id\",\"anomaly\",\"score\"} back once stored."
)]
pub struct ServerArgs {
    /// Address to listen on [default: server.host, 127.0.0.1].
    #[arg(long, value_name = "ADDR")]
    pub host: Option<String>,

    /// TCP port for senders [default: server.port, 9999].
    #[arg(long, short = 'p', value_name = "PORT")]
    pub port: Option<String>,

    /// Connections served at once [default: server.max_clients, 5].
    #[arg(long, value_name = "N")]
    pub max_clients: Option<String>,

    /// Database options.
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// `netsentinel eval`.
#[derive(Debug, Args)]
#[command(
    after_help = "The file is CSV or gzipped CSV (detected from its bytes) with a header \
row. The label column holds 0 (normal) or 1 (anomaly); every other column must be numeric. \
The forest is fitted on all rows (labels unused) and every row is scored.\n\n\
Example: netsentinel eval ../shared/datasets/shuttle.csv --seeds 0,1,2"
)]
pub struct EvalArgs {
    /// The labelled data file (.csv or .csv.gz).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Name of the 0/1 label column.
    #[arg(long, default_value = "label", value_name = "COLUMN")]
    pub label: String,

    /// Trees in the forest [default: detector.trees, 100].
    #[arg(long, value_name = "N")]
    pub trees: Option<String>,

    /// Rows drawn for each tree, ψ [default: detector.sample_size, 256].
    #[arg(long, value_name = "N")]
    pub sample_size: Option<String>,

    /// Expected anomaly share, sets the threshold for precision/recall/F1
    /// [default: detector.contamination, 0.1].
    #[arg(long, value_name = "C")]
    pub contamination: Option<String>,

    /// Seeds to run, comma-separated; one fit and score per seed.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0,1,2,3,4",
        value_name = "LIST"
    )]
    pub seeds: Vec<u64>,

    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}
