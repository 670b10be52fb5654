//! The configuration: `netsentinel.toml` → a validated [`Config`].
//!
//! Every key is declared once, in `KEYS`, with its type, its allowed range,
//! its default and a one-line description. The same declaration validates the
//! file, the environment overrides and the command-line overrides, so a value
//! is checked in exactly one way whatever its source.
//!
//! Precedence, lowest first: built-in defaults, the file (`--config PATH`,
//! else `./netsentinel.toml` when it exists), `DATABASE_URL` for
//! `database.url`, `NETSENTINEL_<SECTION>_<KEY>` for any key, then
//! command-line flags.
//!
//! This module does no I/O beyond reading the one file and the environment.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The file looked for in the working directory when `--config` is absent.
pub const DEFAULT_CONFIG_FILE: &str = "netsentinel.toml";

/// Where a value came from; every error names it so the user knows what to edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A TOML file.
    File(PathBuf),
    /// An environment variable, by name.
    Env(String),
    /// A command-line flag, by name.
    Flag(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Env(name) => write!(f, "environment variable {name}"),
            Source::Flag(name) => write!(f, "command-line flag {name}"),
        }
    }
}

/// A configuration problem. Every variant names the source, the key and what is allowed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{path} is not valid TOML: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said, with line and column.
        message: String,
    },
    /// A key that NetSentinel does not know (often a typo).
    #[error("{origin}: unknown key `{key}`; known keys{hint}")]
    UnknownKey {
        /// Where it was found.
        origin: Source,
        /// The dotted key.
        key: String,
        /// A list of the keys that are allowed there.
        hint: String,
    },
    /// A value of the wrong type or out of range.
    #[error("{origin}: `{key}` = {value} is not allowed: expected {allowed}")]
    Invalid {
        /// Where it was found.
        origin: Source,
        /// The dotted key.
        key: String,
        /// The value as given.
        value: String,
        /// What is allowed.
        allowed: String,
    },
}

/// What kind of value a key takes, with its limits.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Non-empty text.
    Text,
    /// Text that may be empty (empty = unset).
    OptionalText,
    /// An integer in `min..=max`.
    Int { min: i64, max: i64 },
    /// A float `v` with `min < v <= max` (when `open_min`) or `min <= v <= max`.
    Float { min: f64, max: f64, open_min: bool },
    /// A non-empty list of protocol names.
    ProtocolList,
}

impl Kind {
    fn allowed(self) -> String {
        match self {
            Kind::Text => "a non-empty string".into(),
            Kind::OptionalText => "a string (empty = unset)".into(),
            Kind::Int { min, max } => format!("an integer in {min}..={max}"),
            Kind::Float {
                min,
                max,
                open_min: true,
            } => format!("a number in ({min}, {max}]"),
            Kind::Float { min, max, .. } => format!("a number in [{min}, {max}]"),
            Kind::ProtocolList => format!(
                "a non-empty list of protocol names, each {}",
                PROTOCOL_NAME_RULE
            ),
        }
    }
}

/// The rule a protocol name follows, shared with the wire protocol.
pub const PROTOCOL_NAME_RULE: &str = "1-10 characters of [A-Za-z0-9_-]";

/// True when `name` is a valid protocol name ([`PROTOCOL_NAME_RULE`]).
pub fn is_valid_protocol_name(name: &str) -> bool {
    (1..=10).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// One declared key.
struct KeySpec {
    section: &'static str,
    key: &'static str,
    kind: Kind,
}

const fn int(min: i64, max: i64) -> Kind {
    Kind::Int { min, max }
}

/// Every key NetSentinel reads. Defaults and descriptions live in `netsentinel.toml`
/// and in [`Config::default`]; a unit test checks the three agree.
const KEYS: &[KeySpec] = &[
    KeySpec {
        section: "server",
        key: "host",
        kind: Kind::Text,
    },
    KeySpec {
        section: "server",
        key: "port",
        kind: int(1, 65535),
    },
    KeySpec {
        section: "server",
        key: "max_clients",
        kind: int(1, 10_000),
    },
    KeySpec {
        section: "server",
        key: "max_waiting",
        kind: int(0, 100_000),
    },
    KeySpec {
        section: "server",
        key: "queue_timeout_s",
        kind: int(1, 86_400),
    },
    KeySpec {
        section: "server",
        key: "idle_timeout_s",
        kind: int(1, 86_400),
    },
    KeySpec {
        section: "server",
        key: "queue_capacity",
        kind: int(1, 1_000_000),
    },
    KeySpec {
        section: "server",
        key: "batch_max",
        kind: int(1, 100_000),
    },
    KeySpec {
        section: "server",
        key: "batch_wait_ms",
        kind: int(0, 10_000),
    },
    KeySpec {
        section: "database",
        key: "url",
        kind: Kind::Text,
    },
    KeySpec {
        section: "database",
        key: "pool_size",
        kind: int(1, 64),
    },
    KeySpec {
        section: "detector",
        key: "contamination",
        kind: Kind::Float {
            min: 0.0,
            max: 0.5,
            open_min: true,
        },
    },
    KeySpec {
        section: "detector",
        key: "trees",
        kind: int(1, 10_000),
    },
    KeySpec {
        section: "detector",
        key: "sample_size",
        kind: int(2, 1_000_000),
    },
    KeySpec {
        section: "detector",
        key: "seed",
        kind: int(0, i64::MAX),
    },
    KeySpec {
        section: "detector",
        key: "min_train_packets",
        kind: int(2, 100_000_000),
    },
    KeySpec {
        section: "detector",
        key: "train_window",
        kind: int(2, 10_000_000),
    },
    KeySpec {
        section: "detector",
        key: "retrain_every",
        kind: int(0, 1_000_000_000),
    },
    KeySpec {
        section: "traffic",
        key: "protocols",
        kind: Kind::ProtocolList,
    },
    KeySpec {
        section: "dashboard",
        key: "host",
        kind: Kind::Text,
    },
    KeySpec {
        section: "dashboard",
        key: "port",
        kind: int(1, 65535),
    },
    KeySpec {
        section: "dashboard",
        key: "token",
        kind: Kind::OptionalText,
    },
];

/// `[server]`: the TCP ingest listener.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Address to listen on.
    pub host: String,
    /// TCP port for senders.
    pub port: u16,
    /// Connections served at once; later ones wait in line.
    pub max_clients: usize,
    /// Connections allowed to wait for a slot; more are refused.
    pub max_waiting: usize,
    /// Seconds a connection may wait for a slot before it is closed.
    pub queue_timeout_s: u64,
    /// Seconds a served connection may stay silent before it is closed.
    pub idle_timeout_s: u64,
    /// Packets the FIFO between connections and the worker holds.
    pub queue_capacity: usize,
    /// Packets written in one transaction at most.
    pub batch_max: usize,
    /// Milliseconds the worker waits to fill a batch after its first packet.
    pub batch_wait_ms: u64,
}

/// `[database]`: PostgreSQL.
#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseConfig {
    /// Connection URL (`DATABASE_URL` overrides it).
    pub url: String,
    /// Connections in the r2d2 pool.
    pub pool_size: u32,
}

/// `[detector]`: the Isolation Forest.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorConfig {
    /// Expected share of anomalies; sets the threshold.
    pub contamination: f64,
    /// Trees in the forest.
    pub trees: usize,
    /// Rows drawn (without replacement) for each tree.
    pub sample_size: usize,
    /// Seed of the forest's random choices.
    pub seed: u64,
    /// Packets needed before the first model is trained.
    pub min_train_packets: u64,
    /// Newest packets a model is trained on.
    pub train_window: usize,
    /// Packets stored between automatic retrains; 0 = never.
    pub retrain_every: u64,
}

/// `[traffic]`: what the traffic generator sends.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficConfig {
    /// Protocol names the generator draws from.
    pub protocols: Vec<String>,
}

/// `[dashboard]`: the web dashboard.
#[derive(Debug, Clone, PartialEq)]
pub struct DashboardConfig {
    /// Address the dashboard binds to.
    pub host: String,
    /// Port of the dashboard.
    pub port: u16,
    /// When set, `POST /api/retrain` needs `Authorization: Bearer TOKEN`.
    pub token: Option<String>,
}

/// The validated configuration. Every field holds a value that passed its rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `[server]`
    pub server: ServerConfig,
    /// `[database]`
    pub database: DatabaseConfig,
    /// `[detector]`
    pub detector: DetectorConfig,
    /// `[traffic]`
    pub traffic: TrafficConfig,
    /// `[dashboard]`
    pub dashboard: DashboardConfig,
    /// The file the values came from, if any.
    pub file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: ServerConfig {
                host: "127.0.0.1".into(),
                port: 9999,
                max_clients: 5,
                max_waiting: 100,
                queue_timeout_s: 30,
                idle_timeout_s: 300,
                queue_capacity: 20_000,
                batch_max: 4_096,
                batch_wait_ms: 5,
            },
            database: DatabaseConfig {
                url: "postgresql://postgres@127.0.0.1:5432/netsentinel".into(),
                pool_size: 4,
            },
            detector: DetectorConfig {
                contamination: 0.1,
                trees: 100,
                sample_size: 256,
                seed: 42,
                min_train_packets: 50,
                train_window: 10_000,
                retrain_every: 100_000,
            },
            traffic: TrafficConfig {
                protocols: ["TCP", "UDP", "ICMP", "HTTP", "HTTPS"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            },
            dashboard: DashboardConfig {
                host: "127.0.0.1".into(),
                port: 5000,
                token: None,
            },
            file: None,
        }
    }
}

/// A value after type checking, before it is stored.
#[derive(Debug, Clone)]
enum Checked {
    Text(String),
    Int(i64),
    Float(f64),
    List(Vec<String>),
}

impl Config {
    /// Loads the configuration the way every subcommand does: the file (explicit
    /// `path`, else `./netsentinel.toml` if present, else none), then the
    /// environment. Command-line flags are applied afterwards with [`Config::set`].
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let vars: BTreeMap<String, String> = std::env::vars().collect();
        Self::load_with_env(path, &vars)
    }

    /// [`Config::load`] with an explicit environment, for tests.
    pub fn load_with_env(
        path: Option<&Path>,
        env: &BTreeMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        let file = match path {
            Some(p) => Some(p.to_path_buf()),
            None => {
                let p = PathBuf::from(DEFAULT_CONFIG_FILE);
                p.is_file().then_some(p)
            }
        };
        if let Some(file) = file {
            let text = std::fs::read_to_string(&file).map_err(|source| ConfigError::Read {
                path: file.clone(),
                source,
            })?;
            config.apply_toml(&text, &file)?;
            config.file = Some(file);
        }
        config.apply_env(env)?;
        Ok(config)
    }

    /// Parses TOML text and applies every key in it.
    pub fn apply_toml(&mut self, text: &str, path: &Path) -> Result<(), ConfigError> {
        let table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ConfigError::Syntax {
                    path: path.to_path_buf(),
                    message: e.to_string().trim_end().to_string(),
                })?;
        let source = Source::File(path.to_path_buf());
        for (section, value) in &table {
            let Some(entries) = value.as_table() else {
                return Err(ConfigError::UnknownKey {
                    origin: source,
                    key: section.clone(),
                    hint: format!(
                        " are grouped in sections [{}]; a top-level key is not allowed",
                        section_names().join("], [")
                    ),
                });
            };
            for (key, value) in entries {
                let dotted = format!("{section}.{key}");
                let spec = find_key(&dotted).ok_or_else(|| unknown_key(&source, &dotted))?;
                let checked = check_toml(spec, value, &source)?;
                self.store(spec, checked);
            }
        }
        Ok(())
    }

    /// Applies `DATABASE_URL` and every `NETSENTINEL_<SECTION>_<KEY>` found in `env`.
    /// A `NETSENTINEL_` variable that matches no key is logged as a warning, not an error,
    /// since other tools may share the prefix.
    pub fn apply_env(&mut self, env: &BTreeMap<String, String>) -> Result<(), ConfigError> {
        if let Some(url) = env.get("DATABASE_URL") {
            self.set_from(
                "database.url",
                url,
                &Source::Env("DATABASE_URL".to_string()),
            )?;
        }
        for spec in KEYS {
            let name = env_name(spec);
            if let Some(raw) = env.get(&name) {
                self.set_from(&dotted(spec), raw, &Source::Env(name))?;
            }
        }
        for name in env.keys().filter(|k| k.starts_with("NETSENTINEL_")) {
            if !KEYS.iter().any(|s| env_name(s) == *name) {
                log::warn!(
                    "environment variable {name} matches no config key and is ignored \
                     (expected NETSENTINEL_<SECTION>_<KEY>, e.g. NETSENTINEL_SERVER_PORT)"
                );
            }
        }
        Ok(())
    }

    /// Sets one key from a command-line flag, e.g. `set("server.port", "7000", "--port")`.
    pub fn set(&mut self, key: &str, raw: &str, flag: &str) -> Result<(), ConfigError> {
        self.set_from(key, raw, &Source::Flag(flag.to_string()))
    }

    /// Applies one `KEY=VALUE` pair as given to `--set`.
    pub fn set_pair(&mut self, pair: &str) -> Result<(), ConfigError> {
        let (key, raw) = pair.split_once('=').ok_or_else(|| ConfigError::Invalid {
            origin: Source::Flag("--set".into()),
            key: pair.to_string(),
            value: "(missing)".into(),
            allowed: "SECTION.KEY=VALUE, e.g. --set detector.trees=200".into(),
        })?;
        self.set_from(key.trim(), raw.trim(), &Source::Flag("--set".into()))
    }

    fn set_from(&mut self, key: &str, raw: &str, source: &Source) -> Result<(), ConfigError> {
        let spec = find_key(key).ok_or_else(|| unknown_key(source, key))?;
        let checked = check_text(spec, raw, source)?;
        self.store(spec, checked);
        Ok(())
    }

    /// Stores a checked value. The match is exhaustive over [`KEYS`]; the checks in
    /// `check_*` guarantee the numeric conversions below cannot truncate.
    fn store(&mut self, spec: &KeySpec, value: Checked) {
        let int = |v: &Checked| match v {
            Checked::Int(i) => *i,
            _ => unreachable!("integer keys are checked as integers"),
        };
        let text = |v: Checked| match v {
            Checked::Text(s) => s,
            _ => unreachable!("text keys are checked as text"),
        };
        match (spec.section, spec.key) {
            ("server", "host") => self.server.host = text(value),
            ("server", "port") => self.server.port = int(&value) as u16,
            ("server", "max_clients") => self.server.max_clients = int(&value) as usize,
            ("server", "max_waiting") => self.server.max_waiting = int(&value) as usize,
            ("server", "queue_timeout_s") => self.server.queue_timeout_s = int(&value) as u64,
            ("server", "idle_timeout_s") => self.server.idle_timeout_s = int(&value) as u64,
            ("server", "queue_capacity") => self.server.queue_capacity = int(&value) as usize,
            ("server", "batch_max") => self.server.batch_max = int(&value) as usize,
            ("server", "batch_wait_ms") => self.server.batch_wait_ms = int(&value) as u64,
            ("database", "url") => self.database.url = text(value),
            ("database", "pool_size") => self.database.pool_size = int(&value) as u32,
            ("detector", "contamination") => {
                if let Checked::Float(f) = value {
                    self.detector.contamination = f;
                }
            }
            ("detector", "trees") => self.detector.trees = int(&value) as usize,
            ("detector", "sample_size") => self.detector.sample_size = int(&value) as usize,
            ("detector", "seed") => self.detector.seed = int(&value) as u64,
            ("detector", "min_train_packets") => {
                self.detector.min_train_packets = int(&value) as u64
            }
            ("detector", "train_window") => self.detector.train_window = int(&value) as usize,
            ("detector", "retrain_every") => self.detector.retrain_every = int(&value) as u64,
            ("traffic", "protocols") => {
                if let Checked::List(list) = value {
                    self.traffic.protocols = list;
                }
            }
            ("dashboard", "host") => self.dashboard.host = text(value),
            ("dashboard", "port") => self.dashboard.port = int(&value) as u16,
            ("dashboard", "token") => {
                let t = text(value);
                self.dashboard.token = (!t.is_empty()).then_some(t);
            }
            (section, key) => unreachable!("key {section}.{key} is declared but not stored"),
        }
    }
}

fn dotted(spec: &KeySpec) -> String {
    format!("{}.{}", spec.section, spec.key)
}

fn env_name(spec: &KeySpec) -> String {
    format!(
        "NETSENTINEL_{}_{}",
        spec.section.to_ascii_uppercase(),
        spec.key.to_ascii_uppercase()
    )
}

fn find_key(key: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|s| dotted(s) == key)
}

fn section_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = KEYS.iter().map(|s| s.section).collect();
    names.dedup();
    names
}

fn unknown_key(source: &Source, key: &str) -> ConfigError {
    let section = key.split('.').next().unwrap_or_default();
    let in_section: Vec<&str> = KEYS
        .iter()
        .filter(|s| s.section == section)
        .map(|s| s.key)
        .collect();
    let hint = if in_section.is_empty() {
        format!(": the sections are [{}]", section_names().join("], ["))
    } else {
        format!(" in [{section}]: {}", in_section.join(", "))
    };
    ConfigError::UnknownKey {
        origin: source.clone(),
        key: key.to_string(),
        hint,
    }
}

fn invalid(spec: &KeySpec, source: &Source, value: impl fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        origin: source.clone(),
        key: dotted(spec),
        value: value.to_string(),
        allowed: spec.kind.allowed(),
    }
}

/// Checks a typed TOML value against its key's rule.
fn check_toml(
    spec: &KeySpec,
    value: &toml::Value,
    source: &Source,
) -> Result<Checked, ConfigError> {
    match (spec.kind, value) {
        (Kind::Text | Kind::OptionalText, toml::Value::String(s)) => {
            check_text(spec, s, source).map_err(|_| invalid(spec, source, value))
        }
        (Kind::Int { .. }, toml::Value::Integer(i)) => check_int(spec, *i, source),
        (Kind::Float { .. }, toml::Value::Float(f)) => check_float(spec, *f, source),
        (Kind::Float { .. }, toml::Value::Integer(i)) => check_float(spec, *i as f64, source),
        (Kind::ProtocolList, toml::Value::Array(items)) => {
            let mut names = Vec::with_capacity(items.len());
            for item in items {
                match item.as_str() {
                    Some(s) => names.push(s.to_string()),
                    None => return Err(invalid(spec, source, value)),
                }
            }
            check_protocols(spec, names, source, value)
        }
        _ => Err(invalid(spec, source, value)),
    }
}

/// Checks a value given as text (environment or flag) against its key's rule.
fn check_text(spec: &KeySpec, raw: &str, source: &Source) -> Result<Checked, ConfigError> {
    let shown = format!("{raw:?}");
    match spec.kind {
        Kind::Text if raw.trim().is_empty() => Err(invalid(spec, source, shown)),
        Kind::Text | Kind::OptionalText => Ok(Checked::Text(raw.to_string())),
        Kind::Int { .. } => {
            let i: i64 = raw
                .trim()
                .parse()
                .map_err(|_| invalid(spec, source, &shown))?;
            check_int(spec, i, source)
        }
        Kind::Float { .. } => {
            let f: f64 = raw
                .trim()
                .parse()
                .map_err(|_| invalid(spec, source, &shown))?;
            check_float(spec, f, source)
        }
        Kind::ProtocolList => {
            let names = raw
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            check_protocols(spec, names, source, shown)
        }
    }
}

fn check_int(spec: &KeySpec, i: i64, source: &Source) -> Result<Checked, ConfigError> {
    match spec.kind {
        Kind::Int { min, max } if (min..=max).contains(&i) => Ok(Checked::Int(i)),
        _ => Err(invalid(spec, source, i)),
    }
}

fn check_float(spec: &KeySpec, f: f64, source: &Source) -> Result<Checked, ConfigError> {
    let ok = match spec.kind {
        Kind::Float { min, max, open_min } => {
            f.is_finite() && f <= max && if open_min { f > min } else { f >= min }
        }
        _ => false,
    };
    if ok {
        Ok(Checked::Float(f))
    } else {
        Err(invalid(spec, source, f))
    }
}

fn check_protocols(
    spec: &KeySpec,
    names: Vec<String>,
    source: &Source,
    shown: impl fmt::Display,
) -> Result<Checked, ConfigError> {
    if names.is_empty() || !names.iter().all(|n| is_valid_protocol_name(n)) {
        return Err(invalid(spec, source, shown));
    }
    Ok(Checked::List(names))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let mut c = Config::default();
        c.apply_toml(text, Path::new("test.toml"))?;
        Ok(c)
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn shipped_file_matches_builtin_defaults_and_documents_every_key() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_CONFIG_FILE);
        let text = std::fs::read_to_string(&path).expect("netsentinel.toml ships with the repo");
        let mut loaded = Config::default();
        loaded
            .apply_toml(&text, &path)
            .expect("shipped file is valid");
        assert_eq!(loaded, Config::default());
        // Every key appears in the file with a comment line right above it.
        let lines: Vec<&str> = text.lines().collect();
        for spec in KEYS {
            let at = lines
                .iter()
                .position(|l| l.starts_with(&format!("{} =", spec.key)))
                .unwrap_or_else(|| panic!("{} missing from netsentinel.toml", dotted(spec)));
            assert!(
                at > 0 && lines[at - 1].trim_start().starts_with('#'),
                "{} has no comment line above it",
                dotted(spec)
            );
        }
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = Config::default();
        assert_eq!(c.server.host, "127.0.0.1");
        assert_eq!(c.server.port, 9999);
        assert_eq!(c.server.max_clients, 5);
        assert_eq!(c.detector.contamination, 0.1);
        assert_eq!(c.detector.trees, 100);
        assert_eq!(c.detector.sample_size, 256);
        assert_eq!(c.detector.min_train_packets, 50);
        assert_eq!(c.traffic.protocols, ["TCP", "UDP", "ICMP", "HTTP", "HTTPS"]);
        assert_eq!(c.dashboard.host, "127.0.0.1");
        assert_eq!(c.dashboard.port, 5000);
    }

    #[test]
    fn unknown_key_names_file_key_and_known_keys() {
        let err = from_toml("[server]\nprot = 1\n").unwrap_err().to_string();
        assert!(err.contains("test.toml"), "{err}");
        assert!(err.contains("server.prot"), "{err}");
        assert!(err.contains("port"), "{err}");
    }

    #[test]
    fn unknown_section_is_an_error() {
        let err = from_toml("[servr]\nport = 1\n").unwrap_err().to_string();
        assert!(
            err.contains("servr.port") && err.contains("[server]"),
            "{err}"
        );
    }

    #[test]
    fn top_level_key_is_an_error() {
        let err = from_toml("port = 1\n").unwrap_err().to_string();
        assert!(err.contains("port") && err.contains("top-level"), "{err}");
    }

    #[test]
    fn wrong_type_names_key_value_and_rule() {
        let err = from_toml("[server]\nport = \"abc\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.port"), "{err}");
        assert!(err.contains("abc"), "{err}");
        assert!(err.contains("1..=65535"), "{err}");
        let err = from_toml("[traffic]\nprotocols = \"TCP\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("traffic.protocols"), "{err}");
    }

    #[test]
    fn port_zero_is_out_of_range() {
        for text in [
            "[server]\nport = 0",
            "[dashboard]\nport = 0",
            "[server]\nport = 70000",
        ] {
            let err = from_toml(text).unwrap_err().to_string();
            assert!(err.contains("1..=65535"), "{err}");
        }
    }

    #[test]
    fn contamination_must_be_in_half_open_range() {
        for bad in ["0", "0.0", "-0.1", "0.51", "1", "nan"] {
            let text = format!("[detector]\ncontamination = {bad}");
            let err = from_toml(&text).unwrap_err().to_string();
            assert!(err.contains("detector.contamination"), "{bad}: {err}");
            assert!(err.contains("(0, 0.5]"), "{bad}: {err}");
        }
        assert_eq!(
            from_toml("[detector]\ncontamination = 0.5")
                .unwrap()
                .detector
                .contamination,
            0.5
        );
    }

    #[test]
    fn max_clients_and_trees_must_be_positive() {
        let err = from_toml("[server]\nmax_clients = 0")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("server.max_clients") && err.contains("= 0"),
            "{err}"
        );
        let err = from_toml("[detector]\ntrees = 0").unwrap_err().to_string();
        assert!(err.contains("detector.trees"), "{err}");
        let err = from_toml("[detector]\nsample_size = 1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("detector.sample_size"), "{err}");
    }

    #[test]
    fn protocol_names_follow_the_wire_rule() {
        assert!(from_toml("[traffic]\nprotocols = []").is_err());
        assert!(from_toml("[traffic]\nprotocols = [\"TCP\", \"has space\"]").is_err());
        assert!(from_toml("[traffic]\nprotocols = [\"ELEVENCHARS\"]").is_err());
        assert!(from_toml("[traffic]\nprotocols = [1]").is_err());
        let c = from_toml("[traffic]\nprotocols = [\"QUIC\", \"DNS_x-1\"]").unwrap();
        assert_eq!(c.traffic.protocols, ["QUIC", "DNS_x-1"]);
    }

    #[test]
    fn syntax_error_names_the_file_and_line() {
        let err = from_toml("[server\nport = 1").unwrap_err().to_string();
        assert!(err.contains("test.toml") && err.contains("line 1"), "{err}");
    }

    #[test]
    fn env_overrides_file_and_database_url_is_honoured() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[server]\nport = 7000\n[database]\nurl = \"postgres://a/b\"\n",
        )
        .unwrap();
        let c = Config::load_with_env(Some(&path), &env(&[])).unwrap();
        assert_eq!(c.server.port, 7000);
        let c = Config::load_with_env(
            Some(&path),
            &env(&[
                ("NETSENTINEL_SERVER_PORT", "7100"),
                ("DATABASE_URL", "postgres://x/y"),
                ("NETSENTINEL_TRAFFIC_PROTOCOLS", "TCP, DNS"),
                ("NETSENTINEL_SERVER_MAX_CLIENTS", "9"),
            ]),
        )
        .unwrap();
        assert_eq!(c.server.port, 7100);
        assert_eq!(c.server.max_clients, 9);
        assert_eq!(c.database.url, "postgres://x/y");
        assert_eq!(c.traffic.protocols, ["TCP", "DNS"]);
        assert_eq!(c.file.as_deref(), Some(path.as_path()));
    }

    #[test]
    fn netsentinel_database_url_beats_database_url() {
        let c = Config::load_with_env(
            Some(Path::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/netsentinel.toml"
            ))),
            &env(&[
                ("DATABASE_URL", "postgres://generic/db"),
                ("NETSENTINEL_DATABASE_URL", "postgres://specific/db"),
            ]),
        )
        .unwrap();
        assert_eq!(c.database.url, "postgres://specific/db");
    }

    #[test]
    fn bad_env_value_names_the_variable() {
        let err = Config::load_with_env(
            Some(Path::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/netsentinel.toml"
            ))),
            &env(&[("NETSENTINEL_DETECTOR_TREES", "many")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("NETSENTINEL_DETECTOR_TREES"), "{err}");
        assert!(err.contains("\"many\""), "{err}");
    }

    #[test]
    fn flags_override_env_and_are_validated() {
        let mut c = Config::default();
        c.apply_env(&env(&[("NETSENTINEL_SERVER_PORT", "7100")]))
            .unwrap();
        c.set("server.port", "7200", "--port").unwrap();
        assert_eq!(c.server.port, 7200);
        let err = c.set("server.port", "0", "--port").unwrap_err().to_string();
        assert!(
            err.contains("--port") && err.contains("server.port"),
            "{err}"
        );
        c.set_pair("detector.trees=7").unwrap();
        assert_eq!(c.detector.trees, 7);
        assert!(c.set_pair("detector.trees").is_err());
        assert!(c.set_pair("detector.tres=7").is_err());
    }

    #[test]
    fn missing_explicit_file_is_an_error_naming_it() {
        let err = Config::load_with_env(Some(Path::new("/nonexistent/ns.toml")), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/ns.toml"), "{err}");
    }
}
