//! Attacks on the dashboard's HTTP port (issue #10): declared bodies of a
//! terabyte, bodies and heads that never arrive, ten thousand idle
//! connections, running out of file descriptors, a 100 MB header line. In
//! each, an honest sender streams packets beside the attack and ends with
//! every packet stored exactly once, `/api/stats` keeps answering (p99 under
//! 1 s while the attack runs), and the server is alive at the end.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{check_honest, honest, TestDb, TestServer};

/// Sends `raw` on a new connection, closes the writing half if asked, and
/// returns what the server answered before closing or going quiet for 5 s.
fn exchange(port: u16, raw: &[u8], close_write: bool) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(raw);
    if close_write {
        let _ = s.shutdown(Shutdown::Write);
    }
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One `GET /api/stats`: its duration when answered 200 within 5 s.
fn probe(port: u16) -> Option<Duration> {
    let start = Instant::now();
    let text = exchange(
        port,
        b"GET /api/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        false,
    );
    text.starts_with("HTTP/1.1 200").then(|| start.elapsed())
}

/// Probes `/api/stats` every 50 ms on a thread of its own until stopped.
struct Prober {
    stop: Arc<AtomicBool>,
    handle: thread::JoinHandle<Vec<Option<Duration>>>,
}

impl Prober {
    /// Probes until stopped, and at least `min` times.
    fn start(port: u16, min: usize) -> Prober {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = thread::spawn(move || {
            let mut times = Vec::new();
            while !flag.load(Ordering::Relaxed) || times.len() < min {
                times.push(probe(port));
                thread::sleep(Duration::from_millis(50));
            }
            times
        });
        Prober { stop, handle }
    }

    /// Stops and asserts every probe answered, p99 under 1 s.
    fn check(self, what: &str) {
        self.stop.store(true, Ordering::Relaxed);
        let times = self.handle.join().unwrap();
        let failed = times.iter().filter(|t| t.is_none()).count();
        let mut ok: Vec<Duration> = times.iter().flatten().copied().collect();
        ok.sort();
        assert_eq!(
            failed,
            0,
            "{what}: {failed} of {} probes failed",
            times.len()
        );
        let p99 = ok[(ok.len() * 99).div_ceil(100) - 1];
        eprintln!(
            "{what}: {} probes of /api/stats, p50 {:?}, p99 {p99:?}, max {:?}",
            ok.len(),
            ok[ok.len() / 2],
            ok[ok.len() - 1]
        );
        assert!(p99 < Duration::from_secs(1), "{what}: p99 {p99:?}");
    }
}

/// Held by each attack for its whole run: on a 2-core machine, one test's
/// 10,000-connection flood would otherwise slow another test's probes, and
/// each figure is meant to measure its own attack.
static ONE_ATTACK_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_attack_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_ATTACK_AT_A_TIME
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A metric's value from `/metrics`.
fn metric(port: u16, name: &str) -> f64 {
    let text = exchange(
        port,
        b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        false,
    );
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} in /metrics:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

fn assert_alive(server: &mut TestServer) {
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server died:\n{}",
        server.log_text()
    );
    assert!(
        probe(server.dashboard_port).is_some(),
        "the dashboard answers"
    );
}

#[test]
fn declared_bodies_over_the_limit_are_refused_413_unread_and_unallocated() {
    let _alone = one_attack_at_a_time();
    let db = TestDb::new("http_big_body");
    let mut server = TestServer::start(&db, &[]);
    let port = server.dashboard_port;
    let rss_before = rss_kib(server.child.id());
    let sender = honest(&server, "honest", 30);
    let prober = Prober::start(port, 20);

    // The seed's killer: any path, any method, a terabyte declared, then EOF.
    for (method, path) in [
        ("GET", "/healthz"),
        ("GET", "/api/stats"),
        ("POST", "/api/retrain"),
        ("PUT", "/no/such/path"),
        ("DELETE", "/api/packets"),
        ("OPTIONS", "*"),
    ] {
        for length in ["1000000000000", "18446744073709551615", "65537"] {
            let head =
                format!("{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n");
            let answer = exchange(port, head.as_bytes(), true);
            assert!(
                answer.starts_with("HTTP/1.1 413"),
                "{method} {path} with Content-Length {length}: {answer:?}"
            );
        }
    }
    // Expect: 100-continue is refused before the client sends a byte.
    let answer = exchange(
        port,
        b"POST /api/retrain HTTP/1.1\r\nContent-Length: 1000000000000\r\nExpect: 100-continue\r\n\r\n",
        false,
    );
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");
    assert!(!answer.contains("100 Continue"), "{answer:?}");
    // A chunked body is counted as it arrives: 100 KB of chunks is refused.
    let mut chunked = b"POST /api/retrain HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..100 {
        chunked.extend_from_slice(b"400\r\n");
        chunked.extend_from_slice(&[b'a'; 1024]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let answer = exchange(port, &chunked, true);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");
    // Lengths that are not numbers (or overflow) are bad requests.
    for length in ["99999999999999999999999", "-1", "12abc", ""] {
        let head = format!("GET /healthz HTTP/1.1\r\nContent-Length: {length}\r\n\r\n");
        let answer = exchange(port, head.as_bytes(), true);
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "Content-Length {length:?}: {answer:?}"
        );
    }
    // A small body within the limit is read and the request answered.
    let answer = exchange(
        port,
        b"GET /healthz HTTP/1.1\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        false,
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");

    prober.check("declared bodies");
    check_honest(&db, "honest", sender, 1500);
    let grown = rss_kib(server.child.id()).saturating_sub(rss_before);
    assert!(grown < 64 * 1024, "the server grew by {grown} KiB");
    assert_alive(&mut server);
}

/// How an attacker connection behaves until the server closes it.
#[derive(Clone, Copy, Debug)]
enum Stall {
    /// Declares a 1,000-byte body, sends 10 bytes of it, then nothing.
    Body,
    /// Sends half a head, then one byte every 500 ms, never the blank line.
    Slowloris,
    /// Connects and sends nothing.
    Silent,
}

/// Runs one stalling connection; returns how long the server kept it open.
fn stall(port: u16, how: Stall) -> Duration {
    let start = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("dashboard accepts");
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let _ = match how {
        Stall::Body => {
            s.write_all(b"POST /api/retrain HTTP/1.1\r\nContent-Length: 1000\r\n\r\n0123456789")
        }
        Stall::Slowloris => s.write_all(b"GET /api/stats HTTP/1.1\r\nX-Drip: "),
        Stall::Silent => Ok(()),
    };
    let mut last_drip = Instant::now();
    let mut buf = [0u8; 1024];
    while start.elapsed() < Duration::from_secs(30) {
        match s.read(&mut buf) {
            Ok(0) => return start.elapsed(),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return start.elapsed(),
        }
        if matches!(how, Stall::Slowloris) && last_drip.elapsed() >= Duration::from_millis(500) {
            if s.write_all(b"a").is_err() {
                return start.elapsed();
            }
            last_drip = Instant::now();
        }
    }
    start.elapsed()
}

#[test]
fn bodies_and_heads_that_never_arrive_are_cut_at_the_request_timeout() {
    let _alone = one_attack_at_a_time();
    let db = TestDb::new("http_stall");
    let mut server = TestServer::start(&db, &["dashboard.request_timeout_s=2"]);
    let port = server.dashboard_port;
    let sender = honest(&server, "honest", 60);
    let prober = Prober::start(port, 20);
    let attackers: Vec<_> = (0..30)
        .map(|i| {
            let how = [Stall::Body, Stall::Slowloris, Stall::Silent][i % 3];
            (how, thread::spawn(move || stall(port, how)))
        })
        .collect();
    for (how, handle) in attackers {
        let held = handle.join().unwrap();
        assert!(
            held >= Duration::from_millis(1500) && held < Duration::from_secs(5),
            "{how:?} connection held {held:?} (request timeout 2 s)"
        );
    }
    prober.check("stalled bodies, slowloris heads, silent connections");
    check_honest(&db, "honest", sender, 3000);
    assert!(metric(port, "netsentinel_http_requests_timed_out_total") >= 30.0);
    assert_alive(&mut server);
}

#[test]
fn ten_thousand_idle_connections_do_not_lock_the_dashboard_out() {
    let _alone = one_attack_at_a_time();
    let db = TestDb::new("http_idle_flood");
    let mut server = TestServer::start(&db, &[]);
    let port = server.dashboard_port;
    let sender = honest(&server, "honest", 60);
    let prober = Prober::start(port, 20);
    let openers: Vec<_> = (0..4)
        .map(|_| {
            thread::spawn(move || {
                (0..2_500)
                    .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let held: Vec<TcpStream> = openers
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let refused = 10_000 - held.len();
    eprintln!(
        "idle flood: {} connections open, {refused} refused by the kernel",
        held.len()
    );
    thread::sleep(Duration::from_secs(2));
    prober.check("10,000 idle connections");
    let open = metric(port, "netsentinel_http_connections_open");
    assert!(open <= 256.0, "{open} connections served at once, cap 256");
    assert!(metric(port, "netsentinel_http_connections_evicted_total") > 0.0);
    drop(held);
    check_honest(&db, "honest", sender, 3000);
    assert_alive(&mut server);
}

#[test]
fn out_of_file_descriptors_the_dashboard_accepts_again() {
    let _alone = one_attack_at_a_time();
    let db = TestDb::new("http_emfile");
    // 160 descriptors: enough for the server's own files, sockets and pool,
    // far fewer than the 256 dashboard connections it would admit.
    let mut server = TestServer::start_with_fd_limit(&db, &["dashboard.request_timeout_s=2"], 160);
    let port = server.dashboard_port;
    let sender = honest(&server, "honest", 60);
    let held: Vec<TcpStream> = (0..400)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    thread::sleep(Duration::from_millis(500));
    drop(held);
    // The accept loop lived through EMFILE: the dashboard answers again as
    // soon as the idle connections are closed (by the peer or the timeout).
    let start = Instant::now();
    while probe(port).is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the dashboard never came back:\n{}",
            server.log_text()
        );
        thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "answered again {:?} after the flood closed",
        start.elapsed()
    );
    assert!(
        metric(port, "netsentinel_http_accept_errors_total") > 0.0,
        "EMFILE was hit"
    );
    let prober = Prober::start(port, 10);
    thread::sleep(Duration::from_secs(1));
    prober.check("after running out of file descriptors");
    check_honest(&db, "honest", sender, 3000);
    assert_alive(&mut server);
}

#[test]
fn header_lines_and_header_counts_are_capped() {
    let _alone = one_attack_at_a_time();
    let db = TestDb::new("http_headers");
    let mut server = TestServer::start(&db, &[]);
    let port = server.dashboard_port;
    let rss_before = rss_kib(server.child.id());
    let sender = honest(&server, "honest", 30);
    let prober = Prober::start(port, 20);

    // A 100 MB header line: cut at 8 KiB, answered 431, the connection closed.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /api/stats HTTP/1.1\r\nX-Long: ").unwrap();
    let chunk = vec![b'a'; 64 * 1024];
    let mut sent = 0usize;
    while sent < 100 * 1024 * 1024 {
        if s.write_all(&chunk).is_err() {
            break;
        }
        sent += chunk.len();
    }
    assert!(
        sent < 100 * 1024 * 1024,
        "the server read a 100 MB header line"
    );
    eprintln!(
        "100 MB header line: the server closed after {} KiB",
        sent / 1024
    );

    let long = format!(
        "GET /api/stats HTTP/1.1\r\nX-Long: {}\r\n\r\n",
        "a".repeat(9000)
    );
    let answer = exchange(port, long.as_bytes(), false);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
    let long_path = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(9000));
    let answer = exchange(port, long_path.as_bytes(), false);
    assert!(answer.starts_with("HTTP/1.1 414"), "{answer:?}");
    let mut many = String::from("GET /api/stats HTTP/1.1\r\n");
    for i in 0..101 {
        many.push_str(&format!("X-{i}: {i}\r\n"));
    }
    many.push_str("\r\n");
    let answer = exchange(port, many.as_bytes(), false);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");

    prober.check("header limits");
    check_honest(&db, "honest", sender, 1500);
    let grown = rss_kib(server.child.id()).saturating_sub(rss_before);
    assert!(grown < 64 * 1024, "the server grew by {grown} KiB");
    assert_alive(&mut server);
}

#[test]
fn cross_site_writes_and_rebinding_hosts_are_refused() {
    let _alone = one_attack_at_a_time();
    let db = TestDb::new("http_csrf");
    let mut server = TestServer::start(&db, &[]);
    let port = server.dashboard_port;
    let sender = honest(&server, "honest", 20);
    // The attack that worked: a form POST from another site.
    let answer = exchange(
        port,
        format!(
            "POST /api/retrain HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://evil.example\r\n\
             Content-Type: text/plain\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
        false,
    );
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    let answer = exchange(
        port,
        format!(
            "POST /api/retrain HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
        false,
    );
    assert!(answer.starts_with("HTTP/1.1 415"), "{answer}");
    // DNS rebinding: a page on evil.example resolving to 127.0.0.1.
    let answer = exchange(
        port,
        b"GET /api/packets HTTP/1.1\r\nHost: evil.example:5000\r\nConnection: close\r\n\r\n",
        false,
    );
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains("dashboard.allowed_hosts"), "{answer}");
    // The dashboard's own page may write.
    let answer = exchange(
        port,
        format!(
            "POST /api/retrain HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\n\
             Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        )
        .as_bytes(),
        false,
    );
    assert!(
        answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.1 409"),
        "{answer}"
    );
    check_honest(&db, "honest", sender, 1000);
    assert_alive(&mut server);
}
