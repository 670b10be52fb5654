//! PostgreSQL: connecting (and creating the database), the r2d2 pool, and
//! - [`migrate`]: the numbered files of `sql/`, applied in order;
//! - [`ingest`]: the worker's batch transaction (binary COPY of the packets,
//!   the `traffic_minutes` and `traffic_totals` upserts, the senders' marks)
//!   and the reads exactly-once needs;
//! - [`incidents`]: the incidents the worker groups, and a person's status on them;
//! - [`models`]: stored models and the training query;
//! - [`partitions`]: the time partitions of `packets`, retention, the upgrade's moves;
//! - [`queries`]: the dashboard's reads (totals, time series, packet pages);
//! - [`suppressions`]: a person's suppression rules.
//!
//! Every function takes a connection or the pool and returns [`StoreError`];
//! nothing here knows about sockets or threads.

pub mod incidents;
pub mod ingest;
pub mod migrate;
pub mod models;
pub mod partitions;
pub mod queries;
pub mod ranges;
pub mod senders;
pub mod suppressions;

use std::str::FromStr;
use std::time::Duration;

use postgres::{Client, NoTls};
use r2d2_postgres::PostgresConnectionManager;

/// The connection pool shared by the worker, the trainer and the dashboard.
pub type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;
/// One connection borrowed from the pool.
pub type PooledConn = r2d2::PooledConnection<PostgresConnectionManager<NoTls>>;

/// How long to wait for a connection before calling the database unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A database problem, with what to check.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is not a valid PostgreSQL connection string.
    #[error("database.url {url:?} is not a valid PostgreSQL URL: {message}")]
    BadUrl {
        /// The URL (password removed).
        url: String,
        /// The parser's words.
        message: String,
    },
    /// The server did not accept a connection.
    #[error("cannot connect to PostgreSQL at {target}: {source}. Check that PostgreSQL is running \
             (bash scripts/setup-db.sh starts a local one) and that database.url / DATABASE_URL is right")]
    Connect {
        /// host:port/database as user.
        target: String,
        /// The driver's error.
        source: postgres::Error,
    },
    /// A migration failed; nothing of it was applied.
    #[error("migration {name} failed (rolled back): {source}")]
    Migrate {
        /// The file in sql/.
        name: &'static str,
        /// The driver's error.
        source: postgres::Error,
    },
    /// No pooled connection could be had.
    #[error("no database connection available: {0}")]
    Pool(#[from] r2d2::Error),
    /// A query failed.
    #[error("database error: {}", describe_error(.0))]
    Query(#[from] postgres::Error),
    /// A stored row could not be used.
    #[error("bad stored data: {0}")]
    Data(String),
    /// A batch was not written: another server sharing the database stored
    /// packets of one of its senders after this server read the sender's mark.
    #[error(
        "sender {client:?} moved: the database holds its packets up to seq {stored}, \
             this batch was planned from seq {planned}"
    )]
    SenderMoved {
        /// The sender.
        client: String,
        /// Its stored mark.
        stored: i64,
        /// The mark the batch was planned against.
        planned: i64,
    },
}

/// The driver's error with the server's message, code and detail when there is one
/// (the driver's own text for a server error is just "db error").
pub fn describe_error(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(detail) = db.detail() {
                s.push_str(&format!("; {detail}"));
            }
            if let Some(hint) = db.hint() {
                s.push_str(&format!("; hint: {hint}"));
            }
            s
        }
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

impl StoreError {
    /// True when retrying may succeed: the connection broke, the server is
    /// restarting or overloaded, or a transaction lost a race. False when the
    /// database refuses the statement itself (missing table, bad value, …).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Pool(_) | StoreError::Connect { .. } | StoreError::SenderMoved { .. } => {
                true
            }
            StoreError::Query(e) => match e.as_db_error() {
                None => true,
                Some(db) => {
                    let code = db.code().code();
                    code.starts_with("08")
                        || code.starts_with("53")
                        || code.starts_with("57P")
                        || code.starts_with("58")
                        || code == "40001"
                        || code == "40P01"
                        || code == "55P03"
                        // An upgrade finished moving the old table's rows
                        // and dropped it under a prepared statement.
                        || (code == "42P01" && db.message().contains("packets_legacy"))
                }
            },
            _ => false,
        }
    }

    /// True when the write lost a race for a sender's seq: another server on
    /// the same database (or this one before a lost reply) stored it first.
    /// Retrying re-reads the sender's mark and answers those packets from
    /// the table, so this is transient too.
    pub fn is_stored_elsewhere(&self) -> bool {
        matches!(self, StoreError::SenderMoved { .. })
    }
}

/// host:port/dbname as user, for messages (never the password).
pub fn describe(config: &postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            postgres::config::Host::Tcp(s) => s.clone(),
            #[cfg(unix)]
            postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{host}:{port}/{} as {}",
        config.get_dbname().unwrap_or("(default)"),
        config.get_user().unwrap_or("(default user)")
    )
}

/// Parses `url`, reporting it without its password on error.
pub fn parse_url(url: &str) -> Result<postgres::Config, StoreError> {
    let mut config = postgres::Config::from_str(url).map_err(|e| StoreError::BadUrl {
        url: crate::config::redact_url(url),
        message: e.to_string(),
    })?;
    config.connect_timeout(CONNECT_TIMEOUT);
    if config.get_application_name().is_none() {
        config.application_name("netsentinel");
    }
    Ok(config)
}

/// Connects to the database in `url`, creating it first when it does not exist,
/// and applies the migrations. Returns the parsed configuration for the pool.
pub fn prepare_database(url: &str) -> Result<postgres::Config, StoreError> {
    let config = parse_url(url)?;
    let target = describe(&config);
    let mut client = match config.connect(NoTls) {
        Ok(c) => c,
        Err(e) if is_missing_database(&e) => {
            create_database(&config)?;
            config
                .connect(NoTls)
                .map_err(|source| StoreError::Connect {
                    target: target.clone(),
                    source,
                })?
        }
        Err(source) => return Err(StoreError::Connect { target, source }),
    };
    migrate::apply(&mut client)?;
    Ok(config)
}

fn is_missing_database(e: &postgres::Error) -> bool {
    e.code() == Some(&postgres::error::SqlState::INVALID_CATALOG_NAME)
}

/// Creates the database named in `config` through the `postgres` maintenance database.
fn create_database(config: &postgres::Config) -> Result<(), StoreError> {
    let name = config.get_dbname().unwrap_or("netsentinel").to_string();
    let mut admin = config.clone();
    admin.dbname("postgres");
    let mut client = admin.connect(NoTls).map_err(|source| StoreError::Connect {
        target: describe(&admin),
        source,
    })?;
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    match client.batch_execute(&format!("CREATE DATABASE {quoted}")) {
        Ok(()) => {
            log::info!("created database {name}");
            Ok(())
        }
        // Someone else created it meanwhile: fine.
        Err(e) if e.code() == Some(&postgres::error::SqlState::DUPLICATE_DATABASE) => Ok(()),
        Err(e) => Err(StoreError::Query(e)),
    }
}

/// Prepares the database and opens a pool of `size` connections to it.
pub fn open_pool(url: &str, size: u32) -> Result<Pool, StoreError> {
    let mut config = prepare_database(url)?;
    without_jit(&mut config);
    let manager = PostgresConnectionManager::new(config, NoTls);
    let pool = r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(1))
        .connection_timeout(CONNECT_TIMEOUT)
        .error_handler(Box::new(r2d2::LoggingErrorHandler))
        .build(manager)?;
    Ok(pool)
}

/// Turns PostgreSQL's JIT compiler off for the pool's sessions (after any
/// `options` the URL gives). Every query here is short; JIT compiles a plan
/// whose *estimated* cost is high (a skip scan over a large table, a week of
/// per-minute counters) for 0.1–1 s before running it in a millisecond.
fn without_jit(config: &mut postgres::Config) {
    let options = match config.get_options() {
        Some(o) if !o.is_empty() => format!("{o} -c jit=off"),
        _ => "-c jit=off".to_string(),
    };
    config.options(&options);
}

/// Opens one plain connection (the database must exist and be migrated).
pub fn connect(url: &str) -> Result<Client, StoreError> {
    let config = prepare_database(url)?;
    config.connect(NoTls).map_err(|source| StoreError::Connect {
        target: describe(&config),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        let redact = crate::config::redact_url;
        assert_eq!(
            redact("postgresql://u:secret@h/db"),
            "postgresql://u:***@h/db"
        );
        assert_eq!(redact("postgresql://u@h/db"), "postgresql://u@h/db");
        let err = parse_url("postgresql://u:secret@h:notaport/db")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("secret"), "{err}");
    }
}
