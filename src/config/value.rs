//! What kind of value each key takes, and the checks every source shares: a
//! TOML value from the file, or text from the environment or a flag, becomes
//! a [`Checked`] value only if it passes its key's rule.

use std::fmt;

use crate::protocol::{is_valid_protocol_name, PROTOCOL_NAME_RULE};

/// What kind of value a key takes, with its limits.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Non-empty text.
    Text,
    /// Text that may be empty (empty = unset).
    OptionalText,
    /// An integer in `min..=max`.
    Int {
        /// Smallest allowed.
        min: i64,
        /// Largest allowed.
        max: i64,
    },
    /// A float `v` with `min < v <= max` (when `open_min`) or `min <= v <= max`.
    Float {
        /// Lower bound.
        min: f64,
        /// Upper bound (included).
        max: f64,
        /// The lower bound is excluded.
        open_min: bool,
    },
    /// A non-empty list of protocol names.
    ProtocolList,
    /// A list of at most `max_len` numbers, each in `(min, max]`, ascending, none twice.
    NumberList {
        /// Lower bound (excluded).
        min: f64,
        /// Upper bound (included).
        max: f64,
        /// Most numbers.
        max_len: usize,
    },
    /// `true` or `false`.
    Bool,
    /// A list (possibly empty) of host names, each 1–253 characters of
    /// letters, digits, `.` and `-`.
    HostList,
    /// An address `SCHEME://HOST[:PORT][/PATH]` with one of `schemes` (empty = unset).
    OptionalUrl {
        /// The schemes allowed.
        schemes: &'static [&'static str],
        /// A port must be given.
        port_required: bool,
    },
}

/// Splits `SCHEME://HOST[:PORT][/PATH]` into (scheme, host, port, path); the
/// host may be a name, an IPv4 address or a bracketed IPv6 address. `None`
/// when it is not of that form.
pub fn split_url(raw: &str) -> Option<(&str, &str, Option<u16>, &str)> {
    let (scheme, rest) = raw.split_once("://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?.parse::<u16>().ok()?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, p)) => (host, Some(p.parse::<u16>().ok()?)),
            None => (authority, None),
        }
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:_".contains(c));
    (host_ok && !scheme.is_empty() && port != Some(0)).then_some((scheme, host, port, path))
}

fn check_url(schemes: &[&str], port_required: bool, raw: &str) -> bool {
    raw.is_empty()
        || split_url(raw).is_some_and(|(scheme, _, port, path)| {
            schemes.contains(&scheme)
                && (!port_required || (port.is_some() && path.is_empty()))
                && !path.chars().any(|c| c.is_whitespace() || c.is_control())
        })
}

/// The rule of one name in a [`Kind::HostList`].
pub const HOST_NAME_RULE: &str = "1-253 characters of letters, digits, '.' and '-'";

fn is_valid_host_name(name: &str) -> bool {
    (1..=253).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

/// An integer key's kind.
pub const fn int(min: i64, max: i64) -> Kind {
    Kind::Int { min, max }
}

impl Kind {
    /// What is allowed, as the error messages say it.
    pub fn allowed(self) -> String {
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
            Kind::NumberList { min, max, max_len } => format!(
                "a list of at most {max_len} numbers, ascending, each in ({min}, {max}] (empty: none)"
            ),
            Kind::Bool => "true or false".into(),
            Kind::HostList => format!("a list of host names, each {HOST_NAME_RULE} (empty: none)"),
            Kind::OptionalUrl {
                schemes,
                port_required: true,
            } => format!(
                "{}://HOST:PORT (empty = unset)",
                schemes.join("://HOST:PORT or ")
            ),
            Kind::OptionalUrl { schemes, .. } => format!(
                "a URL {}://HOST[:PORT][/PATH] (empty = unset)",
                schemes.join("|")
            ),
        }
    }

    /// The range as the documented file shows it after a key's help, if any.
    pub fn range_note(self) -> Option<String> {
        match self {
            Kind::Int { min, max } => Some(format!("{min}..={max}")),
            Kind::Float {
                min,
                max,
                open_min: true,
            } => Some(format!("({min}, {max}]")),
            Kind::Float { min, max, .. } => Some(format!("[{min}, {max}]")),
            Kind::ProtocolList => Some(format!("each {PROTOCOL_NAME_RULE}")),
            Kind::NumberList { min, max, max_len } => Some(format!(
                "at most {max_len}, ascending, each in ({min}, {max}]"
            )),
            Kind::HostList => Some(format!("each {HOST_NAME_RULE}")),
            Kind::Text | Kind::OptionalText | Kind::Bool | Kind::OptionalUrl { .. } => None,
        }
    }
}

/// A value after its rule was checked, before it is stored.
#[derive(Debug, Clone)]
pub enum Checked {
    /// Text.
    Text(String),
    /// An integer within its key's range.
    Int(i64),
    /// A float within its key's range.
    Float(f64),
    /// A list of names.
    List(Vec<String>),
    /// A list of numbers within their key's rule.
    Numbers(Vec<f64>),
    /// A boolean.
    Bool(bool),
}

/// Why a value was refused: what was given, for the message.
#[derive(Debug)]
pub struct Refused(pub String);

/// Checks a typed TOML value against `kind`.
pub fn check_toml(kind: Kind, value: &toml::Value) -> Result<Checked, Refused> {
    let refused = || Refused(value.to_string());
    match (kind, value) {
        (Kind::Text | Kind::OptionalText | Kind::OptionalUrl { .. }, toml::Value::String(s)) => {
            check_text(kind, s).map_err(|_| refused())
        }
        (Kind::Int { .. }, toml::Value::Integer(i)) => check_int(kind, *i),
        (Kind::Float { .. }, toml::Value::Float(f)) => check_float(kind, *f),
        (Kind::Float { .. }, toml::Value::Integer(i)) => check_float(kind, *i as f64),
        (Kind::NumberList { .. }, toml::Value::Array(items)) => {
            let numbers: Option<Vec<f64>> = items
                .iter()
                .map(|item| match item {
                    toml::Value::Float(f) => Some(*f),
                    toml::Value::Integer(i) => Some(*i as f64),
                    _ => None,
                })
                .collect();
            check_numbers(kind, numbers.ok_or_else(refused)?).map_err(|_| refused())
        }
        (Kind::Bool, toml::Value::Boolean(b)) => Ok(Checked::Bool(*b)),
        (Kind::ProtocolList, toml::Value::Array(items)) => {
            let names: Option<Vec<String>> = items
                .iter()
                .map(|item| item.as_str().map(str::to_string))
                .collect();
            check_protocols(names.ok_or_else(refused)?, refused)
        }
        (Kind::HostList, toml::Value::Array(items)) => {
            let names: Option<Vec<String>> = items
                .iter()
                .map(|item| item.as_str().map(str::to_string))
                .collect();
            check_hosts(names.ok_or_else(refused)?, refused)
        }
        _ => Err(refused()),
    }
}

/// Checks a value given as text (environment or flag) against `kind`.
pub fn check_text(kind: Kind, raw: &str) -> Result<Checked, Refused> {
    let refused = || Refused(format!("{raw:?}"));
    match kind {
        Kind::Text if raw.trim().is_empty() => Err(refused()),
        Kind::Text | Kind::OptionalText => Ok(Checked::Text(raw.to_string())),
        Kind::OptionalUrl {
            schemes,
            port_required,
        } => {
            if check_url(schemes, port_required, raw.trim()) {
                Ok(Checked::Text(raw.trim().to_string()))
            } else {
                Err(refused())
            }
        }
        Kind::Int { .. } => check_int(kind, raw.trim().parse().map_err(|_| refused())?),
        Kind::Float { .. } => check_float(kind, raw.trim().parse().map_err(|_| refused())?),
        Kind::NumberList { .. } => {
            // "1,10,60" or, as the file writes it, "[1.0, 10.0, 60.0]".
            let list = raw.trim();
            let list = list
                .strip_prefix('[')
                .and_then(|l| l.strip_suffix(']'))
                .unwrap_or(list);
            let numbers: Result<Vec<f64>, _> = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::parse::<f64>)
                .collect();
            check_numbers(kind, numbers.map_err(|_| refused())?).map_err(|_| refused())
        }
        Kind::Bool => match raw.trim() {
            "true" | "1" | "yes" => Ok(Checked::Bool(true)),
            "false" | "0" | "no" => Ok(Checked::Bool(false)),
            _ => Err(refused()),
        },
        Kind::ProtocolList => {
            let names = raw
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            check_protocols(names, refused)
        }
        Kind::HostList => {
            let list = raw.trim();
            let list = list
                .strip_prefix('[')
                .and_then(|l| l.strip_suffix(']'))
                .unwrap_or(list);
            let names = list
                .split(',')
                .map(|s| s.trim().trim_matches('"').to_string())
                .filter(|s| !s.is_empty())
                .collect();
            check_hosts(names, refused)
        }
    }
}

fn check_hosts(names: Vec<String>, refused: impl Fn() -> Refused) -> Result<Checked, Refused> {
    if !names.iter().all(|n| is_valid_host_name(n)) {
        return Err(refused());
    }
    Ok(Checked::List(names))
}

fn check_int(kind: Kind, i: i64) -> Result<Checked, Refused> {
    match kind {
        Kind::Int { min, max } if (min..=max).contains(&i) => Ok(Checked::Int(i)),
        _ => Err(Refused(i.to_string())),
    }
}

fn check_float(kind: Kind, f: f64) -> Result<Checked, Refused> {
    let ok = match kind {
        Kind::Float { min, max, open_min } => {
            f.is_finite() && f <= max && if open_min { f > min } else { f >= min }
        }
        _ => false,
    };
    if ok {
        Ok(Checked::Float(f))
    } else {
        Err(Refused(f.to_string()))
    }
}

fn check_numbers(kind: Kind, numbers: Vec<f64>) -> Result<Checked, Refused> {
    let Kind::NumberList { min, max, max_len } = kind else {
        return Err(Refused(String::new()));
    };
    let ok = numbers.len() <= max_len
        && numbers
            .iter()
            .all(|v| v.is_finite() && *v > min && *v <= max)
        && numbers.windows(2).all(|w| w[0] < w[1]);
    if ok {
        Ok(Checked::Numbers(numbers))
    } else {
        Err(Refused(format!("{numbers:?}")))
    }
}

fn check_protocols(names: Vec<String>, refused: impl Fn() -> Refused) -> Result<Checked, Refused> {
    if names.is_empty() || !names.iter().all(|n| is_valid_protocol_name(n)) {
        return Err(refused());
    }
    Ok(Checked::List(names))
}

/// A Rust type a key is stored as: built from its checked value, shown as TOML.
///
/// The conversions cannot truncate: every integer key's declared range fits
/// its type (a unit test sets each key to its bounds and reads them back).
pub trait Setting: Sized {
    /// The stored value of a checked one.
    fn from_checked(v: Checked) -> Self;
    /// The value as the documented file writes it.
    fn to_toml(&self) -> toml::Value;
}

macro_rules! int_setting {
    ($($t:ty),*) => {$(
        impl Setting for $t {
            fn from_checked(v: Checked) -> Self {
                match v {
                    Checked::Int(i) => i as $t,
                    other => unreachable!("integer keys are checked as integers, got {other:?}"),
                }
            }
            fn to_toml(&self) -> toml::Value {
                toml::Value::Integer(*self as i64)
            }
        }
    )*};
}
int_setting!(u16, u32, u64, usize);

impl Setting for f64 {
    fn from_checked(v: Checked) -> Self {
        match v {
            Checked::Float(f) => f,
            other => unreachable!("float keys are checked as floats, got {other:?}"),
        }
    }
    fn to_toml(&self) -> toml::Value {
        toml::Value::Float(*self)
    }
}

impl Setting for String {
    fn from_checked(v: Checked) -> Self {
        match v {
            Checked::Text(s) => s,
            other => unreachable!("text keys are checked as text, got {other:?}"),
        }
    }
    fn to_toml(&self) -> toml::Value {
        toml::Value::String(self.clone())
    }
}

impl Setting for Option<String> {
    fn from_checked(v: Checked) -> Self {
        Some(String::from_checked(v)).filter(|s| !s.is_empty())
    }
    fn to_toml(&self) -> toml::Value {
        toml::Value::String(self.clone().unwrap_or_default())
    }
}

impl Setting for Vec<f64> {
    fn from_checked(v: Checked) -> Self {
        match v {
            Checked::Numbers(l) => l,
            other => unreachable!("number-list keys are checked as numbers, got {other:?}"),
        }
    }
    fn to_toml(&self) -> toml::Value {
        toml::Value::Array(self.iter().map(|v| toml::Value::Float(*v)).collect())
    }
}

impl Setting for bool {
    fn from_checked(v: Checked) -> Self {
        match v {
            Checked::Bool(b) => b,
            other => unreachable!("boolean keys are checked as booleans, got {other:?}"),
        }
    }
    fn to_toml(&self) -> toml::Value {
        toml::Value::Boolean(*self)
    }
}

impl Setting for Vec<String> {
    fn from_checked(v: Checked) -> Self {
        match v {
            Checked::List(l) => l,
            other => unreachable!("list keys are checked as lists, got {other:?}"),
        }
    }
    fn to_toml(&self) -> toml::Value {
        toml::Value::Array(self.iter().cloned().map(toml::Value::String).collect())
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
