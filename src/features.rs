//! Turning packets into the detector's features.
//!
//! Three features per packet:
//! - `log_size`: ln(1 + packet_size). Sizes span five orders of magnitude; on a
//!   log scale a 20-byte runt is as far from 500-byte traffic as a jumbo frame.
//! - `protocol_rarity`: how rare the protocol was in the training traffic.
//! - `dst_port_rarity`: how rare the destination port was (packets without a
//!   port are one category; ephemeral ports 49152-65535 are pooled, since
//!   return traffic spreads over them).
//!
//! Rarity is 0 for any value with at least [`RARE_SHARE`] of the training
//! traffic and log2(RARE_SHARE / share) below it; a value never seen counts as
//! half a packet. So common protocols and ports all look alike (the forest
//! never wastes a split telling TCP from UDP) while a rare one stands out.
//! Measured on generated traffic, raw shares as features cost 5 points of
//! precision and recall against size alone; rarity costs nothing.
//!
//! The frequency tables are learnt from the training packets and stored with
//! the model. Behaviour over time comes from [`crate::context`]; [`catalogue`]
//! names every feature of a row (per-packet and context), with the words and
//! unit an explanation shows.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

/// Names of the per-packet features, in column order.
pub const FEATURE_NAMES: [&str; 3] = ["log_size", "protocol_rarity", "dst_port_rarity"];

/// Which view of the traffic a feature belongs to; each view has a forest of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    /// The packet alone: size, protocol, port.
    Packet,
    /// How much its sender sends.
    Sender,
    /// How the client of its conversation (the end that started it) fans out.
    Client,
    /// How many clients the server of its conversation draws.
    Server,
    /// The rhythm of the source → destination pair.
    Pair,
}

impl Group {
    /// Every group, in row order.
    pub const ALL: [Group; 5] = [
        Group::Packet,
        Group::Sender,
        Group::Client,
        Group::Server,
        Group::Pair,
    ];

    /// The group's name as the API says it.
    pub fn name(self) -> &'static str {
        match self {
            Group::Packet => "packet",
            Group::Sender => "sender",
            Group::Client => "client",
            Group::Server => "server",
            Group::Pair => "pair",
        }
    }
}

/// One feature of a row, as an explanation shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureInfo {
    /// Column name, e.g. `src_ports_1s`.
    pub name: String,
    /// What it measures whatever the half-life, e.g. `src_ports`.
    pub family: String,
    /// Its half-life, seconds (context features only).
    pub half_life: Option<f64>,
    /// Its view.
    pub group: Group,
    /// What it measures, with `{src}`, `{dst}`, `{protocol}` and `{port}`
    /// standing for the packet's own values.
    pub label: String,
    /// Unit of the shown value ("" for a plain number).
    pub unit: &'static str,
    /// How the stored value relates to the shown one.
    pub scale: Scale,
    /// For features where only high values are suspect, the highest value
    /// they take: training adds a few rows pushed towards it, so the forest
    /// learns where the unseen high values are and isolates them early.
    pub ceiling: Option<f64>,
}

/// How a feature's stored value (what the forest sees) relates to the value
/// an explanation shows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    /// Shown as stored.
    Plain,
    /// Stored as ln(1 + shown) (packet size).
    Log1p,
    /// Stored as doublings above a floor, log2(rate / floor) (0 at or below
    /// it); shown as the rate, `floor` per second times 2^stored.
    Doublings {
        /// The floor, per second.
        floor: f64,
    },
}

impl FeatureInfo {
    /// The same feature as one of a family measured at half-life `h`.
    fn timed(mut self, family: &str, h: f64) -> FeatureInfo {
        self.family = family.to_string();
        self.half_life = Some(h);
        self
    }

    /// The value as a phrase: the number (see [`FeatureInfo::shown`]), or
    /// "at most" the floor for a rate at or below it.
    pub fn describe(&self, value: f64) -> String {
        match self.scale {
            Scale::Doublings { floor } if value <= 0.0 => {
                format!("at most {}", number(floor))
            }
            _ => number(self.shown(value)),
        }
    }

    /// The value as people read it (bytes for `log_size`, events per second
    /// for rates).
    pub fn shown(&self, value: f64) -> f64 {
        match self.scale {
            Scale::Plain => value,
            Scale::Log1p => value.exp_m1().round(),
            Scale::Doublings { floor } => floor * value.exp2(),
        }
    }
}

/// A half-life as a name suffix and in words: 1 → ("1s", "~1 s"), 0.1 → ("100ms", "~0.1 s").
pub fn half_life_words(h: f64) -> (String, String) {
    let suffix = if h >= 1.0 && h.fract() == 0.0 {
        format!("{h}s")
    } else {
        format!("{}ms", (h * 1000.0).round())
    };
    (suffix, format!("~{h} s"))
}

/// Every feature of a row under these half-lives, in column order: the
/// per-packet ones, then for each context group its features at each
/// half-life (see [`crate::context`] for how each is computed).
pub fn catalogue(half_lives: &[f64]) -> Vec<FeatureInfo> {
    let mut all = per_packet_features();
    all.extend(context_features(half_lives));
    all
}

/// The seed's three features.
fn per_packet_features() -> Vec<FeatureInfo> {
    vec![
        info(
            "log_size",
            Group::Packet,
            "size of this packet".into(),
            "bytes",
            Scale::Log1p,
            None,
        ),
        info(
            "protocol_rarity",
            Group::Packet,
            "rarity of protocol {protocol} in training traffic".into(),
            "bits",
            Scale::Plain,
            None,
        ),
        info(
            "dst_port_rarity",
            Group::Packet,
            "rarity of destination port {port} in training traffic".into(),
            "bits",
            Scale::Plain,
            None,
        ),
    ]
}

/// The context features at each of `half_lives`, then the pair's periodicity
/// (none without half-lives).
fn context_features(half_lives: &[f64]) -> Vec<FeatureInfo> {
    use crate::context::floors;
    let mut all = Vec::new();
    let doublings = |floor| Scale::Doublings { floor };
    for &h in half_lives {
        let (suffix, words) = half_life_words(h);
        let (packets, events) = (floors::packets(h), floors::events(h));
        let host = [
            (
                "src_rate",
                Group::Sender,
                "packets starting something (SYNs, requests) per second from {src}",
                "packets/s",
                doublings(packets),
            ),
            (
                "client_hosts",
                Group::Client,
                "new hosts per second contacted by {client}",
                "hosts/s",
                doublings(events),
            ),
            (
                "client_ports",
                Group::Client,
                "new destination ports per second tried by {client}",
                "ports/s",
                doublings(events),
            ),
            (
                "client_half_open",
                Group::Client,
                "SYNs from {client} left unanswered, beyond half (0: half or fewer, 1: all)",
                "",
                Scale::Plain,
            ),
            (
                "pair_conns",
                Group::Pair,
                "new connections per second from {client} to {server}",
                "connections/s",
                doublings(events),
            ),
            (
                "server_clients",
                Group::Server,
                "new clients per second contacting {server}",
                "hosts/s",
                doublings(events),
            ),
        ];
        for (name, group, label, unit, scale) in host {
            let ceiling = match scale {
                Scale::Doublings { .. } => floors::MAX_DOUBLINGS,
                _ => 1.0,
            };
            all.push(
                info(
                    &format!("{name}_{suffix}"),
                    group,
                    format!("{label} over {words}"),
                    unit,
                    scale,
                    Some(ceiling),
                )
                .timed(name, h),
            );
        }
    }
    if !half_lives.is_empty() {
        all.push(info(
            "pair_periodicity",
            Group::Pair,
            "periodicity of the pauses between bursts from {src} to {dst} over ~10 min \
             (1 = like clockwork, 0 = irregular)"
                .into(),
            "",
            Scale::Plain,
            Some(1.0),
        ));
    }
    all
}

fn info(
    name: &str,
    group: Group,
    label: String,
    unit: &'static str,
    scale: Scale,
    ceiling: Option<f64>,
) -> FeatureInfo {
    FeatureInfo {
        name: name.to_string(),
        family: name.to_string(),
        half_life: None,
        group,
        label,
        unit,
        scale,
        ceiling,
    }
}

/// A number as an explanation shows it: integers plainly, others to three
/// significant digits.
pub fn number(v: f64) -> String {
    if (v.fract() == 0.0 && v.abs() < 1e15) || v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Share of training traffic at or above which a protocol or port is common.
pub const RARE_SHARE: f64 = 0.01;

pub use crate::protocol::EPHEMERAL_START;

/// The fields of a packet the features are computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct PacketFields<'a> {
    /// IP packet length.
    pub packet_size: u16,
    /// Protocol name (upper case).
    pub protocol: &'a str,
    /// Destination port, if any.
    pub dst_port: Option<u16>,
}

impl<'a> PacketFields<'a> {
    /// The fields of a stored row (database integers, clamped to their wire ranges).
    pub fn from_stored(packet_size: i32, protocol: &'a str, dst_port: Option<i32>) -> Self {
        PacketFields {
            packet_size: u16::try_from(packet_size.max(0)).unwrap_or(u16::MAX),
            protocol,
            dst_port: dst_port.and_then(|p| u16::try_from(p).ok()),
        }
    }
}

impl<'a> From<&'a crate::protocol::Packet> for PacketFields<'a> {
    fn from(p: &'a crate::protocol::Packet) -> Self {
        PacketFields {
            packet_size: p.packet_size,
            protocol: &p.protocol,
            dst_port: p.dst_port,
        }
    }
}

/// Frequency tables learnt from training traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureEncoder {
    protocol_share: BTreeMap<String, f64>,
    port_share: BTreeMap<u16, f64>,
    no_port_share: f64,
    /// The share given to a value never seen: half a training packet.
    unseen_share: f64,
    /// Same tables for lookups on the hot path (rebuilt after loading).
    #[serde(skip)]
    protocol_fast: HashMap<String, f64, ahash::RandomState>,
}

impl FeatureEncoder {
    /// Learns the protocol and port shares of `packets`.
    pub fn fit<'a>(packets: impl IntoIterator<Item = PacketFields<'a>>) -> FeatureEncoder {
        let mut protocols: BTreeMap<String, f64> = BTreeMap::new();
        let mut ports: BTreeMap<u16, f64> = BTreeMap::new();
        let (mut no_port, mut total) = (0.0, 0.0);
        for p in packets {
            total += 1.0;
            *protocols.entry(p.protocol.to_string()).or_default() += 1.0;
            match p.dst_port {
                Some(port) => *ports.entry(port_key(port)).or_default() += 1.0,
                None => no_port += 1.0,
            }
        }
        let total: f64 = if total > 0.0 { total } else { 1.0 };
        protocols.values_mut().for_each(|v| *v /= total);
        ports.values_mut().for_each(|v| *v /= total);
        FeatureEncoder {
            protocol_fast: fast_table(&protocols),
            protocol_share: protocols,
            port_share: ports,
            no_port_share: no_port / total,
            unseen_share: 0.5 / total,
        }
    }

    /// Rebuilds the lookup table after deserialisation.
    pub fn prepare(&mut self) {
        self.protocol_fast = fast_table(&self.protocol_share);
    }

    /// The feature row of one packet.
    pub fn encode(&self, p: &PacketFields<'_>) -> [f64; 3] {
        let protocol = self.protocol_fast.get(p.protocol).copied();
        let port = match p.dst_port {
            Some(port) => self.port_share.get(&port_key(port)).copied(),
            None => Some(self.no_port_share),
        };
        [
            f64::from(p.packet_size).ln_1p(),
            self.rarity(protocol),
            self.rarity(port),
        ]
    }

    fn rarity(&self, share: Option<f64>) -> f64 {
        let share = share.filter(|s| *s > 0.0).unwrap_or(self.unseen_share);
        if share >= RARE_SHARE {
            0.0
        } else {
            (RARE_SHARE / share).log2()
        }
    }
}

/// The protocol shares as a hash table for the hot path.
fn fast_table(shares: &BTreeMap<String, f64>) -> HashMap<String, f64, ahash::RandomState> {
    let mut table = HashMap::with_capacity_and_hasher(shares.len(), ahash::RandomState::new());
    table.extend(shares.iter().map(|(k, v)| (k.clone(), *v)));
    table
}

/// Ephemeral ports are pooled into one key.
fn port_key(port: u16) -> u16 {
    port.min(EPHEMERAL_START)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(size: u16, protocol: &str, port: Option<u16>) -> PacketFields<'_> {
        PacketFields {
            packet_size: size,
            protocol,
            dst_port: port,
        }
    }

    #[test]
    fn common_values_have_no_rarity_and_rare_or_unseen_ones_do() {
        // 1,000 packets: TCP/443 common, one GRE packet, one packet to port 9.
        let mut training: Vec<PacketFields<'_>> =
            (0..998).map(|_| fields(100, "TCP", Some(443))).collect();
        training.push(fields(100, "GRE", None));
        training.push(fields(100, "UDP", Some(9)));
        let enc = FeatureEncoder::fit(training.iter().cloned());
        assert_eq!(
            enc.encode(&fields(100, "TCP", Some(443))),
            [101f64.ln(), 0.0, 0.0]
        );
        // Seen once in 1,000: log2(0.01 / 0.001).
        let once = (10.0f64).log2();
        let gre = enc.encode(&fields(0, "GRE", None));
        assert_eq!(gre[0], 0.0);
        assert!((gre[1] - once).abs() < 1e-12);
        assert!((gre[2] - once).abs() < 1e-12);
        // Never seen: half a packet, one more bit of rarity.
        let unseen = enc.encode(&fields(65535, "SCTP", Some(7)));
        assert_eq!(unseen[0], 65536f64.ln());
        assert!((unseen[1] - (once + 1.0)).abs() < 1e-12);
        assert!((unseen[2] - (once + 1.0)).abs() < 1e-12);
    }

    #[test]
    fn numbers_read_plainly() {
        assert_eq!(number(57.0), "57");
        assert_eq!(number(0.1234), "0.123");
        assert_eq!(number(4.56789), "4.57");
        assert_eq!(number(1234.4), "1234");
    }

    #[test]
    fn ephemeral_ports_are_one_category() {
        let training: Vec<PacketFields<'_>> = (0..100)
            .map(|i| fields(100, "TCP", Some(50000 + i)))
            .collect();
        let enc = FeatureEncoder::fit(training.iter().cloned());
        assert_eq!(enc.encode(&fields(100, "TCP", Some(61234)))[2], 0.0);
    }

    #[test]
    fn serde_round_trip_keeps_the_lookups() {
        let enc = FeatureEncoder::fit([fields(1, "TCP", Some(80))]);
        let mut back: FeatureEncoder =
            serde_json::from_str(&serde_json::to_string(&enc).unwrap()).unwrap();
        back.prepare();
        assert_eq!(back, enc);
        assert_eq!(
            back.encode(&fields(1, "TCP", Some(80))),
            enc.encode(&fields(1, "TCP", Some(80)))
        );
    }
}
