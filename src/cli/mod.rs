//! The command line: clap definitions, which flags stand for which config
//! keys ([`Command::config_overrides`]), and `client`'s flags turned into
//! [`crate::client::ClientOptions`]. `main.rs` acts on them.

mod client;

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
    /// Judge labelled captures offline as the server would (context features,
    /// training schedule, scoring; no database): per capture, packets, ROC AUC,
    /// average precision and precision/recall/F1 at the threshold, with the
    /// context features and with the per-packet features alone.
    EvalPcap(EvalPcapArgs),
    /// Run the ingest server: accept senders over TCP, score every packet, store
    /// it in PostgreSQL, answer each sender with its verdict. Stops cleanly on
    /// Ctrl-C/SIGTERM (a second one exits at once).
    Server(ServerArgs),
    /// Train a new model now on the newest stored packets (detector.train_window)
    /// and store it; a running server picks it up within seconds.
    Retrain(DatabaseArgs),
    /// Send traffic to the server: generated (with injected anomalies) or a
    /// replayed capture; report verdicts, precision/recall and latency at the end.
    Client(Box<ClientArgs>),
    /// The one-command tour: a server and three paced clients (client1..client3)
    /// over real TCP until Ctrl-C.
    Demo(DemoArgs),
    /// Print the configuration in effect (file, environment and flags applied)
    /// as a documented TOML file; --defaults prints the built-in defaults.
    Config(ConfigArgs),
    /// Register senders: once any is registered, the server admits only
    /// registered names with their token (`add` prints a new token once; only
    /// its SHA-256 is stored).
    Sender(SenderArgs),
    /// Suppression rules ("this is normal"): an incident a rule matches is
    /// stored as suppressed, counted and listed but sent to no alert sink.
    Suppress(SuppressArgs),
}

/// `netsentinel suppress`.
#[derive(Debug, Args)]
pub struct SuppressArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: SuppressAction,
    /// PostgreSQL URL [default: database.url, or DATABASE_URL].
    #[arg(long, value_name = "URL", global = true)]
    pub database_url: Option<String>,
}

/// `netsentinel suppress add|list|remove`.
#[derive(Debug, Subcommand)]
pub enum SuppressAction {
    /// Add a rule; every field given must match the packet that opened an
    /// incident. Open and acknowledged incidents it matches are suppressed now.
    #[command(
        after_help = "Examples:\n  netsentinel suppress add --source 10.0.0.2 --protocol UDP --note 'our DNS server'\n  \
                            netsentinel suppress add --destination 10.0.1.0/24 --port 22 --until 7d\n  \
                            netsentinel suppress add --sender lab-sensor --until 2026-12-31T00:00:00Z"
    )]
    Add {
        /// Client side of the conversation (the host of a `source`
        /// incident): an address or network, e.g. 10.0.3.66 or 10.0.0.0/8.
        #[arg(long, value_name = "CIDR")]
        source: Option<String>,
        /// Server side (the host of a `target` incident): an address or network.
        #[arg(long, value_name = "CIDR")]
        destination: Option<String>,
        /// Server-side port.
        #[arg(long, value_name = "PORT")]
        port: Option<i64>,
        /// Protocol (TCP, UDP, ICMP, HTTP, …).
        #[arg(long, value_name = "NAME")]
        protocol: Option<String>,
        /// Sender name (one of the incident's senders).
        #[arg(long, value_name = "NAME")]
        sender: Option<String>,
        /// Stop applying then: an RFC 3339 time or a duration (30m, 12h, 7d).
        #[arg(long, value_name = "WHEN")]
        until: Option<String>,
        /// Why (shown with the rule).
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
    },
    /// List the rules, newest first, with how many incidents each suppressed.
    List,
    /// Delete rule ID (the incidents it suppressed stay suppressed).
    Remove {
        /// The rule's id, from `netsentinel suppress list`.
        id: i64,
    },
}

/// `netsentinel sender`.
#[derive(Debug, Args)]
pub struct SenderArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: SenderAction,
    /// PostgreSQL URL [default: database.url, or DATABASE_URL].
    #[arg(long, value_name = "URL", global = true)]
    pub database_url: Option<String>,
}

/// `netsentinel sender add|remove|list`.
#[derive(Debug, Subcommand)]
pub enum SenderAction {
    /// Register NAME and print its token (shown this once; give it to the
    /// sender: `netsentinel client NAME --token TOKEN`).
    Add {
        /// The sender name (1-64 characters, no control characters).
        name: String,
    },
    /// Forget NAME's token: it can no longer send (while others are registered).
    Remove {
        /// The sender name.
        name: String,
    },
    /// List the registered senders.
    List,
}

impl Command {
    /// The flags of this subcommand that set config keys, as (key, value,
    /// flag): applied after `--set` and validated like any other source.
    pub fn config_overrides(&self) -> Vec<(&'static str, &String, &'static str)> {
        let flags: Vec<Override<'_>> = match self {
            Command::Server(a) => vec![
                ("server.host", a.host.as_ref(), "--host"),
                ("server.port", a.port.as_ref(), "--port"),
                (
                    "server.max_clients",
                    a.max_clients.as_ref(),
                    "--max-clients",
                ),
                dashboard_flag(&a.dashboard_port),
                database_flag(&a.database),
            ],
            Command::Demo(a) => vec![
                dashboard_flag(&a.dashboard_port),
                database_flag(&a.database),
            ],
            Command::Retrain(a) => vec![database_flag(a)],
            Command::Eval(a) => vec![
                ("detector.trees", a.trees.as_ref(), "--trees"),
                (
                    "detector.sample_size",
                    a.sample_size.as_ref(),
                    "--sample-size",
                ),
                (
                    "detector.contamination",
                    a.contamination.as_ref(),
                    "--contamination",
                ),
            ],
            Command::Sender(a) => vec![("database.url", a.database_url.as_ref(), "--database-url")],
            Command::Suppress(a) => {
                vec![("database.url", a.database_url.as_ref(), "--database-url")]
            }
            Command::Client(_) | Command::Config(_) | Command::EvalPcap(_) => vec![],
        };
        flags
            .into_iter()
            .filter_map(|(key, value, flag)| value.map(|v| (key, v, flag)))
            .collect()
    }
}

/// A (key, value, flag) override.
type Override<'a> = (&'static str, Option<&'a String>, &'static str);

fn database_flag(d: &DatabaseArgs) -> Override<'_> {
    ("database.url", d.database_url.as_ref(), "--database-url")
}

fn dashboard_flag(port: &Option<String>) -> Override<'_> {
    ("dashboard.port", port.as_ref(), "--dashboard-port")
}

/// `netsentinel config`.
#[derive(Debug, Args)]
#[command(
    after_help = "Without --defaults, secrets (dashboard.token, a password in database.url) are \
shown as placeholders unless --show-secrets is given.\n\nExample: netsentinel config --defaults > netsentinel.toml"
)]
pub struct ConfigArgs {
    /// Print the built-in defaults instead of the configuration in effect.
    #[arg(long)]
    pub defaults: bool,

    /// Print secrets as they are instead of placeholders.
    #[arg(long, conflicts_with = "defaults")]
    pub show_secrets: bool,
}

/// `netsentinel client`.
#[derive(Debug, Args)]
#[command(
    after_help = "With no --count, --continuous, --pcap or --interface and a terminal on stdin, \
the client asks what to do. It reconnects with backoff after a dropped connection and resends every \
packet without a verdict (the server stores each once). Exit code 0 when every packet got a verdict, \
1 otherwise, 2 for bad input.\n\nLive capture (--interface) needs root or, once: sudo setcap \
cap_net_raw,cap_net_admin=eip $(command -v netsentinel). It runs until Ctrl-C, --count frames or \
--duration; the client's own connection to the server is always left out of the capture. When the \
server is slower than the interface, up to --capture-buffer records wait; beyond that frames are \
counted as dropped (never silently), like the kernel's and the interface's drops libpcap reports.\
\n\nExamples:\n  netsentinel client c1 --count 20000 --rate 0 --json\n  \
netsentinel client sensor --continuous --rate 50 -v\n  netsentinel client replay --pcap capture.pcapng \
--labels labels.csv --speed 10\n  netsentinel client --list-interfaces\n  \
sudo netsentinel client edge --interface eth0 --filter 'tcp or udp' --capture-file edge.pcap"
)]
pub struct ClientArgs {
    /// Sender name shown on the dashboard [default: client-PID].
    #[arg(value_name = "NAME")]
    pub name: Option<String>,

    /// Server to send to, HOST:PORT [default: server.host:server.port].
    #[arg(long, value_name = "HOST:PORT")]
    pub server: Option<String>,

    /// Send this many generated packets, then report (with --interface: stop
    /// after capturing this many frames).
    #[arg(long, value_name = "N", conflicts_with_all = ["continuous", "pcap"])]
    pub count: Option<u64>,

    /// Send generated packets until Ctrl-C, then report.
    #[arg(long, conflicts_with_all = ["pcap", "interface"])]
    pub continuous: bool,

    /// Replay a capture (pcap or pcapng: Ethernet or Linux cooked, IPv4/IPv6).
    #[arg(long, value_name = "FILE", conflicts_with = "interface")]
    pub pcap: Option<std::path::PathBuf>,

    /// Capture live from this interface (libpcap; `any` for all) and send what it sees.
    #[arg(long, short = 'i', value_name = "IFACE", conflicts_with_all = ["rate", "delay"])]
    pub interface: Option<String>,

    /// With --interface: a BPF filter in tcpdump's syntax, e.g. "tcp or udp".
    #[arg(long, value_name = "BPF", requires = "interface")]
    pub filter: Option<String>,

    /// With --interface: bytes kept of each frame [default: 256, the headers;
    /// 65535 with --capture-file]. Past 2048 the kernel packs frames by size
    /// (no drops on bursts) and hands them over within 100 ms.
    #[arg(long, value_name = "BYTES", requires = "interface", value_parser = clap::value_parser!(i32).range(64..=262_144))]
    pub snaplen: Option<i32>,

    /// With --interface: put the interface in promiscuous mode (see traffic not addressed to it).
    #[arg(long, requires = "interface")]
    pub promisc: bool,

    /// With --interface: stop after this many seconds.
    #[arg(long, value_name = "SECONDS", requires = "interface", value_parser = positive_f64)]
    pub duration: Option<f64>,

    /// With --interface: records waiting for the server at most; more are counted as dropped.
    #[arg(long, value_name = "N", requires = "interface", default_value_t = crate::capture::live::DEFAULT_BUFFER, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub capture_buffer: u64,

    /// With --interface: also write every captured frame to this pcap file (for
    /// Wireshark), rotating to NAME.1.pcap, NAME.2.pcap, … at --capture-file-size.
    #[arg(long, value_name = "FILE", requires = "interface")]
    pub capture_file: Option<std::path::PathBuf>,

    /// With --capture-file: size in MB at which the file rotates.
    #[arg(long, value_name = "MB", requires = "capture_file", default_value_t = crate::capture::live::DEFAULT_ROTATE_MB, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub capture_file_size: u64,

    /// Print the interfaces that can be captured, then exit.
    #[arg(long, exclusive = true)]
    pub list_interfaces: bool,

    /// With --pcap: one 0/1 per frame of the capture (1 = anomaly), to score the detector.
    #[arg(long, value_name = "FILE.csv", requires = "pcap")]
    pub labels: Option<std::path::PathBuf>,

    /// With --pcap: replay at X times the captured pacing [default: as fast as possible].
    #[arg(long, value_name = "X", requires = "pcap", value_parser = positive_f64)]
    pub speed: Option<f64>,

    /// Seconds between packets (the seed's pacing, e.g. 1).
    #[arg(long, value_name = "SECONDS", conflicts_with = "rate", value_parser = non_negative_f64)]
    pub delay: Option<f64>,

    /// Packets per second; 0 = as fast as possible [default: 0, or 20 with --continuous].
    #[arg(long, value_name = "PACKETS_PER_S", value_parser = non_negative_f64)]
    pub rate: Option<f64>,

    /// Share of generated packets that are injected size anomalies (giants and runts).
    #[arg(long, value_name = "R", default_value_t = 0.1, value_parser = ratio)]
    pub anomaly_ratio: f64,

    /// Inject a behavioural attack beside the generated traffic (labelled, counted
    /// by kind in the report).
    #[arg(long, value_enum, value_name = "KIND", conflicts_with_all = ["pcap", "interface"])]
    pub scenario: Option<crate::client::generate::Scenario>,

    /// With --scenario: share of the packets the attack aims at.
    #[arg(long, value_name = "R", default_value_t = crate::client::generate::DEFAULT_ATTACK_SHARE, value_parser = attack_share, requires = "scenario")]
    pub attack_share: f64,

    /// Seed of the traffic generator.
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,

    /// Print the final report as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,

    /// Print every flagged packet as its verdict arrives (to stdout, or to
    /// stderr with --json).
    #[arg(long, short = 'v')]
    pub verbose: bool,

    /// Keep trying to reach the server (and to get a slot) for 60 s instead
    /// of 2 s: for starting the client before the server.
    #[arg(long)]
    pub wait: bool,

    /// This sender's token, from `netsentinel sender add NAME` (needed once
    /// the server has registered senders).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "NETSENTINEL_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,

    /// Connect with TLS, trusting the CA certificate(s) in this PEM file (for a
    /// server with server.tls_cert signed by your own CA).
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<std::path::PathBuf>,

    /// Connect with TLS, trusting the system's root certificates.
    #[arg(long, conflicts_with = "tls_ca")]
    pub tls: bool,

    /// Packets in flight (sent without a verdict yet) at most.
    #[arg(long, value_name = "N", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub window: u64,
}

/// `netsentinel demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Packets per second each of the three clients sends.
    #[arg(long, value_name = "PACKETS_PER_S", default_value_t = 5.0, value_parser = positive_f64)]
    pub rate: f64,

    /// Share of injected anomalies.
    #[arg(long, value_name = "R", default_value_t = 0.1, value_parser = ratio)]
    pub anomaly_ratio: f64,

    /// The third client also runs this behavioural attack (e.g. `mixed`: a
    /// port scan, a sweep, a SYN flood, SSH brute force and a beacon), so the
    /// Incidents panel has something to show.
    #[arg(long, value_enum, value_name = "KIND")]
    pub scenario: Option<crate::client::generate::Scenario>,

    /// Dashboard port [default: dashboard.port, 5000].
    #[arg(long, value_name = "PORT")]
    pub dashboard_port: Option<String>,

    /// Database options.
    #[command(flatten)]
    pub database: DatabaseArgs,
}

fn parse_f64(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("{s:?} is not a number"))
}

fn positive_f64(s: &str) -> Result<f64, String> {
    parse_f64(s).and_then(|v| {
        if v > 0.0 {
            Ok(v)
        } else {
            Err(format!("must be above 0, got {v}"))
        }
    })
}

fn non_negative_f64(s: &str) -> Result<f64, String> {
    parse_f64(s).and_then(|v| {
        if v >= 0.0 {
            Ok(v)
        } else {
            Err(format!("must be 0 or more, got {v}"))
        }
    })
}

fn attack_share(s: &str) -> Result<f64, String> {
    parse_f64(s).and_then(|v| {
        if v > 0.0 && v <= 0.5 {
            Ok(v)
        } else {
            Err(format!("must be above 0 and at most 0.5, got {v}"))
        }
    })
}

fn ratio(s: &str) -> Result<f64, String> {
    parse_f64(s).and_then(|v| {
        if (0.0..=1.0).contains(&v) {
            Ok(v)
        } else {
            Err(format!("must be between 0 and 1, got {v}"))
        }
    })
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

    /// TCP port for senders; 0 picks a free one [default: server.port, 9999].
    #[arg(long, short = 'p', value_name = "PORT")]
    pub port: Option<String>,

    /// Connections served at once [default: server.max_clients, 5].
    #[arg(long, value_name = "N")]
    pub max_clients: Option<String>,

    /// Dashboard port; 0 picks a free one [default: dashboard.port, 5000].
    #[arg(long, value_name = "PORT")]
    pub dashboard_port: Option<String>,

    /// Serve the dashboard's files from this folder instead of the copies built
    /// into the binary (for working on the page).
    #[arg(long, value_name = "DIR")]
    pub static_dir: Option<std::path::PathBuf>,

    /// Database options.
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// `netsentinel eval-pcap`.
#[derive(Debug, Args)]
#[command(
    after_help = "Labels: one 0/1 line per frame of the capture, or one per IP packet \
(frames without an IP packet, ARP among them, then count as normal); which one is told from \
the number of lines. Without --labels, <capture>.labels (then <capture>.frame-labels) beside \
the capture is used. The detector settings ([detector] in the config, or --set) apply; the \
per-packet line is the same run with detector.half_lives empty.\n\n\
Examples:\n  netsentinel eval-pcap scan.pcapng --labels scan.pcapng.labels\n  \
netsentinel eval-pcap ../shared/pcaps/*.pcap* --json"
)]
pub struct EvalPcapArgs {
    /// Capture files (pcap or pcapng), each judged on its own.
    #[arg(value_name = "CAPTURE", required = true)]
    pub captures: Vec<PathBuf>,

    /// Labels file of each capture, in the order of the captures (repeatable).
    #[arg(long, value_name = "FILE")]
    pub labels: Vec<PathBuf>,

    /// A capture judged first (context and models learn from it), left out
    /// of the figures.
    #[arg(long, value_name = "CAPTURE")]
    pub train: Option<PathBuf>,

    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
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
