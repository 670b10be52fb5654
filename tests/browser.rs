//! The dashboard in a real headless Chromium (issue #5): start a server, send
//! packets, load the page, watch totals and table update, filter, open an
//! explanation, retrain, check that an HTML-looking sender name stays text.
//! And the incidents panel (issue #12): a port scan's incident shows within
//! 2 s, is acknowledged and marked normal, and the page says when the server
//! stops answering. The browser is driven by tests/browser/dashboard.mjs and
//! tests/browser/incidents.mjs (playwright-core with
//! Debian's /usr/bin/chromium). Skips, saying why, when node, Chromium or
//! playwright-core are missing, unless BROWSER_TEST_REQUIRED=1 (as in
//! .ci/run), where a missing piece fails the test.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{TestDb, TestServer};

const XSS_NAME: &str = "<img src=x onerror=alert(1)>";

fn missing_prerequisite() -> Option<String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Some(format!("{chromium} not found (apt-get install chromium)"));
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Some("node not found".into());
    }
    let module =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/node_modules/playwright-core");
    if !module.is_dir() {
        return Some("playwright-core not installed (npm ci --prefix tests/browser)".into());
    }
    None
}

/// True when a browser piece is missing and the test is skipped (saying
/// why); with BROWSER_TEST_REQUIRED=1 a missing piece fails instead.
fn skipped() -> bool {
    let Some(why) = missing_prerequisite() else {
        return false;
    };
    if std::env::var("BROWSER_TEST_REQUIRED").as_deref() == Ok("1") {
        panic!("browser test required but {why}");
    }
    println!("SKIPPED: {why}");
    true
}

/// Runs tests/browser/`script` with node and `env`; its output, after
/// checking that it succeeded (else the server's log is shown too).
fn run_script(script: &str, server: &TestServer, env: &[(&str, &str)]) -> String {
    let out = Command::new("node")
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/browser")
                .join(script),
        )
        .envs(env.iter().copied())
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{stdout}");
    assert!(
        out.status.success(),
        "browser test {script} failed:\n{stdout}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log_text()
    );
    stdout
}

#[test]
fn dashboard_in_headless_chromium() {
    if skipped() {
        return;
    }
    let db = TestDb::new("browser");
    let server = TestServer::start(&db, &["detector.min_train_packets=100"]);
    // Two senders with every 10th packet a giant: the first trains the model,
    // the second is judged by it (so the table has flagged packets to show).
    for (name, wait_for) in [("alpha", "model 1 in use"), ("bravo", "model 2 in use")] {
        common::send_with_giants(&server, name, 300);
        server.wait_for_log(wait_for, std::time::Duration::from_secs(10));
    }
    let mut x = server.connect();
    x.hello(XSS_NAME);
    x.send_packets(1..=40);
    x.recv_n(40);

    let screenshot = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/dashboard.png");
    let dashboard_url = format!("http://127.0.0.1:{}/", server.dashboard_port);
    let ingest_port = server.port.to_string();
    let stdout = run_script(
        "dashboard.mjs",
        &server,
        &[
            ("DASHBOARD_URL", dashboard_url.as_str()),
            ("INGEST_PORT", &ingest_port),
            ("INITIAL_TOTAL", "640"),
            ("XSS_NAME", XSS_NAME),
            ("SCREENSHOT", screenshot.to_str().unwrap()),
        ],
    );
    assert!(stdout.contains("browser test passed"));
    assert!(screenshot.is_file());
    // The XSS name is stored as sent.
    assert_eq!(
        db.count(&format!(
            "SELECT count(*) FROM packets WHERE client = '{XSS_NAME}'"
        )),
        40
    );
}

#[test]
fn incidents_panel_in_headless_chromium() {
    if skipped() {
        return;
    }
    let db = TestDb::new("browser_incidents");
    let server = TestServer::start(&db, &[]);
    let dashboard_url = format!("http://127.0.0.1:{}/", server.dashboard_port);
    let ingest_port = server.port.to_string();
    let pid = server.child.id().to_string();
    let stdout = run_script(
        "incidents.mjs",
        &server,
        &[
            ("DASHBOARD_URL", dashboard_url.as_str()),
            ("INGEST_PORT", &ingest_port),
            ("NETSENTINEL_BIN", env!("CARGO_BIN_EXE_netsentinel")),
            ("SERVER_PID", &pid),
        ],
    );
    assert!(stdout.contains("incidents browser test passed"));
    // The suppression the page made is stored.
    assert_eq!(
        db.count("SELECT count(*) FROM incidents WHERE status = 'suppressed' AND suppressed_by IS NOT NULL"),
        1
    );
}

#[test]
fn time_range_and_top_talkers_in_headless_chromium() {
    if skipped() {
        return;
    }
    let db = TestDb::new("browser_range");
    let server = TestServer::start(&db, &[]);
    // alpha's 200 packets count as stored 3 hours ago; beta's 120 (two
    // protocols with long names among them) are stored now.
    common::send_with_giants(&server, "alpha", 200);
    db.client()
        .batch_execute("UPDATE traffic_minutes SET minute = minute - interval '3 hours'")
        .unwrap();
    let mut beta = server.connect();
    beta.hello("beta");
    let mut text = String::new();
    for seq in 1..=120u64 {
        let mut p = common::packet(seq);
        p["source_ip"] = serde_json::json!(format!("172.16.0.{}", seq % 3 + 1));
        if seq % 4 == 0 {
            p["protocol"] = serde_json::json!(if seq % 8 == 0 {
                "WIREGUARD0"
            } else {
                "OPENVPN-TC"
            });
        }
        text.push_str(&format!("{p}\n"));
    }
    beta.send_raw(&text);
    beta.recv_n(120);

    let dashboard_url = format!("http://127.0.0.1:{}/", server.dashboard_port);
    let stdout = run_script(
        "timerange.mjs",
        &server,
        &[
            ("DASHBOARD_URL", dashboard_url.as_str()),
            ("RECENT_PACKETS", "120"),
            ("ALL_PACKETS", "320"),
        ],
    );
    assert!(stdout.contains("time range browser test passed"));
}

#[test]
fn storage_card_in_headless_chromium() {
    if skipped() {
        return;
    }
    use netsentinel::store::{self, partitions};
    let db = TestDb::new("browser_storage");
    drop(store::open_pool(&db.url, 1).unwrap());
    let mut c = db.client();
    let today = chrono::Utc::now().date_naive();
    let day = |back: i64| today - chrono::TimeDelta::days(back);
    partitions::ensure(&mut c, 1, day(10), day(0)).unwrap();
    for (at, n) in [
        (partitions::midnight(day(8)), 40i64),
        (partitions::midnight(day(2)), 40),
        ("2017-07-07T10:00:00Z".parse().unwrap(), 25),
    ] {
        c.execute(
            "INSERT INTO packets (id, source_ip, dest_ip, packet_size, protocol, \"timestamp\", client) \
             SELECT nextval('packets_id_seq'), '10.1.0.1', '10.2.0.2', 100, 'TCP', \
                    $1::timestamptz + g * interval '1 second', 'old' \
             FROM generate_series(1, $2::int8) g",
            &[&at, &n],
        )
        .unwrap();
    }
    c.batch_execute("ANALYZE packets").unwrap();
    let server = TestServer::start(&db, &["storage.retention_days=3"]);
    let dashboard_url = format!("http://127.0.0.1:{}/", server.dashboard_port);
    let oldest = day(3).format("%Y-%m-%d").to_string();
    let last = partitions::partition_name(partitions::midnight(day(4)));
    let stdout = run_script(
        "storage.mjs",
        &server,
        &[
            ("DASHBOARD_URL", dashboard_url.as_str()),
            ("DROPPED", "7"),
            ("KEPT", "6"),
            ("OLDEST", oldest.as_str()),
            ("LAST_DROPPED", last.as_str()),
            ("UNDATED", "25"),
        ],
    );
    assert!(stdout.contains("storage browser test passed"));
}
