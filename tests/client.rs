//! `netsentinel client` and `netsentinel demo` end to end against the real
//! server and PostgreSQL (issue #4's acceptance).

mod common;

use common::pcap::{ethernet, ipv4_tcp, ipv6_udp, pcap_file, ACK, ETHERNET};

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{TestDb, TestServer};
use serde_json::Value;

fn client(port: u16, args: &[&str]) -> Output {
    common::run_client(port, args)
}

fn report(out: &Output) -> Value {
    common::client_report(out)
}

#[test]
fn report_counts_equal_the_rows_in_the_table() {
    let db = TestDb::new("creport");
    let server = TestServer::start(&db, &[]);
    let out = client(
        server.port,
        &[
            "counter", "--count", "3000", "--rate", "0", "--json", "--seed", "4",
        ],
    );
    let r = report(&out);
    assert_eq!(r["sent"], 3000);
    assert_eq!(r["acked"], 3000);
    assert_eq!(
        db.count("SELECT count(*) FROM packets WHERE client = 'counter'"),
        3000
    );
    assert_eq!(
        db.count("SELECT count(*) FROM packets WHERE client = 'counter' AND anomaly_flag"),
        r["flagged"].as_i64().unwrap()
    );
    assert_eq!(
        db.count("SELECT count(*) FROM packets WHERE client = 'counter' AND anomaly_score IS NULL"),
        r["unscored"].as_i64().unwrap()
    );
    let injected = r["injected"].as_i64().unwrap();
    assert!(
        (200..400).contains(&injected),
        "about 10% injected: {injected}"
    );
    // The figures agree with the counts they come from.
    let n = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k} in {r}"));
    let (tp, fp, fn_) = (n("tp"), n("fp"), n("fn"));
    assert!(
        (n("precision") - tp / (tp + fp).max(1.0)).abs() < 1e-9,
        "{r}"
    );
    assert!((n("recall") - tp / (tp + fn_).max(1.0)).abs() < 1e-9, "{r}");
    assert!(
        n("f1") <= 1.0 && n("latency_ms_p50") <= n("latency_ms_p99"),
        "{r}"
    );
}

#[test]
fn twenty_thousand_packets_are_judged_with_precision_and_recall_above_0_9() {
    let db = TestDb::new("cquality");
    let server = TestServer::start(&db, &[]);
    let out = client(
        server.port,
        &["c1", "--count", "20000", "--rate", "0", "--json"],
    );
    let r = report(&out);
    assert_eq!(r["acked"], 20000);
    assert!(r["precision"].as_f64().unwrap() >= 0.9, "{r}");
    assert!(r["recall"].as_f64().unwrap() >= 0.9, "{r}");
    assert!(r["unscored"].as_u64().unwrap() < 20000);
}

#[test]
fn three_named_clients_at_once_appear_under_their_names() {
    let db = TestDb::new("cthree");
    let server = TestServer::start(&db, &[]);
    let port = server.port;
    let handles: Vec<_> = ["client1", "client2", "client3"]
        .iter()
        .map(|name| {
            let name = name.to_string();
            std::thread::spawn(move || {
                client(port, &[&name, "--count", "500", "--rate", "2000", "--json"])
            })
        })
        .collect();
    for h in handles {
        assert_eq!(report(&h.join().unwrap())["acked"], 500);
    }
    let mut c = db.client();
    let rows = c
        .query(
            "SELECT client, count(*) FROM packets GROUP BY client ORDER BY client",
            &[],
        )
        .unwrap();
    let got: Vec<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        got,
        [
            ("client1".into(), 500),
            ("client2".into(), 500),
            ("client3".into(), 500)
        ]
    );
}

#[test]
fn server_killed_and_restarted_mid_run_client_finishes_everything_exactly_once() {
    let db = TestDb::new("crestart");
    let mut server = TestServer::start(&db, &[]);
    let port = server.port;
    let run = std::thread::spawn(move || {
        client(
            port,
            &["survivor", "--count", "12000", "--rate", "3000", "--json"],
        )
    });
    std::thread::sleep(Duration::from_millis(1500));
    server.kill9();
    std::thread::sleep(Duration::from_millis(700));
    let _server = TestServer::start_on(&db, port, &[]);
    let r = report(&run.join().unwrap());
    assert_eq!(r["sent"], 12000);
    assert_eq!(r["acked"], 12000, "{r}");
    assert!(r["reconnects"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(
        db.count("SELECT count(*) FROM packets WHERE client = 'survivor'"),
        12000
    );
    assert_eq!(
        db.count("SELECT count(DISTINCT client_seq) FROM packets WHERE client = 'survivor'"),
        12000
    );
}

/// A capture written here: Ethernet frames with IPv4 TCP, IPv6 UDP, an ARP
/// frame, and optionally a cut-off last record.
fn write_capture(path: &std::path::Path, truncated: bool) -> usize {
    let mut frames = Vec::new();
    for i in 0..30 {
        frames.push(ethernet(0x0800, &ipv4_tcp(50000, 443, ACK, i * 10)));
        frames.push(ethernet(0x86dd, &ipv6_udp(5353, 53, 0)));
    }
    frames.push(ethernet(0x0806, &[0; 28]));
    let mut v = pcap_file(ETHERNET, 1_700_000_000, &frames);
    if truncated {
        v.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7]);
    }
    std::fs::write(path, v).unwrap();
    frames.len()
}

#[test]
fn pcap_replay_sends_ip_frames_skips_the_rest_and_scores_labels() {
    let db = TestDb::new("cpcap");
    let server = TestServer::start(&db, &["detector.min_train_packets=20"]);
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("t.pcap");
    let frames = write_capture(&cap, false);
    let labels = dir.path().join("labels.csv");
    let text: String = (0..frames)
        .map(|i| if i % 13 == 0 { "1\n" } else { "0\n" })
        .collect();
    std::fs::write(&labels, text).unwrap();
    let replay = |name: &str| {
        client(
            server.port,
            &[
                name,
                "--pcap",
                cap.to_str().unwrap(),
                "--labels",
                labels.to_str().unwrap(),
                "--json",
            ],
        )
    };
    let r = report(&replay("replayer"));
    assert_eq!(r["sent"], 60);
    assert_eq!(r["skipped"], 1);
    assert!(r["injected"].is_u64(), "labels give a truth: {r}");
    assert_eq!(
        db.count("SELECT count(*) FROM packets WHERE client = 'replayer'"),
        60
    );
    assert_eq!(
        db.count("SELECT count(*) FROM packets WHERE family(source_ip) = 6"),
        30
    );
    assert_eq!(
        db.count("SELECT count(*) FROM packets WHERE protocol = 'HTTPS' AND dst_port = 443"),
        30
    );
    assert_eq!(
        db.count("SELECT count(*) FROM packets WHERE \"timestamp\" = to_timestamp(1700000000)"),
        1
    );
    // Wrong number of labels: a clear error before anything is sent.
    std::fs::write(&labels, "0\n1\n").unwrap();
    let out = replay("replayer2");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("2 labels, but") && err.contains("61 frames and 60 IP packets"),
        "{err}"
    );
    // One label per IP packet (the non-IP frame has none) is the other form.
    let per_ip: String = (0..60)
        .map(|i| if i < 30 { "0\n" } else { "1\n" })
        .collect();
    std::fs::write(&labels, per_ip).unwrap();
    let r = report(&replay("replayer3"));
    assert_eq!(r["sent"], 60, "{r}");
    assert_eq!(r["injected"], 30, "{r}");
}

#[test]
fn truncated_capture_sends_what_came_before_and_names_the_offset() {
    let db = TestDb::new("ctrunc");
    let server = TestServer::start(&db, &[]);
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("cut.pcap");
    write_capture(&cap, true);
    let out = client(server.port, &["cutter", "--pcap", cap.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cut.pcap") && err.contains("byte offset") && err.contains("truncated"),
        "{err}"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM packets WHERE client = 'cutter'"),
        60
    );
    // Not a capture at all.
    let junk = dir.path().join("junk.pcap");
    std::fs::write(&junk, "hello").unwrap();
    let out = client(server.port, &["j", "--pcap", junk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a pcap"));
}

#[test]
fn client_without_a_mode_and_no_terminal_says_what_to_choose() {
    let out = client(1, &["x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("--count N, --continuous, --pcap FILE or --interface IFACE"));
}

#[test]
fn demo_runs_three_clients_and_stops_cleanly_on_sigint() {
    let db = TestDb::new("demo");
    let port = common::free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_netsentinel"))
        .args(["demo", "--rate", "50", "--database-url", &db.url])
        .args(["--dashboard-port", &common::free_port().to_string()])
        .env("NETSENTINEL_SERVER_PORT", port.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("NetSentinel demo running"), "{stdout}");
    for name in ["client1", "client2", "client3"] {
        let n = db.count(&format!(
            "SELECT count(*) FROM packets WHERE client = '{name}'"
        ));
        assert!(n >= 50, "{name}: {n} rows");
        assert!(stdout.contains(&format!("client {name}: sent")), "{stdout}");
    }
}
