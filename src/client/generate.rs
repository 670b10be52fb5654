//! The traffic generator: random packets like the seed's, with a known share of
//! injected anomalies. The truth (injected or not) stays with the client and
//! never goes on the wire.

use std::net::{IpAddr, Ipv4Addr};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::protocol::Packet;

/// Normal packet sizes, bytes.
pub const NORMAL_SIZES: std::ops::RangeInclusive<u16> = 64..=1500;
/// Anomalous giants, bytes.
pub const GIANT_SIZES: std::ops::RangeInclusive<u16> = 9000..=65535;
/// Anomalous runts, bytes.
pub const RUNT_SIZES: std::ops::RangeInclusive<u16> = 1..=40;
/// Ephemeral source ports.
const EPHEMERAL: std::ops::RangeInclusive<u16> = 49152..=65535;

/// Destination ports that fit a protocol; `None` means the protocol has no ports.
fn service_ports(protocol: &str) -> Option<&'static [u16]> {
    match protocol {
        "HTTP" => Some(&[80]),
        "HTTPS" => Some(&[443]),
        "ICMP" | "ICMPV6" => None,
        "UDP" => Some(&[53, 123, 161, 514]),
        "DNS" => Some(&[53]),
        "SSH" => Some(&[22]),
        _ => Some(&[22, 25, 110, 143, 3306, 5432, 8080]),
    }
}

/// A seeded packet generator.
pub struct Generator {
    rng: StdRng,
    protocols: Vec<String>,
    anomaly_ratio: f64,
}

impl Generator {
    /// `protocols` are the names to draw from (upper-cased); `anomaly_ratio` in [0, 1].
    pub fn new(protocols: &[String], anomaly_ratio: f64, seed: u64) -> Generator {
        Generator {
            rng: StdRng::seed_from_u64(seed),
            protocols: protocols.iter().map(|p| p.to_ascii_uppercase()).collect(),
            anomaly_ratio,
        }
    }

    fn address(&mut self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(
            self.rng.random_range(1..=223),
            self.rng.random(),
            self.rng.random(),
            self.rng.random_range(1..=254),
        ))
    }

    /// The next packet and whether it is an injected anomaly.
    pub fn next_packet(&mut self) -> (Packet, bool) {
        let protocol = self.protocols[self.rng.random_range(0..self.protocols.len())].clone();
        let anomalous = self.rng.random_bool(self.anomaly_ratio);
        let packet_size = if !anomalous {
            self.rng.random_range(NORMAL_SIZES)
        } else if self.rng.random_bool(0.5) {
            self.rng.random_range(GIANT_SIZES)
        } else {
            self.rng.random_range(RUNT_SIZES)
        };
        let (src_port, dst_port) = match service_ports(&protocol) {
            Some(ports) => (
                Some(self.rng.random_range(EPHEMERAL)),
                Some(ports[self.rng.random_range(0..ports.len())]),
            ),
            None => (None, None),
        };
        let record = Packet {
            seq: None,
            source_ip: self.address(),
            dest_ip: self.address(),
            packet_size,
            protocol,
            src_port,
            dst_port,
            timestamp: None,
        };
        (record, anomalous)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_protocols() -> Vec<String> {
        ["TCP", "UDP", "ICMP", "HTTP", "HTTPS"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn fixed_seed_gives_the_expected_mix_and_ratio() {
        let mut g = Generator::new(&default_protocols(), 0.1, 7);
        let n = 20_000;
        let mut per_protocol = std::collections::HashMap::new();
        let mut injected = 0;
        for _ in 0..n {
            let (p, anomalous) = g.next_packet();
            *per_protocol.entry(p.protocol.clone()).or_insert(0) += 1;
            if anomalous {
                injected += 1;
                assert!(
                    RUNT_SIZES.contains(&p.packet_size) || GIANT_SIZES.contains(&p.packet_size)
                );
            } else {
                assert!(NORMAL_SIZES.contains(&p.packet_size));
            }
            match p.protocol.as_str() {
                "HTTP" => assert_eq!(p.dst_port, Some(80)),
                "HTTPS" => assert_eq!(p.dst_port, Some(443)),
                "ICMP" => assert_eq!((p.src_port, p.dst_port), (None, None)),
                _ => assert!(p.src_port.unwrap() >= 49152),
            }
        }
        let ratio = injected as f64 / n as f64;
        assert!((ratio - 0.1).abs() < 0.01, "ratio {ratio}");
        assert_eq!(per_protocol.len(), 5);
        for (protocol, count) in per_protocol {
            let share = count as f64 / n as f64;
            assert!((share - 0.2).abs() < 0.015, "{protocol}: {share}");
        }
    }

    #[test]
    fn same_seed_same_traffic() {
        let mut a = Generator::new(&default_protocols(), 0.1, 1);
        let mut b = Generator::new(&default_protocols(), 0.1, 1);
        for _ in 0..100 {
            assert_eq!(a.next_packet(), b.next_packet());
        }
    }

    #[test]
    fn ratio_zero_and_one() {
        let mut none = Generator::new(&default_protocols(), 0.0, 1);
        assert!((0..1000).all(|_| !none.next_packet().1));
        let mut all = Generator::new(&default_protocols(), 1.0, 1);
        assert!((0..1000).all(|_| all.next_packet().1));
    }
}
