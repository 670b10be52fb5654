//! Speed and memory of the context features (issue #11), on one core:
//!
//! - feature extraction (the tracker's per-packet update) and scoring (every
//!   view's forest) of generated traffic with a model trained on it, against
//!   the per-packet features alone (no half-lives) measured in the same run;
//! - the whole judging path where every packet comes from a new source (the
//!   pipeline bench's traffic: the worst case for the tables);
//! - the tracker's memory with 1,000,000 streams: a million distinct sources,
//!   each talking to its own destination on its own port, with
//!   `detector.max_streams` = 1,000,000: bytes per entry and in all, from the
//!   tables' own accounting and from the process's resident memory.
//!
//! `cargo bench --bench context` (`BENCH_PACKETS`, default 1,000,000 packets;
//! `BENCH_STREAMS`, default 1,000,000, 0 to skip the memory part).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use netsentinel::client::generate::{Generator, Plan, Scenario};
use netsentinel::config::DetectorConfig;
use netsentinel::context::{ContextConfig, Observation, Tracker};
use netsentinel::detector::Detector;
use netsentinel::features::PacketFields;
use netsentinel::judge::packet_time;
use netsentinel::protocol::Packet;

#[path = "../tests/common/mod.rs"]
mod common;

/// Rows the model is trained on (the default training window).
const TRAIN_ROWS: usize = 10_000;
/// Packets scored at a time (the server's batch).
const BATCH: usize = 4096;

fn traffic(n: usize) -> Vec<Packet> {
    let plan = Plan::new(Some(n as u64), Some(Scenario::Mixed));
    let mut g = Generator::new(plan, 7);
    (0..n).map(|_| g.next_packet().0).collect()
}

/// Seconds to extract the context of every packet, and the rows.
fn extract(cfg: &DetectorConfig, packets: &[Packet], times: &[f64]) -> (f64, Vec<f64>) {
    let mut tracker = Tracker::new(&ContextConfig {
        half_lives: cfg.half_lives.clone(),
        max_streams: cfg.max_streams,
    });
    let w = tracker.width();
    let mut rows = vec![0.0; packets.len() * w];
    let started = Instant::now();
    for (i, (p, &t)) in packets.iter().zip(times).enumerate() {
        tracker.observe(
            &Observation::of("bench", p, t),
            &mut rows[i * w..(i + 1) * w],
        );
    }
    (started.elapsed().as_secs_f64(), rows)
}

/// Seconds to score every packet in batches with a model trained on the first rows.
fn score(cfg: &DetectorConfig, packets: &[Packet], rows: &[f64]) -> (f64, usize) {
    let w = rows.len() / packets.len();
    let fields: Vec<PacketFields<'_>> = packets.iter().map(PacketFields::from).collect();
    let n = TRAIN_ROWS.min(packets.len());
    let started = Instant::now();
    let detector =
        Detector::train(&fields[..n], &rows[..n * w], cfg, cfg.contamination).expect("trained");
    println!(
        "  training on {n} rows ({} views, {} trees): {:.1} ms; stored form {:.0} KiB",
        detector.views(),
        detector.trees(),
        started.elapsed().as_secs_f64() * 1e3,
        detector.to_json().len() as f64 / 1024.0
    );
    let started = Instant::now();
    let mut flagged = 0;
    for (k, chunk) in fields.chunks(BATCH).enumerate() {
        let at = k * BATCH;
        let scores = detector.score(chunk, &rows[at * w..(at + chunk.len()) * w]);
        flagged += scores.iter().filter(|s| detector.is_anomaly(**s)).count();
    }
    (started.elapsed().as_secs_f64(), flagged)
}

fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn memory_at(streams: usize) {
    let cfg = DetectorConfig {
        max_streams: streams,
        ..DetectorConfig::default()
    };
    let before = resident_kib();
    let mut tracker = Tracker::new(&ContextConfig {
        half_lives: cfg.half_lives.clone(),
        max_streams: cfg.max_streams,
    });
    let mut row = vec![0.0; tracker.width()];
    let started = Instant::now();
    for i in 0..streams as u32 {
        let src = IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + i));
        let dst = IpAddr::V4(Ipv4Addr::from(0xC000_0000 + i));
        let p = Packet {
            seq: None,
            source_ip: src,
            dest_ip: dst,
            packet_size: 64,
            protocol: "TCP".into(),
            src_port: Some(40_000 + (i % 20_000) as u16),
            dst_port: Some((i % 60_000) as u16 + 1),
            timestamp: None,
            tcp_flags: Some(netsentinel::protocol::tcp::SYN),
            icmp_type: None,
        };
        tracker.observe(
            &Observation::of("bench", &p, 1_000.0 + f64::from(i) * 1e-4),
            &mut row,
        );
    }
    let elapsed = started.elapsed().as_secs_f64();
    let usage = tracker.usage();
    let after = resident_kib();
    println!(
        "state at {streams} streams: {} entries in all tables, {:.1} MiB by the tables' count \
         ({:.0} bytes per stream), resident memory +{:.1} MiB; {} evictions; filled at {:.0} packets/s",
        usage.entries,
        usage.bytes as f64 / 1048576.0,
        usage.bytes as f64 / streams as f64,
        (after.saturating_sub(before)) as f64 / 1024.0,
        usage.evictions,
        streams as f64 / elapsed
    );
}

/// The whole judging path (context, scoring, training at fixed counts) on
/// the worst case for the tables: every packet from a source not seen
/// before, as five senders interleaved (the traffic of the pipeline bench).
fn churn(n: u64) {
    use netsentinel::judge::{Input, Judge};
    let protocols = ["TCP", "UDP", "HTTP", "HTTPS", "ICMP"];
    let names = ["bench0", "bench1", "bench2", "bench3", "bench4"];
    let mut packets = Vec::with_capacity(n as usize * 5);
    for seq in 1..=n {
        for name in names {
            let protocol = protocols[(seq % 5) as usize];
            let port = match protocol {
                "HTTP" => Some(80),
                "HTTPS" => Some(443),
                "ICMP" => None,
                _ => Some(53),
            };
            let size = if seq % 10 == 0 {
                9000 + seq % 50_000
            } else {
                64 + seq * 37 % 1436
            };
            let src = Ipv4Addr::new(
                10,
                (seq % 256) as u8,
                (seq / 256 % 256) as u8,
                (seq % 250 + 1) as u8,
            );
            packets.push((
                name,
                Packet {
                    seq: Some(seq),
                    source_ip: IpAddr::V4(src),
                    dest_ip: IpAddr::V4(Ipv4Addr::new(192, 168, 1, (seq % 200 + 1) as u8)),
                    packet_size: size as u16,
                    protocol: protocol.into(),
                    src_port: port.map(|_| (49152 + seq % 16000) as u16),
                    dst_port: port,
                    timestamp: None,
                    tcp_flags: None,
                    icmp_type: None,
                },
            ));
        }
    }
    for (name, cfg) in [
        (
            "per-packet only",
            DetectorConfig {
                half_lives: Vec::new(),
                ..DetectorConfig::default()
            },
        ),
        ("with context", DetectorConfig::default()),
    ] {
        let mut judge = Judge::new(&cfg, 0);
        let started = Instant::now();
        for (c, chunk) in packets.chunks(BATCH).enumerate() {
            let inputs: Vec<Input<'_>> = chunk
                .iter()
                .enumerate()
                .map(|(i, (sender, p))| Input {
                    sender,
                    packet: p,
                    time: 1.8e9 + (c * BATCH + i) as f64 * 1e-5,
                    tag: (c * BATCH + i) as u64,
                })
                .collect();
            judge.judge(&inputs).expect("judged");
        }
        let elapsed = started.elapsed().as_secs_f64();
        println!(
            "churn, {name:<16} judged {} packets at {:.0} packets/s ({:.2} µs each; {} evictions)",
            packets.len(),
            packets.len() as f64 / elapsed,
            elapsed * 1e6 / packets.len() as f64,
            judge.usage().evictions
        );
    }
}

fn main() {
    let n = common::env_number("BENCH_PACKETS", 1_000_000) as usize;
    println!("generating {n} packets (mixed scenario, 10% size anomalies)…");
    let packets = traffic(n);
    let now = chrono::Utc::now();
    let times: Vec<f64> = packets.iter().map(|p| packet_time(p, now)).collect();
    let with = DetectorConfig::default();
    let without = DetectorConfig {
        half_lives: Vec::new(),
        ..DetectorConfig::default()
    };
    println!(
        "one core; model trained on the first {TRAIN_ROWS} rows; scored in batches of {BATCH}"
    );
    let mut totals = Vec::new();
    for (name, cfg) in [("per-packet only", &without), ("with context", &with)] {
        let (t_extract, rows) = extract(cfg, &packets, &times);
        let (t_score, flagged) = score(cfg, &packets, &rows);
        let total = t_extract + t_score;
        println!(
            "{name:<16} extraction {:>6.0} ms ({:>10.0} packets/s)  scoring {:>6.0} ms ({:>10.0} packets/s)  \
             both {:>10.0} packets/s  flagged {flagged}",
            t_extract * 1e3,
            n as f64 / t_extract,
            t_score * 1e3,
            n as f64 / t_score,
            n as f64 / total
        );
        totals.push(total);
    }
    println!(
        "context features cost {:.2}x the time of the per-packet features alone",
        totals[1] / totals[0]
    );
    churn((n / 5) as u64);
    let streams = common::env_number("BENCH_STREAMS", 1_000_000usize);
    if streams > 0 {
        memory_at(streams);
    }
}
