//! Turning packets into the detector's features.
//!
//! Three features per packet:
//! - `log_size`: ln(1 + packet_size). Sizes span five orders of magnitude; on a
//!   log scale a 20-byte runt is as far from 500-byte traffic as a jumbo frame.
//! - `protocol_share`: the protocol's share of the training traffic, so a rare or
//!   never-seen protocol (share 0) stands out.
//! - `dst_port_share`: the destination port's share of the training traffic
//!   (packets without a port count as one category of their own).
//!
//! The shares are learnt from the training packets and stored with the model.
//! This is the place where per-source context will be added later.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

/// Names of the features, in column order.
pub const FEATURE_NAMES: [&str; 3] = ["log_size", "protocol_share", "dst_port_share"];

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

/// Frequency tables learnt from training traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureEncoder {
    protocol_share: BTreeMap<String, f64>,
    port_share: BTreeMap<u16, f64>,
    no_port_share: f64,
    /// Same tables for lookups on the hot path (rebuilt after loading).
    #[serde(skip)]
    protocol_fast: HashMap<String, f64>,
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
                Some(port) => *ports.entry(port).or_default() += 1.0,
                None => no_port += 1.0,
            }
        }
        let total: f64 = if total > 0.0 { total } else { 1.0 };
        protocols.values_mut().for_each(|v| *v /= total);
        ports.values_mut().for_each(|v| *v /= total);
        FeatureEncoder {
            protocol_fast: protocols.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            protocol_share: protocols,
            port_share: ports,
            no_port_share: no_port / total,
        }
    }

    /// Rebuilds the lookup table after deserialisation.
    pub fn prepare(&mut self) {
        self.protocol_fast = self
            .protocol_share
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
    }

    /// The feature row of one packet.
    pub fn encode(&self, p: &PacketFields<'_>) -> [f64; 3] {
        let protocol = self.protocol_fast.get(p.protocol).copied().unwrap_or(0.0);
        let port = match p.dst_port {
            Some(port) => self.port_share.get(&port).copied().unwrap_or(0.0),
            None => self.no_port_share,
        };
        [f64::from(p.packet_size).ln_1p(), protocol, port]
    }
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
    fn shares_are_learnt_and_unseen_values_score_zero() {
        let training = [
            fields(100, "TCP", Some(443)),
            fields(200, "TCP", Some(443)),
            fields(300, "UDP", Some(53)),
            fields(400, "ICMP", None),
        ];
        let enc = FeatureEncoder::fit(training.iter().cloned());
        assert_eq!(
            enc.encode(&fields(100, "TCP", Some(443))),
            [101f64.ln(), 0.5, 0.5]
        );
        assert_eq!(enc.encode(&fields(0, "ICMP", None)), [0.0, 0.25, 0.25]);
        assert_eq!(
            enc.encode(&fields(65535, "GRE", Some(9))),
            [65536f64.ln(), 0.0, 0.0]
        );
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
