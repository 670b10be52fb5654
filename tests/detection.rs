//! Detection that sees behaviour (issue #11), end to end through the real
//! server and PostgreSQL: a fast replay is judged from the first model on,
//! the pace of a replay changes no score, the early packets are judged late,
//! ARP and TCP flags reach the table, and every `--scenario` is found.

mod common;

use std::path::Path;

use common::pcap::{arp, ethernet, ipv4_frame, pcap_header, pcap_record, ETHERNET};
use common::{client_report, run_client, TestDb, TestServer};
use netsentinel::client::generate::{Generator, Plan};
use serde_json::Value;

/// Writes `n` generated packets (ordinary sessions with flags, no size
/// anomalies) as a pcap file, each frame at its packet time.
fn generated_capture(path: &Path, n: u64, seed: u64) {
    let plan = Plan {
        anomaly_ratio: 0.0,
        start: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        ..Plan::new(Some(n), None)
    };
    let mut g = Generator::new(plan, seed);
    let mut file = pcap_header(ETHERNET);
    for _ in 0..n {
        let (p, _) = g.next_packet();
        let t = p.timestamp.unwrap();
        pcap_record(
            &mut file,
            t.timestamp() as u32,
            t.timestamp_subsec_micros(),
            &ipv4_frame(&p),
        );
    }
    std::fs::write(path, file).unwrap();
}

/// Each stored packet's (size, score, flag, model), in the order sent.
fn verdicts(db: &TestDb, client: &str) -> Vec<(i32, Option<f64>, bool, Option<i64>)> {
    db.client()
        .query(
            "SELECT packet_size, anomaly_score, anomaly_flag, model_id FROM packets \
             WHERE client = $1 ORDER BY client_seq",
            &[&client],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

#[test]
fn a_full_speed_replay_is_judged_from_the_first_model_on() {
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("fast.pcap");
    generated_capture(&cap, 3000, 11);
    let db = TestDb::new("fastreplay");
    // Small batches, so "one batch" means something against 3,000 packets.
    let server = TestServer::start(&db, &["server.batch_max=256"]);
    let r = client_report(&run_client(
        server.port,
        &["fast", "--pcap", cap.to_str().unwrap(), "--json"],
    ));
    assert_eq!(r["acked"], 3000, "{r}");
    // Answered without a score at first: at most min_train_packets (50)
    // and one batch; every one of them judged late since.
    let first_unscored = r["unscored"].as_u64().unwrap() + r["judged_late"].as_u64().unwrap();
    assert!(first_unscored <= 50 + 256, "{r}");
    assert_eq!(r["unscored"], 0, "{r}");
    assert_eq!(
        db.count("SELECT count(*) FROM packets WHERE anomaly_score IS NULL"),
        0
    );
    assert_eq!(
        db.count("SELECT count(*) FROM packets WHERE model_id IS NULL"),
        0
    );
}

#[test]
fn the_same_capture_at_two_paces_gives_identical_scores() {
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("paces.pcap");
    generated_capture(&cap, 3000, 12);
    let run = |tag: &str, pace: &[&str]| {
        let db = TestDb::new(tag);
        let server = TestServer::start(&db, &[]);
        let mut args = vec!["replay", "--pcap", cap.to_str().unwrap(), "--json"];
        args.extend_from_slice(pace);
        let r = client_report(&run_client(server.port, &args));
        assert_eq!(r["acked"], 3000, "{r}");
        let v = verdicts(&db, "replay");
        drop(server);
        v
    };
    let fast = run("pacefast", &[]);
    let slow = run("paceslow", &["--rate", "1500"]);
    assert_eq!(fast.len(), 3000);
    assert!(fast
        .iter()
        .all(|(_, score, _, model)| score.is_some() && model.is_some()));
    assert!(
        fast.iter()
            .map(|v| v.3)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            > 3,
        "several models judged the replay"
    );
    let differences: Vec<_> = fast
        .iter()
        .zip(&slow)
        .filter(|(a, b)| a != b)
        .take(5)
        .collect();
    assert!(
        differences.is_empty(),
        "full speed and 1,500 packets/s differ: {differences:?}"
    );
}

#[test]
fn arp_and_tcp_flags_and_icmp_types_round_trip_from_a_capture_to_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("fields.pcap");
    let mut file = pcap_header(ETHERNET);
    let syn = netsentinel::protocol::Packet {
        seq: None,
        source_ip: "10.1.1.1".parse().unwrap(),
        dest_ip: "10.1.1.2".parse().unwrap(),
        packet_size: 60,
        protocol: "TCP".into(),
        src_port: Some(51000),
        dst_port: Some(22),
        timestamp: None,
        tcp_flags: Some(0x02),
        icmp_type: None,
    };
    let synack = netsentinel::protocol::Packet {
        source_ip: syn.dest_ip,
        dest_ip: syn.source_ip,
        src_port: syn.dst_port,
        dst_port: syn.src_port,
        tcp_flags: Some(0x12),
        ..syn.clone()
    };
    let echo = netsentinel::protocol::Packet {
        protocol: "ICMP".into(),
        packet_size: 84,
        src_port: None,
        dst_port: None,
        tcp_flags: None,
        icmp_type: Some(8),
        ..syn.clone()
    };
    let frames = [
        ethernet(0x0806, &arp(1, [192, 168, 7, 1], [192, 168, 7, 9])),
        ethernet(0x0806, &arp(2, [192, 168, 7, 9], [192, 168, 7, 1])),
        ipv4_frame(&syn),
        ipv4_frame(&synack),
        ipv4_frame(&echo),
    ];
    for (i, f) in frames.iter().enumerate() {
        pcap_record(&mut file, 1_800_000_000 + i as u32, 0, f);
    }
    std::fs::write(&cap, file).unwrap();
    let db = TestDb::new("fields");
    let server = TestServer::start(&db, &[]);
    let r = client_report(&run_client(
        server.port,
        &["fields", "--pcap", cap.to_str().unwrap(), "--json"],
    ));
    assert_eq!(r["sent"], 5, "{r}");
    type Row = (String, String, String, i32, Option<i16>, Option<i16>);
    let rows: Vec<Row> = db
        .client()
        .query(
            "SELECT host(source_ip), host(dest_ip), protocol, packet_size, tcp_flags, icmp_type \
             FROM packets ORDER BY client_seq",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect();
    let s = |v: &str| v.to_string();
    assert_eq!(
        rows,
        vec![
            (s("192.168.7.1"), s("192.168.7.9"), s("ARP"), 28, None, None),
            (s("192.168.7.9"), s("192.168.7.1"), s("ARP"), 28, None, None),
            (s("10.1.1.1"), s("10.1.1.2"), s("TCP"), 60, Some(0x02), None),
            (s("10.1.1.2"), s("10.1.1.1"), s("TCP"), 60, Some(0x12), None),
            (s("10.1.1.1"), s("10.1.1.2"), s("ICMP"), 84, None, Some(8)),
        ]
    );
}

/// Runs `--scenario` with three seeds, each against a fresh server, and
/// checks what the server found.
fn scenario(name: &str, single_attack: bool) {
    for seed in ["1", "2", "3"] {
        let db = TestDb::new(&format!("scn_{name}{seed}"));
        let server = TestServer::start(&db, &[]);
        let client = format!("{name}{seed}");
        let r = client_report(&run_client(
            server.port,
            &[
                &client,
                "--scenario",
                name,
                "--count",
                "30000",
                "--seed",
                seed,
                "--json",
            ],
        ));
        let f = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k} in {r}"));
        let kind = |k: &str| -> (f64, u64, u64) {
            let v: &Value = &r["kinds"][k];
            (
                v["recall"]
                    .as_f64()
                    .unwrap_or_else(|| panic!("kind {k} in {r}")),
                v["flagged"].as_u64().unwrap(),
                v["sent"].as_u64().unwrap(),
            )
        };
        assert!(f("precision") >= 0.9, "{name} seed {seed}: {r}");
        assert!(f("recall") >= 0.9, "{name} seed {seed}: {r}");
        assert!(
            kind("size").0 >= 0.9,
            "{name} seed {seed}: size anomalies: {r}"
        );
        let attacks: Vec<(f64, u64, u64)> = r["kinds"]
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "size")
            .map(|k| kind(k))
            .collect();
        assert!(!attacks.is_empty(), "{name} injected no attack: {r}");
        let (flagged, sent) = attacks.iter().fold((0, 0), |(f, s), a| (f + a.1, s + a.2));
        assert!(
            flagged as f64 / sent as f64 >= 0.9,
            "{name} seed {seed}: attack recall {flagged}/{sent}: {r}"
        );
        if single_attack {
            assert_eq!(attacks.len(), 1, "{r}");
            assert!(r["kinds"][name].is_object(), "{r}");
        }
    }
}

#[test]
fn portscan_is_found() {
    scenario("portscan", true);
}

#[test]
fn sweep_is_found() {
    scenario("sweep", true);
}

#[test]
fn synflood_is_found() {
    scenario("synflood", true);
}

#[test]
fn bruteforce_is_found() {
    scenario("bruteforce", true);
}

#[test]
fn beacon_is_found() {
    scenario("beacon", true);
}

#[test]
fn mixed_attacks_are_found() {
    scenario("mixed", false);
}
