//! The documented configuration file, written from the key declarations: the
//! shipped `netsentinel.toml` is exactly [`render`] of the defaults (a unit
//! test holds them equal), and `netsentinel config` prints it for any
//! configuration.

use super::keys::{sections, KEYS};
use super::Config;

/// The comment block at the top of the file.
const HEADER: &str = "\
# NetSentinel configuration: the documented defaults.
#
# Lookup: `--config PATH`, else ./netsentinel.toml, else these same values built in.
# Overrides, in rising order: DATABASE_URL (for database.url), then
# NETSENTINEL_<SECTION>_<KEY> (e.g. NETSENTINEL_SERVER_PORT=7000), then command-line
# flags (e.g. --set detector.trees=200). An unknown key, a value out of range or two
# keys that contradict each other stop the program with exit code 2 and a message
# naming the keys and what is allowed. Regenerate this file with
# `netsentinel config --defaults > netsentinel.toml`.
";

/// `config` as a documented TOML file: every key with its help line above it.
/// `redact` replaces secrets (the dashboard token, a password in the URL).
pub fn render(config: &Config, redact: bool) -> String {
    let mut out = String::from(HEADER);
    for section in sections() {
        out.push_str(&format!("\n[{section}]\n"));
        for spec in KEYS.iter().filter(|s| s.section == section) {
            let help = spec.help.trim().trim_end_matches('.');
            match spec.kind.range_note() {
                Some(range) => out.push_str(&format!("# {help} ({range}).\n")),
                None => out.push_str(&format!("# {help}.\n")),
            }
            let mut value = (spec.get)(config);
            if redact {
                value = redacted(&spec.dotted(), value);
            }
            out.push_str(&format!("{} = {value}\n", spec.key));
        }
    }
    out
}

fn redacted(key: &str, value: toml::Value) -> toml::Value {
    match (key, value) {
        (
            "dashboard.token" | "dashboard.read_token" | "alerts.webhook_secret",
            toml::Value::String(s),
        ) if !s.is_empty() => toml::Value::String("(set; not shown)".into()),
        ("database.url", toml::Value::String(s)) => toml::Value::String(redact_url(&s)),
        (_, v) => v,
    }
}

/// A connection URL with its password replaced by `***`, for messages and
/// printed configurations: `postgresql://user:secret@host` →
/// `postgresql://user:***@host`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &creds[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
