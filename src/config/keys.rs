//! Every configuration key, declared once: its section, name, Rust type,
//! default, rule and one line of help. The `declare!` macro turns this list
//! into the section structs, their defaults and the [`KEYS`] table from which
//! parsing, environment names, `--set`, error messages and the documented
//! `netsentinel.toml` (see [`super::document`]) all come.

use std::path::PathBuf;

use super::value::{int, Checked, Kind, Setting};

/// One declared key, as the loaders and the documented file see it.
pub struct KeySpec {
    /// `[section]` in the file.
    pub section: &'static str,
    /// Key within the section.
    pub key: &'static str,
    /// Its rule.
    pub kind: Kind,
    /// One line for the documented file.
    pub help: &'static str,
    /// Reads the key's value from a configuration.
    pub get: fn(&Config) -> toml::Value,
    /// Stores a checked value.
    pub set: fn(&mut Config, Checked),
}

impl KeySpec {
    /// `section.key`.
    pub fn dotted(&self) -> String {
        format!("{}.{}", self.section, self.key)
    }

    /// `NETSENTINEL_SECTION_KEY`.
    pub fn env_name(&self) -> String {
        format!(
            "NETSENTINEL_{}_{}",
            self.section.to_ascii_uppercase(),
            self.key.to_ascii_uppercase()
        )
    }
}

macro_rules! declare {
    ($(
        #[doc = $section_doc:literal]
        [$section:ident] $Struct:ident {
            $(
                #[doc = $help:literal]
                $key:ident: $ty:ty = $default:expr, $kind:expr;
            )*
        }
    )*) => {
        $(
            #[doc = $section_doc]
            #[derive(Debug, Clone, PartialEq)]
            pub struct $Struct {
                $( #[doc = $help] pub $key: $ty, )*
            }

            impl Default for $Struct {
                fn default() -> Self {
                    $Struct { $( $key: $default, )* }
                }
            }
        )*

        /// The validated configuration. Every field holds a value that passed
        /// its key's rule; [`Config::validate`] checks the keys against each other.
        #[derive(Debug, Clone, PartialEq, Default)]
        pub struct Config {
            $( #[doc = $section_doc] pub $section: $Struct, )*
            /// The file the values came from, if any.
            pub file: Option<PathBuf>,
        }

        /// Every key NetSentinel reads, in the order the documented file lists them.
        pub static KEYS: &[KeySpec] = &[
            $( $( KeySpec {
                section: stringify!($section),
                key: stringify!($key),
                kind: $kind,
                help: $help,
                get: |c: &Config| Setting::to_toml(&c.$section.$key),
                set: |c: &mut Config, v: Checked| c.$section.$key = Setting::from_checked(v),
            }, )* )*
        ];
    };
}

declare! {
    /// `[server]`: the TCP ingest listener.
    [server] ServerConfig {
        /// Address the packet listener binds to (0.0.0.0 to accept senders from other hosts).
        host: String = "127.0.0.1".into(), Kind::Text;
        /// TCP port senders connect to; 0 picks a free port, named in the log line "server started on".
        port: u16 = 9999, int(0, 65535);
        /// This server's name where several share one database (each dashboard shows which server each sender is on); default HOSTNAME:PORT.
        name: Option<String> = None, Kind::OptionalText;
        /// Connections served at once; later ones wait first-come-first-served.
        max_clients: usize = 5, int(1, 10_000);
        /// Connections allowed to wait for a slot; beyond this a connection is refused.
        max_waiting: usize = 100, int(0, 100_000);
        /// Seconds a waiting connection may wait for a slot before it is closed.
        queue_timeout_s: u64 = 30, int(1, 86_400);
        /// Seconds a served connection may send no complete non-blank line (with no verdict owed) before it is closed.
        idle_timeout_s: u64 = 300, int(1, 86_400);
        /// Seconds a served connection has to send its first complete line (the hello) before it is closed.
        hello_timeout_s: u64 = 10, int(1, 3_600);
        /// Seconds a line may take from its first byte to its newline before the connection is closed.
        line_timeout_s: u64 = 10, int(1, 3_600);
        /// Seconds a served connection may be idle while others wait for a slot before it is told why and closed.
        idle_grace_s: u64 = 5, int(1, 86_400);
        /// Connections (served and waiting) one peer address may hold at once; 0: no cap (senders behind one NAT or on one host share an address).
        max_connections_per_address: usize = 0, int(0, 100_000);
        /// PEM certificate chain for TLS on the packet listener; with server.tls_key, senders must connect with TLS (client --tls-ca FILE or --tls).
        tls_cert: Option<String> = None, Kind::OptionalText;
        /// PEM private key of server.tls_cert.
        tls_key: Option<String> = None, Kind::OptionalText;
        /// How far above a sender's highest stored seq a new seq may jump before it is refused as an error; 0: no limit.
        max_seq_jump: u64 = 1_000_000, int(0, i64::MAX);
        /// Packets the one FIFO queue to the worker holds; when full, readers wait.
        queue_capacity: usize = 20_000, int(1, 1_000_000);
        /// Packets the worker writes in one transaction at most.
        batch_max: usize = 4_096, int(1, 100_000);
        /// Milliseconds the worker waits to fill a batch after its first packet.
        batch_wait_ms: u64 = 5, int(0, 10_000);
    }

    /// `[database]`: PostgreSQL.
    [database] DatabaseConfig {
        /// PostgreSQL connection URL; the DATABASE_URL environment variable overrides it.
        url: String = "postgresql://postgres@127.0.0.1:5432/netsentinel".into(), Kind::Text;
        /// Connections kept in the pool: the worker holds one, the trainer and the dashboard share the rest.
        pool_size: u32 = 4, int(1, 64);
        /// Seconds a write may wait for its commit (e.g. on a synchronous standby that is gone) before it is logged as a warning, counted in /metrics and /healthz turns unhealthy; nothing is acknowledged meanwhile.
        commit_timeout_s: u64 = 10, int(1, 86_400);
    }

    /// `[storage]`: time partitions of the packets table and how long what is kept.
    [storage] StorageConfig {
        /// Days of packet time each partition of the packets table covers (1: daily); changing it applies to partitions created from then on.
        partition_days: u32 = 1, int(1, 366);
        /// Partitions the server keeps created ahead of today (checked at start and every storage.upkeep_interval_s).
        partitions_ahead: u32 = 2, int(1, 366);
        /// Days of packets kept: whole partitions that ended longer ago are dropped (never a row-by-row DELETE); 0 keeps everything.
        retention_days: u32 = 0, int(0, 36_500);
        /// Bytes the database may use (e.g. 53687091200 for 50 GiB): past it the oldest partitions are dropped, with a warning naming each, until it fits (today's and later ones are never dropped); 0: no limit.
        max_database_bytes: u64 = 0, int(0, i64::MAX);
        /// Days of per-minute counters (the charts) kept; 0 keeps them all; when set with storage.retention_days, at least as long.
        counter_retention_days: u32 = 0, int(0, 36_500);
        /// Days closed, acknowledged or suppressed incidents are kept after their last packet (open ones always stay); 0 keeps them all; when set with storage.retention_days, at least as long.
        incident_retention_days: u32 = 0, int(0, 36_500);
        /// Seconds between storage checks: partitions ahead, retention, the database's size.
        upkeep_interval_s: u64 = 300, int(1, 86_400);
    }

    /// `[detector]`: the Isolation Forest and its training schedule.
    [detector] DetectorConfig {
        /// Expected share of anomalies in training traffic; sets the score threshold.
        contamination: f64 = 0.1, Kind::Float { min: 0.0, max: 0.5, open_min: true };
        /// Isolation trees in the forest.
        trees: usize = 100, int(1, 10_000);
        /// Rows drawn without replacement to grow each tree, the paper's psi.
        sample_size: usize = 256, int(2, 1_000_000);
        /// Seed of the forest's random choices: same seed and data give the same scores.
        seed: u64 = 42, int(0, i64::MAX);
        /// Packets stored before the first model is trained; at most detector.train_window.
        min_train_packets: u64 = 50, int(2, 100_000_000);
        /// Newest stored packets each model is trained on.
        train_window: usize = 10_000, int(2, 10_000_000);
        /// Packets stored between automatic retrains; 0 turns them off.
        retrain_every: u64 = 100_000, int(0, 1_000_000_000);
        /// Half-lives in seconds of packet time at which each host's behaviour is summed up (rates, new hosts, ports, connections, clients); empty: per-packet features only.
        half_lives: Vec<f64> = vec![1.0, 10.0, 60.0],
            Kind::NumberList { min: 0.0, max: 86_400.0, max_len: 8 };
        /// Entries each context table (hosts, host pairs, ports tried, connections) holds at most; the least recently seen is evicted.
        max_streams: usize = 100_000, int(1_000, 100_000_000);
        /// Distinct (size, protocol, port) rows a training window must hold; a more uniform one is refused and the model in use stays.
        min_distinct_rows: usize = 20, int(1, 1_000_000);
        /// Models kept in the database; older ones are deleted when a new one is stored.
        keep_models: usize = 50, int(1, 1_000_000);
        /// Leave the packets flagged when judged out of the next model's training (measured: worse; see README).
        exclude_flagged: bool = false, Kind::Bool;
    }

    /// `[incidents]`: grouping flagged packets into incidents a person acts on.
    [incidents] IncidentsConfig {
        /// Group flagged packets into incidents (stored, listed by /api/incidents).
        enabled: bool = true, Kind::Bool;
        /// Score from which a flagged packet is a strong anomaly; only strong ones open incidents (the threshold flags detector.contamination of ordinary traffic, just above it).
        strong_score: f64 = 0.73, Kind::Float { min: 0.0, max: 10.0, open_min: false };
        /// Recent strong anomalies (half-life 5 s of packet time) a host needs before an incident opens for it.
        min_packets: u64 = 5, int(1, 1_000_000);
        /// Share of a host's recent packets (half-life 1 s of packet time) that must be flagged for an incident to open.
        min_share: f64 = 0.8, Kind::Float { min: 0.0, max: 1.0, open_min: false };
        /// One packet scoring at least this opens an incident on its own.
        open_score: f64 = 1.1, Kind::Float { min: 0.0, max: 10.0, open_min: false };
        /// Seconds of packet time without an anomaly after which an incident is over; later anomalies of its host must earn a new one.
        gap_s: u64 = 60, int(1, 86_400);
        /// Hosts whose recent anomalies are tracked at most; the least recently seen are forgotten beyond.
        max_hosts: usize = 200_000, int(1_000, 100_000_000);
    }

    /// `[alerts]`: where incidents are sent when they open (each sink its own thread, queue and retries).
    [alerts] AlertsConfig {
        /// HTTP(S) URL each new incident is POSTed to as JSON (empty: no webhook).
        webhook_url: Option<String> = None, Kind::OptionalUrl { schemes: &["http", "https"], port_required: false };
        /// When set, each webhook POST carries "X-NetSentinel-Signature: sha256=HEX", the HMAC-SHA256 of the body with this secret.
        webhook_secret: Option<String> = None, Kind::OptionalText;
        /// Seconds a webhook POST may take (connect, send, answer) before it counts as failed and is retried.
        webhook_timeout_s: u64 = 5, int(1, 300);
        /// Syslog receiver for RFC 5424 messages, udp://HOST:PORT or tcp://HOST:PORT (TCP with octet counting, RFC 6587); empty: none.
        syslog: Option<String> = None, Kind::OptionalUrl { schemes: &["udp", "tcp"], port_required: true };
        /// File each new incident is appended to as one JSON line, like Suricata's eve.json (empty: none).
        jsonl_path: Option<String> = None, Kind::OptionalText;
        /// New incidents each sink's queue holds; beyond, the sink reads the backlog from the incidents table when it catches up (nothing is lost).
        queue_capacity: usize = 1_000, int(1, 1_000_000);
        /// Longest pause in seconds between retries of a failed delivery (the pause doubles from 1 s).
        max_backoff_s: u64 = 30, int(1, 3_600);
        /// Seconds each sink keeps trying to deliver what is queued after shutdown begins; the rest is sent after the next start.
        shutdown_grace_s: u64 = 5, int(0, 3_600);
    }

    /// `[traffic]`: what the traffic generator sends.
    [traffic] TrafficConfig {
        /// Protocols the traffic generator draws from.
        protocols: Vec<String> = ["TCP", "UDP", "ICMP", "HTTP", "HTTPS"].map(String::from).to_vec(),
            Kind::ProtocolList;
    }

    /// `[dashboard]`: the web dashboard.
    [dashboard] DashboardConfig {
        /// Address the web dashboard binds to; keep 127.0.0.1 unless a proxy guards it.
        host: String = "127.0.0.1".into(), Kind::Text;
        /// Port of the web dashboard; 0 picks a free port, named in the log line "dashboard on".
        port: u16 = 5000, int(0, 65535);
        /// When not empty, the dashboard's writes (retrain, incident actions, suppression rules) require the header "Authorization: Bearer TOKEN" (TOKEN: this value); when empty, writes must come from the dashboard's own page (same Origin, JSON).
        token: Option<String> = None, Kind::OptionalText;
        /// When not empty, the API and /metrics need "Authorization: Bearer TOKEN" (TOKEN: this value, or dashboard.token); the page asks for it.
        read_token: Option<String> = None, Kind::OptionalText;
        /// Host names (besides IP addresses and localhost) the dashboard answers to; any other Host header is refused (DNS rebinding).
        allowed_hosts: Vec<String> = Vec::new(), Kind::HostList;
        /// Seconds after a retrain before the next one is accepted (429 meanwhile).
        retrain_interval_s: u64 = 10, int(0, 86_400);
        /// HTTP connections served at once; at the cap the one idle longest is closed to make room.
        max_connections: usize = 256, int(1, 65_536);
        /// Seconds a connection may take to send a whole request (head and body), counted from connecting or from its previous request; idle keep-alive connections close after it too.
        request_timeout_s: u64 = 10, int(1, 3_600);
    }
}

/// The key named `section.key`, if declared.
pub fn find(dotted: &str) -> Option<&'static KeySpec> {
    let (section, key) = dotted.split_once('.')?;
    KEYS.iter().find(|s| s.section == section && s.key == key)
}

/// The section names, in declaration order.
pub fn sections() -> Vec<&'static str> {
    let mut names: Vec<&str> = KEYS.iter().map(|s| s.section).collect();
    names.dedup();
    names
}
