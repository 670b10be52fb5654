//! Dashboard API latency with a large table (issue #5): 10 million rows in
//! `packets` (written with binary COPY, counters filled to match), the real
//! server running with a client ingesting at the same time, then p50/p99 of
//! `/api/stats`, `/api/protocols` and `/api/packets?anomalies=true&limit=100`,
//! and the searches of issue #12 (`host=`, `net=`, `port=`, `client=`).
//!
//! Time partitions (issue #14): the rows span 30 days and are written into
//! the schema of the previous version (unpartitioned `packets`, every
//! migration before 0012); the server then upgrades it in place. Printed: how
//! long after its start the server accepts packets (the migration's pause),
//! how long moving the rows into 30 daily partitions takes, and the verdict
//! latency of a sender streaming 5,000 packets/s throughout the move. The
//! latencies above are then measured on the partitioned table.
//!
//! `cargo bench --bench dashboard` (BENCH_ROWS changes the row count; default
//! 10,000,000; needs PostgreSQL at 127.0.0.1:5432 and ~3 GB of disk).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netsentinel::store::ingest::{COPY_PACKETS, COPY_TYPES};
use netsentinel::store::migrate;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::ToSql;
use postgres::Client;

#[path = "../tests/common/mod.rs"]
mod common;
use common::{TestDb, TestServer};

const PROTOCOLS: [&str; 5] = ["TCP", "UDP", "HTTP", "HTTPS", "ICMP"];
const REQUESTS: usize = 500;

fn main() {
    let rows: i64 = common::env_number("BENCH_ROWS", 10_000_000);
    let Some(db) = TestDb::for_bench("dash_bench") else {
        return;
    };
    {
        let mut admin = Client::connect(common::ADMIN_URL, postgres::NoTls).expect("admin");
        admin
            .batch_execute(&format!("CREATE DATABASE {}", db.name))
            .expect("create database");
    }
    let mut c = db.client();
    migrate::apply_until(&mut c, migrate::MIGRATIONS.len() - 1).expect("previous schema");
    let t = Instant::now();
    fill(&mut c, rows);
    println!(
        "filled the unpartitioned packets of the previous version with {rows} rows over 30 days \
         by binary COPY (+ counters, ANALYZE) in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // The upgrade: start the new server on the old schema.
    let t = Instant::now();
    let mut server = TestServer::start(&db, &[]);
    let (port, dash) = (server.port, server.dashboard_port);
    println!(
        "upgrade: the server accepts packets {:.3} s after it was started (migration 0012 on \
         {rows} rows, partitions ahead, process start)",
        t.elapsed().as_secs_f64()
    );
    let moving = Instant::now();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let paced = {
        let done = std::sync::Arc::clone(&done);
        std::thread::spawn(move || paced_sender(port, &done))
    };
    server.wait_for_log(
        "upgrade to time partitions finished",
        Duration::from_secs(7200),
    );
    let moved_in = moving.elapsed().as_secs_f64();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let (mut lat, sent) = paced.join().expect("paced sender");
    lat.sort_by(f64::total_cmp);
    let at = |q: f64| lat[((lat.len() - 1) as f64 * q).round() as usize];
    let partitions: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'packets'::regclass",
            &[],
        )
        .expect("partitions")
        .get(0);
    println!(
        "upgrade: {rows} rows moved into {partitions} partitions (default included) in {moved_in:.1} s \
         ({:.0} rows/s); meanwhile {sent} packets streamed at 5,000/s, verdict latency per chunk \
         of 50: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        rows as f64 / moved_in,
        at(0.5),
        at(0.99),
        at(1.0)
    );
    // Statistics for the new partitions (autovacuum would get there too).
    c.batch_execute("ANALYZE packets").expect("analyze");

    // Ingest at the same time: a client streaming at 5,000 packets/s.
    let mut ingest = Command::new(env!("CARGO_BIN_EXE_netsentinel"))
        .args(["client", "bench-ingest", "--continuous", "--rate", "5000"])
        .args(["--server", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("client starts");
    std::thread::sleep(Duration::from_secs(2));

    for path in [
        "/api/stats",
        "/api/protocols",
        "/api/packets?anomalies=true&limit=100",
        "/api/packets?limit=100",
        "/api/packets?protocol=UDP&limit=100",
        "/api/timeseries?minutes=60",
        // Time ranges (issue #12): the charts, the table and the top talkers.
        "/api/timeseries?range=7d",
        "/api/protocols?range=24h",
        "/api/packets?range=15m&limit=100",
        "/api/packets?range=6h&host=192.168.7.1&limit=100",
        "/api/talkers?range=1h",
        "/api/talkers?range=7d",
        // Search (issue #12): a busy host (1 in 256 rows), a rare one (one
        // row), networks, a port on every row and a rare one, a sender.
        "/api/packets?host=192.168.7.1&limit=100",
        "/api/packets?host=10.0.0.0&limit=100",
        "/api/packets?net=192.168.7.0/24&limit=100",
        "/api/packets?net=10.0.0.0/16&limit=100",
        // 10.0.0.0/16 is dense in today's partition (the senders streaming
        // during the upgrade and now use it); 10.1.0.0/16 holds ~150
        // addresses spread over every partition.
        "/api/packets?net=10.1.0.0/16&limit=100",
        "/api/packets?port=443&limit=100",
        "/api/packets?port=50000&limit=100",
        "/api/packets?client=sender3&limit=100",
        "/api/packets?host=192.168.7.1&anomalies=true&limit=100",
        "/api/incidents?status=open,acknowledged&limit=20",
        "/api/hosts/192.168.7.1",
    ] {
        let mut times = Vec::with_capacity(REQUESTS);
        for _ in 0..REQUESTS {
            let t = Instant::now();
            let status = http_get(dash, path);
            times.push(t.elapsed().as_secs_f64() * 1e3);
            assert_eq!(status, 200, "{path}");
        }
        times.sort_by(f64::total_cmp);
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        println!(
            "{path:<42} p50 {:>6.2} ms  p99 {:>6.2} ms  ({REQUESTS} requests while ingesting)",
            at(0.5),
            at(0.99)
        );
    }
    let stored: i64 = c
        .query_one(
            "SELECT count(*) FROM packets WHERE client = 'bench-ingest'",
            &[],
        )
        .expect("count")
        .get(0);
    println!("ingested meanwhile: {stored} packets from bench-ingest");
    println!("bars: /api/stats and /api/protocols p99 < 20 ms; /api/packets?anomalies=true&limit=100 and every search p99 < 50 ms");

    let _ = Command::new("kill")
        .args(["-INT", &ingest.id().to_string()])
        .status();
    let _ = ingest.wait();
    server.terminate();
}

/// Streams chunks of 50 packets every 10 ms until `done`, timing each chunk
/// from sending to its last verdict; returns the times (ms) and packets sent.
fn paced_sender(port: u16, done: &std::sync::atomic::AtomicBool) -> (Vec<f64>, u64) {
    let mut s = common::Sender::connect(port);
    s.hello("upgrade-ingest");
    let mut times = Vec::new();
    let mut seq = 1u64;
    let tick = Duration::from_millis(10);
    let mut next = Instant::now();
    while !done.load(std::sync::atomic::Ordering::SeqCst) {
        let t = Instant::now();
        s.send_packets(seq..seq + 50);
        let mut answered = 0;
        while answered < 50 {
            if s.recv()["late"] != true {
                answered += 1;
            }
        }
        times.push(t.elapsed().as_secs_f64() * 1e3);
        seq += 50;
        next += tick;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    (times, seq - 1)
}

fn http_get(port: u16, path: &str) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("dashboard");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut text = Vec::new();
    s.read_to_end(&mut text).expect("response");
    String::from_utf8_lossy(&text)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// `rows` packets over the last 30 days, 10% anomalies, 5 senders, then the
/// per-minute and per-protocol counters that the worker would have kept.
fn fill(c: &mut Client, rows: i64) {
    let first: i64 = c
        .query_one(
            "SELECT setval('packets_id_seq', nextval('packets_id_seq') + $1)",
            &[&rows],
        )
        .expect("reserve ids")
        .get(0);
    let base = first - rows;
    let now = chrono::Utc::now();
    let span_ms = 30 * 24 * 3600 * 1000i64;
    let mut tx = c.transaction().expect("tx");
    let sink = tx.copy_in(COPY_PACKETS).expect("copy");
    let mut w = BinaryCopyInWriter::new(sink, &COPY_TYPES);
    for i in 0..rows {
        let id = base + i;
        let anomaly = i % 10 == 0;
        let src: std::net::IpAddr = std::net::Ipv4Addr::from(
            (0x0a00_0000u32).wrapping_add((i as u32).wrapping_mul(2654435761)),
        )
        .into();
        let dst: std::net::IpAddr = std::net::Ipv4Addr::new(192, 168, (i % 256) as u8, 1).into();
        let size = if anomaly {
            9000 + (i * 7 % 50_000) as i32
        } else {
            64 + (i * 37 % 1436) as i32
        };
        let protocol = PROTOCOLS[(i % 5) as usize];
        let ts = now - chrono::Duration::milliseconds(span_ms - span_ms * i / rows);
        let score = Some(if anomaly { 0.7 } else { 0.45 });
        let src_port = Some(49152 + (i % 16000) as i32);
        let dst_port = Some(443i32);
        let client = format!("sender{}", i % 5);
        let seq = Some(i / 5 + 1);
        let model: Option<i64> = None;
        let flags: Option<i16> = Some(0x18);
        let icmp: Option<i16> = None;
        let features: Option<Vec<u8>> = None;
        let values: [&(dyn ToSql + Sync); 16] = [
            &id, &src, &dst, &size, &protocol, &ts, &anomaly, &score, &src_port, &dst_port,
            &client, &seq, &model, &flags, &icmp, &features,
        ];
        w.write(&values).expect("row");
    }
    w.finish().expect("finish");
    tx.batch_execute(
        "INSERT INTO traffic_minutes (minute, protocol, packets, bytes, anomalies, first_id) \
         SELECT date_trunc('minute', \"timestamp\"), protocol, count(*), sum(packet_size), count(*) FILTER (WHERE anomaly_flag), min(id) \
         FROM packets GROUP BY 1, 2; \
         INSERT INTO traffic_totals (protocol, packets, bytes, anomalies) \
         SELECT protocol, sum(packets), sum(bytes), sum(anomalies) FROM traffic_minutes GROUP BY protocol; \
         INSERT INTO senders (client, last_seq, packets) \
         SELECT client, max(client_seq), count(*) FROM packets GROUP BY client",
    )
    .expect("counters");
    tx.commit().expect("commit");
    c.batch_execute("ANALYZE packets; ANALYZE traffic_minutes; ANALYZE traffic_totals")
        .expect("analyze");
}
