//! Rules between keys: each value may be fine alone and still contradict
//! another. [`check`] runs after every source (file, environment, flags) is
//! applied; each rule's message names every key involved and what to change.

use super::{Config, ConfigError};

/// The first rule `config` breaks, if any.
pub fn check(config: &Config) -> Result<(), ConfigError> {
    let rules: [fn(&Config) -> Option<ConfigError>; 7] = [
        counters_outlive_packets,
        incidents_outlive_packets,
        tls_needs_both,
        training_fits_window,
        distinct_rows_fit_window,
        pool_has_room,
        ports_differ,
    ];
    match rules.iter().find_map(|rule| rule(config)) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn conflict(keys: &[&str], message: String) -> ConfigError {
    ConfigError::Conflict {
        keys: keys
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(" and "),
        message,
    }
}

/// The first model is trained on the window once `min_train_packets` are
/// stored; a window smaller than that never holds enough.
fn training_fits_window(c: &Config) -> Option<ConfigError> {
    let d = &c.detector;
    (d.min_train_packets > d.train_window as u64).then(|| {
        conflict(
            &["detector.min_train_packets", "detector.train_window"],
            format!(
                "min_train_packets = {} is more than train_window = {}: a model is trained on at \
                 most train_window packets, so none would ever be trained; lower \
                 detector.min_train_packets or raise detector.train_window",
                d.min_train_packets, d.train_window
            ),
        )
    })
}

/// Counters and incidents keep their own, longer retention: shorter than the
/// packets' would leave charts blank over days whose packets are still there.
fn counters_outlive_packets(c: &Config) -> Option<ConfigError> {
    outlives(
        "storage.counter_retention_days",
        c.storage.counter_retention_days,
        c.storage.retention_days,
        "the charts and totals per minute",
    )
}

fn incidents_outlive_packets(c: &Config) -> Option<ConfigError> {
    outlives(
        "storage.incident_retention_days",
        c.storage.incident_retention_days,
        c.storage.retention_days,
        "the incidents",
    )
}

fn outlives(key: &str, days: u32, packet_days: u32, what: &str) -> Option<ConfigError> {
    (days != 0 && packet_days != 0 && days < packet_days).then(|| {
        conflict(
            &[key, "storage.retention_days"],
            format!(
                "{key} = {days} is shorter than retention_days = {packet_days}: {what} would \
                 vanish while their packets are still kept; set {key} to {packet_days} or more \
                 (or 0 to keep them all)"
            ),
        )
    })
}

/// TLS needs a certificate and its key.
fn tls_needs_both(c: &Config) -> Option<ConfigError> {
    let s = &c.server;
    (s.tls_cert.is_some() != s.tls_key.is_some()).then(|| {
        conflict(
            &["server.tls_cert", "server.tls_key"],
            "TLS needs both a certificate (server.tls_cert) and its private key \
             (server.tls_key); set both, or neither for plain TCP"
                .to_string(),
        )
    })
}

/// A window must be able to hold the distinct rows training asks for.
fn distinct_rows_fit_window(c: &Config) -> Option<ConfigError> {
    let d = &c.detector;
    (d.min_distinct_rows > d.train_window).then(|| {
        conflict(
            &["detector.min_distinct_rows", "detector.train_window"],
            format!(
                "min_distinct_rows = {} is more than train_window = {}: no window could hold \
                 that many distinct rows, so no model would ever be trained; lower \
                 detector.min_distinct_rows or raise detector.train_window",
                d.min_distinct_rows, d.train_window
            ),
        )
    })
}

/// The worker keeps one pooled connection for itself; the trainer and the
/// dashboard need at least one more between them.
fn pool_has_room(c: &Config) -> Option<ConfigError> {
    (c.database.pool_size < 2).then(|| {
        conflict(
            &["database.pool_size"],
            format!(
                "pool_size = {} leaves no connection for the trainer and the dashboard: the \
                 worker holds one for itself; set database.pool_size to 2 or more",
                c.database.pool_size
            ),
        )
    })
}

/// The packet listener and the dashboard cannot share a port on one address.
fn ports_differ(c: &Config) -> Option<ConfigError> {
    let (s, d) = (&c.server, &c.dashboard);
    let wildcard = |h: &str| matches!(h, "0.0.0.0" | "::" | "[::]");
    let overlap = s.host == d.host || wildcard(&s.host) || wildcard(&d.host);
    (s.port != 0 && s.port == d.port && overlap).then(|| {
        conflict(
            &["server.port", "dashboard.port"],
            format!(
                "both are {} on {} and {}: the packet listener and the dashboard need ports of \
                 their own; change one of them",
                s.port, s.host, d.host
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass() {
        assert!(check(&Config::default()).is_ok());
    }

    #[test]
    fn min_train_packets_above_the_window_names_both_keys() {
        let mut c = Config::default();
        c.detector.min_train_packets = 20_000;
        let e = check(&c).unwrap_err().to_string();
        assert!(
            e.contains("detector.min_train_packets") && e.contains("detector.train_window"),
            "{e}"
        );
        assert!(e.contains("20000") && e.contains("10000"), "{e}");
        c.detector.min_train_packets = 10_000;
        assert!(check(&c).is_ok(), "equal is fine");
    }

    #[test]
    fn a_pool_of_one_is_refused_with_the_reason() {
        let mut c = Config::default();
        c.database.pool_size = 1;
        let e = check(&c).unwrap_err().to_string();
        assert!(
            e.contains("database.pool_size") && e.contains("worker"),
            "{e}"
        );
    }

    #[test]
    fn same_port_for_listener_and_dashboard_is_refused_unless_zero() {
        let mut c = Config::default();
        c.dashboard.port = c.server.port;
        let e = check(&c).unwrap_err().to_string();
        assert!(
            e.contains("server.port") && e.contains("dashboard.port"),
            "{e}"
        );
        c.dashboard.host = "10.0.0.1".into();
        assert!(check(&c).is_ok(), "different addresses");
        c.server.host = "0.0.0.0".into();
        assert!(check(&c).is_err(), "the wildcard covers every address");
        c.server.port = 0;
        c.dashboard.port = 0;
        assert!(check(&c).is_ok(), "port 0: each gets a free port");
    }
}
