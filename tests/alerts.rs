//! Alert sinks (issue #12) with real receivers on loopback: the webhook gets
//! every incident once, signed, even across a 30 s outage of its receiver;
//! syslog over UDP and TCP parses as RFC 5424 with a syslog parser; the
//! JSON-lines file parses with `jq`; bad sink settings stop the start with
//! exit code 2 naming the key.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{client_report, free_port, run_client, server_output, TestDb, TestServer};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

/// One request the webhook receiver got: its headers (lower-case names) and body.
type Received = Arc<Mutex<Vec<(HashMap<String, String>, Vec<u8>)>>>;

/// A webhook receiver on `port` until `stop` is set; answers 200 to all.
fn receiver(
    port: u16,
    got: Received,
) -> (
    Arc<std::sync::atomic::AtomicBool>,
    std::thread::JoinHandle<()>,
) {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = tiny_http::Server::http(("127.0.0.1", port)).expect("receiver binds");
    let flag = Arc::clone(&stop);
    let t = std::thread::spawn(move || {
        while !flag.load(std::sync::atomic::Ordering::SeqCst) {
            let Ok(Some(mut req)) = server.recv_timeout(Duration::from_millis(50)) else {
                continue;
            };
            let headers = req
                .headers()
                .iter()
                .map(|h| {
                    (
                        h.field.as_str().as_str().to_ascii_lowercase(),
                        h.value.to_string(),
                    )
                })
                .collect();
            let mut body = Vec::new();
            req.as_reader().read_to_end(&mut body).unwrap();
            got.lock().unwrap().push((headers, body));
            let _ = req.respond(tiny_http::Response::from_string("ok"));
        }
    });
    (stop, t)
}

fn incident_ids(db: &TestDb) -> Vec<i64> {
    db.client()
        .query("SELECT id FROM incidents ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn wait_until(what: &str, within: Duration, mut ok: impl FnMut() -> bool) {
    let end = Instant::now() + within;
    while !ok() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn scenario(server: &TestServer, name: &str, kind: &str, seed: &str) {
    client_report(&run_client(
        server.port,
        &[
            name,
            "--scenario",
            kind,
            "--count",
            "30000",
            "--seed",
            seed,
            "--json",
        ],
    ));
}

#[test]
fn the_webhook_gets_every_incident_once_signed_even_across_a_30_s_outage() {
    let db = TestDb::new("alert_webhook");
    let port = free_port();
    let got: Received = Default::default();
    let (stop, t) = receiver(port, Arc::clone(&got));
    let url = format!("alerts.webhook_url=http://127.0.0.1:{port}/hooks/netsentinel");
    let mut server = TestServer::start(
        &db,
        &[
            &url,
            "alerts.webhook_secret=s3cret",
            "alerts.max_backoff_s=4",
            "alerts.queue_capacity=1",
        ],
    );

    // Phase 1: the receiver is up.
    scenario(&server, "scan", "portscan", "4");
    let first = incident_ids(&db);
    assert!(!first.is_empty());
    wait_until("phase 1 deliveries", Duration::from_secs(20), || {
        got.lock().unwrap().len() >= first.len()
    });

    // Phase 2: the receiver is down for 30 s while new incidents open.
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    t.join().unwrap();
    let down = Instant::now();
    scenario(&server, "mix", "mixed", "5");
    let all = incident_ids(&db);
    assert!(all.len() > first.len(), "phase 2 opened incidents: {all:?}");
    std::thread::sleep(Duration::from_secs(30).saturating_sub(down.elapsed()));
    let during = got.lock().unwrap().len();
    assert_eq!(
        during,
        first.len(),
        "nothing arrives while the receiver is down"
    );
    let (stop, t) = receiver(port, Arc::clone(&got));
    wait_until(
        "deliveries after the outage",
        Duration::from_secs(30),
        || got.lock().unwrap().len() >= all.len(),
    );
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    t.join().unwrap();

    // Each incident exactly once, in id order, signed over the exact body.
    let got = got.lock().unwrap();
    let ids: Vec<i64> = got
        .iter()
        .map(|(headers, body)| {
            let v: Value = serde_json::from_slice(body).expect("a JSON body");
            assert_eq!(v["event_type"], "incident");
            assert!(v["incident"]["summary"]
                .as_str()
                .is_some_and(|s| !s.is_empty()));
            let id = v["incident"]["id"].as_i64().unwrap();
            assert_eq!(headers["x-netsentinel-delivery"], format!("incident-{id}"));
            assert_eq!(headers["content-type"], "application/json");
            let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(b"s3cret").unwrap();
            mac.update(body);
            let want: String = mac
                .finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(headers["x-netsentinel-signature"], format!("sha256={want}"));
            id
        })
        .collect();
    assert_eq!(ids, all, "every incident once, in order");

    // The failures were counted and retried.
    let metrics = ureq_get(server.dashboard_port, "/metrics");
    let failures = metric(
        &metrics,
        "netsentinel_alert_failures_total{sink=\"webhook\"}",
    );
    assert!(failures >= 1.0, "{metrics}");
    assert_eq!(
        metric(&metrics, "netsentinel_alerts_sent_total{sink=\"webhook\"}"),
        all.len() as f64
    );
    assert!(server.terminate().success());
}

/// GET over plain HTTP/1.0 (enough for /metrics).
fn ureq_get(port: u16, path: &str) -> String {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).map(|v| v.trim().parse().unwrap()))
        .unwrap_or_else(|| panic!("{name} in {text}"))
}

/// Checks one RFC 5424 message about an incident with a syslog parser.
fn check_syslog(text: &str, ids: &[i64]) -> i64 {
    let m = syslog_loose::parse_message(text, syslog_loose::Variant::RFC5424);
    assert!(
        matches!(m.protocol, syslog_loose::Protocol::RFC5424(1)),
        "{text}"
    );
    assert_eq!(
        m.facility,
        Some(syslog_loose::SyslogFacility::LOG_LOCAL0),
        "{text}"
    );
    assert_eq!(
        m.severity,
        Some(syslog_loose::SyslogSeverity::SEV_WARNING),
        "{text}"
    );
    assert_eq!(m.appname, Some("netsentinel"), "{text}");
    assert_eq!(m.msgid, Some("incident"), "{text}");
    assert!(m.timestamp.is_some(), "{text}");
    let sd = m
        .structured_data
        .iter()
        .find(|e| e.id == "netsentinel@32473")
        .unwrap_or_else(|| panic!("structured data in {text}"));
    let param = |k: &str| {
        sd.params
            .iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("{k} in {text}"))
    };
    let id: i64 = param("id").parse().unwrap();
    assert!(ids.contains(&id), "{text}");
    assert!(param("host").parse::<std::net::IpAddr>().is_ok(), "{text}");
    assert!(m.msg.contains("anomalous packet"), "{text}");
    id
}

#[test]
fn syslog_over_udp_and_the_json_lines_file_parse_with_standard_tools() {
    let db = TestDb::new("alert_udp");
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("eve.json");
    let syslog = format!("alerts.syslog=udp://{}", udp.local_addr().unwrap());
    let path = format!("alerts.jsonl_path={}", jsonl.display());
    let mut server = TestServer::start(&db, &[&syslog, &path]);
    scenario(&server, "mix", "mixed", "4");
    let ids = incident_ids(&db);
    assert!(ids.len() >= 4, "{ids:?}");
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 65_536];
    while seen.len() < ids.len() {
        let n = udp.recv(&mut buf).expect("a datagram per incident");
        seen.push(check_syslog(std::str::from_utf8(&buf[..n]).unwrap(), &ids));
    }
    assert_eq!(seen, ids);
    assert!(server.terminate().success());

    // jq reads every line: one incident each, in id order.
    let out = std::process::Command::new("jq")
        .args([
            "-c",
            "-e",
            "select(.event_type == \"incident\") | .incident.id",
        ])
        .arg(&jsonl)
        .output()
        .expect("jq runs (scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_jq: Vec<i64> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(from_jq, ids);
}

#[test]
fn syslog_over_tcp_frames_each_message_by_its_length() {
    let db = TestDb::new("alert_tcp");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let syslog = format!("alerts.syslog=tcp://{}", listener.local_addr().unwrap());
    let mut server = TestServer::start(&db, &[&syslog]);
    scenario(&server, "mix", "mixed", "6");
    let ids = incident_ids(&db);
    assert!(!ids.is_empty());
    let (conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut r = BufReader::new(conn);
    let mut seen = Vec::new();
    while seen.len() < ids.len() {
        // RFC 6587 octet counting: "LEN SP MSG".
        let mut len = Vec::new();
        r.read_until(b' ', &mut len).unwrap();
        let n: usize = std::str::from_utf8(&len).unwrap().trim().parse().unwrap();
        let mut msg = vec![0u8; n];
        r.read_exact(&mut msg).unwrap();
        seen.push(check_syslog(std::str::from_utf8(&msg).unwrap(), &ids));
    }
    assert_eq!(seen, ids);
    assert!(server.terminate().success());
}

#[test]
fn unusable_sink_settings_stop_the_start_naming_the_key() {
    let db = TestDb::new("alert_bad");
    for (set, needle) in [
        ("alerts.syslog=udp://127.0.0.1", "alerts.syslog"),
        ("alerts.syslog=http://127.0.0.1:514", "alerts.syslog"),
        (
            "alerts.webhook_url=ftp://example.org/x",
            "alerts.webhook_url",
        ),
        ("alerts.webhook_url=http://", "alerts.webhook_url"),
        (
            "alerts.jsonl_path=/nonexistent/dir/eve.json",
            "alerts.jsonl_path",
        ),
    ] {
        let out = server_output(&db.url, 0, &["--set", set]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{set}: {err}");
        assert!(err.contains(needle), "{set}: {err}");
    }
}
