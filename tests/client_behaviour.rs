//! What the client tells its user when things go wrong (issue #10): nothing
//! listening, a malformed `--server`, a server that stays full, Ctrl-C while
//! connecting, queued or retrying, `-v` without a terminal; and the server's
//! own start-up errors (busy dashboard port, invalid `database.url`).

mod common;

use std::io::Read;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, Sender, TestDb, TestServer};

fn client_cmd(server: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_netsentinel"));
    c.arg("client")
        .args(args)
        .args(["--server", server])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn run(server: &str, args: &[&str]) -> (Output, Duration) {
    let start = Instant::now();
    let out = client_cmd(server, args).output().unwrap();
    (out, start.elapsed())
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Sends `signal` to `child` and waits for it: (output, time from signal to exit).
fn signal_and_wait(mut child: Child, signal: &str) -> (Output, Duration) {
    let sent = Instant::now();
    Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the client did not exit after {signal}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let took = sent.elapsed();
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    (
        Output {
            status,
            stdout,
            stderr,
        },
        took,
    )
}

#[test]
fn nothing_listening_fails_fast_naming_the_address_unless_told_to_wait() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let (out, took) = run(&addr, &["c", "--count", "10"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("nothing listens on {addr}"))
            && err.contains("is `netsentinel server` running?"),
        "{err}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    eprintln!("nothing listening: exit 1 after {took:?}");

    // --wait: the server may come later.
    let db = TestDb::new("client_wait");
    let child = client_cmd(
        &addr,
        &["late", "--count", "200", "--rate", "0", "--json", "--wait"],
    )
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let _server = TestServer::start_on(&db, port, &[]);
    let out = child.wait_with_output().unwrap();
    let report = common::client_report(&out);
    assert_eq!(report["acked"], 200, "{report}");
}

#[test]
fn a_server_address_without_a_port_is_a_usage_error() {
    for bad in [
        "nohost",
        "127.0.0.1",
        ":9999",
        "host:0",
        "host:99999",
        "::1:9999",
        "host:port",
    ] {
        let (out, _) = run(bad, &["c", "--count", "1"]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {err}");
        assert!(
            err.contains("--server") && err.contains("HOST:PORT"),
            "{bad}: {err}"
        );
    }
}

/// A server with one slot (and `sets`), that slot held by a raw sender; the
/// holder is returned to keep it.
fn held(db: &TestDb, sets: &[&str]) -> (TestServer, Sender) {
    let mut sets = sets.to_vec();
    sets.push("server.max_clients=1");
    let server = TestServer::start(db, &sets);
    let mut holder = Sender::connect(server.port);
    holder.hello("holder");
    (server, holder)
}

/// Runs a client against `port` and asserts it was told the server stayed
/// full, with `words` in the message; returns how long it took.
fn told_stayed_full(port: u16, words: &str) -> Duration {
    let (out, took) = run(&format!("127.0.0.1:{port}"), &["c", "--count", "10"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("stayed full") && err.contains(words), "{err}");
    assert!(!err.contains("no model"), "{err}");
    took
}

#[test]
fn a_client_that_never_gets_a_slot_is_told_the_server_stayed_full() {
    let db = TestDb::new("client_full");
    let (server, _holder) = held(&db, &["server.max_waiting=0"]);
    let took = told_stayed_full(server.port, "server busy");
    assert!(took < Duration::from_secs(10), "took {took:?}");

    // Queued, then refused after the queue timeout: the same words.
    let db = TestDb::new("client_full_queue");
    let (server, _holder) = held(&db, &["server.max_waiting=5", "server.queue_timeout_s=1"]);
    told_stayed_full(server.port, "server.queue_timeout_s");
}

#[test]
fn ctrl_c_while_connecting_queued_or_retrying_exits_within_a_second_with_its_report() {
    // Connecting (with --wait, nothing listens).
    let addr = format!("127.0.0.1:{}", free_port());
    let child = client_cmd(&addr, &["c", "--count", "10", "--wait", "--json"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let (out, took) = signal_and_wait(child, "INT");
    assert!(took < Duration::from_secs(1), "connecting: {took:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("a report: {}", text(&out.stdout)));
    assert_eq!(report["sent"], 0);

    // Queued behind a holder.
    let db = TestDb::new("client_ctrlc");
    let (server, holder) = held(&db, &["server.queue_timeout_s=60"]);
    let addr = format!("127.0.0.1:{}", server.port);
    let child = client_cmd(&addr, &["q", "--count", "10", "--json"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let (out, took) = signal_and_wait(child, "TERM");
    assert!(took < Duration::from_secs(1), "queued: {took:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("a report: {}", text(&out.stdout)));
    assert_eq!(report["sent"], 0);
    drop(holder);

    // Retrying: the server dies under a running client.
    let db = TestDb::new("client_ctrlc_retry");
    let mut server = TestServer::start(&db, &[]);
    let addr = format!("127.0.0.1:{}", server.port);
    let child = client_cmd(&addr, &["r", "--continuous", "--rate", "200", "--json"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    server.kill9();
    std::thread::sleep(Duration::from_millis(1500));
    let (out, took) = signal_and_wait(child, "INT");
    assert!(took < Duration::from_secs(1), "retrying: {took:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("a report: {}", text(&out.stdout)));
    assert!(report["sent"].as_u64().unwrap() > 0, "{report}");
    eprintln!("Ctrl-C: every case exited within 1 s with its report");
}

#[test]
fn verbose_prints_flagged_packets_without_a_terminal() {
    let db = TestDb::new("client_verbose");
    let server = TestServer::start(&db, &[]);
    let addr = format!("127.0.0.1:{}", server.port);
    let (out, _) = run(
        &addr,
        &["v", "--count", "3000", "--rate", "0", "-v", "--seed", "3"],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let flagged = stdout
        .lines()
        .filter(|l| l.starts_with("flagged seq "))
        .count();
    assert!(flagged > 10, "flagged lines on stdout: {flagged}\n{stdout}");
    // With --json the report owns stdout; the lines go to stderr.
    let (out, _) = run(
        &addr,
        &[
            "w", "--count", "3000", "--rate", "0", "-v", "--json", "--seed", "3",
        ],
    );
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON report");
    assert_eq!(report["acked"], 3000);
    assert!(
        text(&out.stderr)
            .lines()
            .filter(|l| l.starts_with("flagged seq "))
            .count()
            > 10
    );
}

#[test]
fn server_start_up_errors_name_what_to_change() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let db = TestDb::new("client_srv_errors");
    let out = common::server_output(&db.url, port, &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("--dashboard-port"), "{err}");
    for url in ["foo", "postgresql://[bad"] {
        let out = common::server_output(url, 0, &[]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{url}: {err}");
        assert!(err.contains("database.url"), "{err}");
    }
}
