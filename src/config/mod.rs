//! The configuration: `netsentinel.toml`, the environment and flags → a
//! validated [`Config`].
//!
//! - [`keys`]: every key declared once (type, default, rule, help);
//! - [`value`]: the rules and the checks every source shares;
//! - [`validate`]: rules between keys;
//! - [`document`]: the documented file, written from the declarations.
//!
//! Precedence, lowest first: built-in defaults, the file (`--config PATH`,
//! else `./netsentinel.toml` when it exists), `DATABASE_URL` for
//! `database.url`, `NETSENTINEL_<SECTION>_<KEY>` for any key, then
//! command-line flags. This module does no I/O beyond reading the one file
//! and the environment.

pub mod document;
pub mod keys;
pub mod validate;
pub mod value;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub use document::redact_url;
pub use keys::{
    AlertsConfig, Config, DashboardConfig, DatabaseConfig, DetectorConfig, IncidentsConfig,
    ServerConfig, StorageConfig, TrafficConfig,
};

use keys::{KeySpec, KEYS};
use value::Refused;

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
    /// Values that are each allowed but contradict each other.
    #[error("{keys} conflict: {message}")]
    Conflict {
        /// The keys involved, quoted.
        keys: String,
        /// Why, and what to change.
        message: String,
    },
}

impl Config {
    /// Loads the configuration the way every subcommand does: the file (explicit
    /// `path`, else `./netsentinel.toml` if present, else none), then the
    /// environment. Command-line flags are applied afterwards with [`Config::set`],
    /// then [`Config::validate`] checks the keys against each other.
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
                        keys::sections().join("], [")
                    ),
                });
            };
            for (key, value) in entries {
                let dotted = format!("{section}.{key}");
                let spec = keys::find(&dotted).ok_or_else(|| unknown_key(&source, &dotted))?;
                let checked =
                    value::check_toml(spec.kind, value).map_err(|r| invalid(spec, &source, r))?;
                (spec.set)(self, checked);
            }
        }
        Ok(())
    }

    /// Applies `DATABASE_URL` and every `NETSENTINEL_<SECTION>_<KEY>` found in `env`.
    /// A `NETSENTINEL_` variable that matches no key is logged as a warning, not an error,
    /// since other tools may share the prefix.
    pub fn apply_env(&mut self, env: &BTreeMap<String, String>) -> Result<(), ConfigError> {
        if let Some(url) = env.get("DATABASE_URL") {
            self.set_from("database.url", url, &Source::Env("DATABASE_URL".into()))?;
        }
        for spec in KEYS {
            let name = spec.env_name();
            if let Some(raw) = env.get(&name) {
                self.set_from(&spec.dotted(), raw, &Source::Env(name))?;
            }
        }
        for name in env.keys().filter(|k| k.starts_with("NETSENTINEL_")) {
            if !KEYS.iter().any(|s| s.env_name() == *name) {
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

    /// Checks the keys against each other ([`validate`]); call it once every
    /// source is applied.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate::check(self)
    }

    fn set_from(&mut self, key: &str, raw: &str, source: &Source) -> Result<(), ConfigError> {
        let spec = keys::find(key).ok_or_else(|| unknown_key(source, key))?;
        let checked = value::check_text(spec.kind, raw).map_err(|r| invalid(spec, source, r))?;
        (spec.set)(self, checked);
        Ok(())
    }
}

fn unknown_key(source: &Source, key: &str) -> ConfigError {
    let section = key.split('.').next().unwrap_or_default();
    let in_section: Vec<&str> = KEYS
        .iter()
        .filter(|s| s.section == section)
        .map(|s| s.key)
        .collect();
    let hint = if in_section.is_empty() {
        format!(": the sections are [{}]", keys::sections().join("], ["))
    } else {
        format!(" in [{section}]: {}", in_section.join(", "))
    };
    ConfigError::UnknownKey {
        origin: source.clone(),
        key: key.to_string(),
        hint,
    }
}

fn invalid(spec: &KeySpec, source: &Source, refused: Refused) -> ConfigError {
    ConfigError::Invalid {
        origin: source.clone(),
        key: spec.dotted(),
        value: refused.0,
        allowed: spec.kind.allowed(),
    }
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
    fn shipped_file_is_the_documented_defaults_written_from_the_declarations() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_CONFIG_FILE);
        let text = std::fs::read_to_string(&path).expect("netsentinel.toml ships with the repo");
        assert_eq!(
            text,
            document::render(&Config::default(), false),
            "netsentinel.toml differs from the declarations in src/config/keys.rs: \
             regenerate it with `cargo run -- config --defaults > netsentinel.toml`"
        );
        let mut loaded = Config::default();
        loaded
            .apply_toml(&text, &path)
            .expect("shipped file is valid");
        assert_eq!(loaded, Config::default());
    }

    #[test]
    fn every_key_holds_its_declared_bounds_and_reads_back_what_was_set() {
        for spec in KEYS {
            let values: Vec<String> = match spec.kind {
                value::Kind::Int { min, max } => vec![min.to_string(), max.to_string()],
                value::Kind::Float { max, .. } => vec![format!("{max:?}")],
                value::Kind::Text | value::Kind::OptionalText => vec!["some text".into()],
                value::Kind::OptionalUrl { schemes, .. } => {
                    vec![format!("{}://127.0.0.1:514", schemes[0])]
                }
                value::Kind::ProtocolList => vec!["TCP,DNS".into()],
                value::Kind::HostList => vec!["".into(), "sentinel.lan,ids-1".into()],
                value::Kind::NumberList { max, .. } => {
                    vec!["".into(), format!("0.5,{max:?}"), format!("[0.5, {max:?}]")]
                }
                value::Kind::Bool => vec!["true".into(), "false".into()],
            };
            for v in values {
                let mut c = Config::default();
                c.set(&spec.dotted(), &v, "--test").unwrap();
                let back = (spec.get)(&c);
                let shown = match &back {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Array(a) => a
                        .iter()
                        .map(|x| match x {
                            toml::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join(","),
                    other => other.to_string(),
                };
                // A list given as the file writes it reads back as a plain one.
                let expected = v
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .replace(", ", ",");
                assert_eq!(
                    shown,
                    expected,
                    "{} = {v} reads back as {back}",
                    spec.dotted()
                );
            }
        }
    }

    #[test]
    fn rendered_file_redacts_secrets_only_when_asked() {
        let mut c = Config::default();
        c.dashboard.token = Some("s3cret".into());
        c.dashboard.read_token = Some("r3ad".into());
        c.database.url = "postgresql://u:pw@h/db".into();
        let shown = document::render(&c, true);
        assert!(
            !shown.contains("s3cret") && !shown.contains("r3ad") && !shown.contains(":pw@"),
            "{shown}"
        );
        let full = document::render(&c, false);
        assert!(full.contains("s3cret") && full.contains(":pw@"), "{full}");
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
        assert!(err.contains("0..=65535"), "{err}");
        let err = from_toml("[traffic]\nprotocols = \"TCP\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("traffic.protocols"), "{err}");
    }

    #[test]
    fn port_zero_means_any_free_port_and_bounds_are_checked() {
        let c = from_toml("[server]\nport = 0\n[dashboard]\nport = 0").unwrap();
        assert_eq!((c.server.port, c.dashboard.port), (0, 0));
        for text in ["[server]\nport = -1", "[dashboard]\nport = 65536"] {
            let err = from_toml(text).unwrap_err().to_string();
            assert!(err.contains("0..=65535"), "{err}");
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
        let err = c
            .set("server.port", "-5", "--port")
            .unwrap_err()
            .to_string();
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
