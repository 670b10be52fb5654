//! Live-capture benchmark (issue #13): the real client capturing loopback
//! with libpcap, converting and sending every frame to the real server, at
//! several offered rates of UDP datagrams, with libpcap's and the client's
//! drop counters at each rate.
//!
//! `cargo bench --bench capture` prints, per offered rate: the rate the
//! sender achieved, frames captured, dropped by the kernel / the interface /
//! the client, acknowledged, and the end-to-end rate (first datagram → last
//! verdict). Needs root (capture) and PostgreSQL at 127.0.0.1:5432; prints why
//! and does nothing otherwise. `BENCH_CAPTURE_SECONDS` sets each run's length
//! (default 5).

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

#[path = "../tests/common/mod.rs"]
mod common;
use common::live::{is_root, LiveClient};
use common::{TestDb, TestServer};

/// Offered datagrams per second; 0 = as fast as one socket sends.
const RATES: [u64; 4] = [20_000, 50_000, 100_000, 0];

fn main() {
    if !is_root() {
        println!("capture bench skipped: live capture needs root");
        return;
    }
    let Some(db) = TestDb::for_bench("capture") else {
        return;
    };
    let seconds: u64 = common::env_number("BENCH_CAPTURE_SECONDS", 5);
    let server = TestServer::start(&db, &[]);
    println!("server on 127.0.0.1:{}, database {}", server.port, db.name);
    println!(
        "{:>10} {:>10} {:>9} {:>8} {:>8} {:>8} {:>9} {:>12}",
        "offered/s", "sent/s", "captured", "kernel", "iface", "client", "acked", "end-to-end/s"
    );
    for (i, rate) in RATES.into_iter().enumerate() {
        run(&server, &db, i, rate, seconds);
    }
}

fn run(server: &TestServer, db: &TestDb, i: usize, rate: u64, seconds: u64) {
    let to = SocketAddr::from(([127, 0, 0, 7], 42_000 + i as u16));
    let planned = if rate == 0 { 400_000 } else { rate * seconds };
    let name = format!("capture-bench-{i}");
    let mut client = LiveClient::start(
        server.port,
        &name,
        "lo",
        &[
            "--filter",
            &format!("dst host {} and udp dst port {}", to.ip(), to.port()),
            "--count",
            &planned.to_string(),
            "--duration",
            &(seconds * 4 + 30).to_string(),
        ],
    );
    let started = Instant::now();
    let sent = send(to, planned, rate);
    let send_seconds = started.elapsed().as_secs_f64();
    let waited = wait_or_interrupt(&mut client, db, &name);
    let report = client.report(Duration::from_secs(300));
    let total = started.elapsed().as_secs_f64() - waited;
    let c = &report["capture"];
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    println!(
        "{:>10} {:>10.0} {:>9} {:>8} {:>8} {:>8} {:>9} {:>12.0}",
        if rate == 0 {
            "max".to_string()
        } else {
            rate.to_string()
        },
        sent as f64 / send_seconds,
        n(&c["captured"]),
        n(&c["dropped_by_kernel"]),
        n(&c["dropped_by_interface"]),
        n(&c["dropped_by_client"]),
        n(&report["acked"]),
        n(&report["acked"]) as f64 / total
    );
}

/// Sends `count` 100-byte datagrams at `rate` per second (0: flat out).
fn send(to: SocketAddr, count: u64, rate: u64) -> u64 {
    let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
    let payload = [0x42u8; 100];
    let started = Instant::now();
    let mut sent = 0;
    while sent < count {
        if rate > 0 {
            let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
            if sent >= due {
                std::thread::sleep(Duration::from_micros(200));
                continue;
            }
        }
        if socket.send_to(&payload, to).is_ok() {
            sent += 1;
        }
    }
    sent
}

/// Waits for the client to end by itself (--count reached); when frames
/// were lost before libpcap, --count is never reached, so once the stored
/// rows stop growing for two seconds it is interrupted as Ctrl-C would.
/// Returns the seconds spent waiting after the last row arrived.
fn wait_or_interrupt(client: &mut LiveClient, db: &TestDb, name: &str) -> f64 {
    let sql = format!("SELECT count(*) FROM packets WHERE client = '{name}'");
    let mut rows = -1;
    let mut still_since = Instant::now();
    loop {
        if client.child.try_wait().ok().flatten().is_some() {
            return 0.0;
        }
        let now = db.count(&sql);
        if now != rows {
            rows = now;
            still_since = Instant::now();
        } else if still_since.elapsed() > Duration::from_secs(2) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::process::Command::new("kill")
        .args(["-INT", &client.child.id().to_string()])
        .status();
    still_since.elapsed().as_secs_f64()
}
