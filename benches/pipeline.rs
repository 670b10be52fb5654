//! End-to-end ingest benchmark (issue #3): the real server binary on the real
//! schema, fed by pipelined senders over TCP, against a plain binary COPY of
//! the same rows into the same table, measured in the same run.
//!
//! `cargo bench --bench pipeline` prints:
//! - saturation: 5 senders × N packets as fast as they can (packets/s end to
//!   end: first byte sent → last verdict read), verdict latency p50/p99;
//! - paced: 10,000 packets/s offered (5 × 2,000/s) for a few seconds, latency p50/p99;
//! - the server's peak RSS (VmHWM);
//! - the ceiling: one binary COPY of the same number of rows into `packets`
//!   (partitioned by time, issue #14), and into a plain table of the same
//!   columns and indexes, unpartitioned (what `packets` was before), both in
//!   this run;
//! - the server runs with incident grouping on and a webhook sink to a
//!   receiver on loopback (issue #12); the saturation run is repeated with
//!   `incidents.enabled=false` for comparison.
//!
//! Needs PostgreSQL at 127.0.0.1:5432 (bash scripts/setup-db.sh). Set
//! `BENCH_PACKETS` to change N (default 200,000 per sender).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netsentinel::store::ingest::{COPY_PACKETS, COPY_TYPES};
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::ToSql;
use postgres::Client;

#[path = "../tests/common/mod.rs"]
mod common;
use common::{TestDb, TestServer};

const SENDERS: usize = 5;
const PROTOCOLS: [&str; 5] = ["TCP", "UDP", "HTTP", "HTTPS", "ICMP"];

fn main() {
    let per_sender: u64 = common::env_number("BENCH_PACKETS", 200_000);
    let Some(db) = TestDb::for_bench("bench") else {
        return;
    };
    // The same load with incident grouping off, for comparison.
    let plain_rate = match TestDb::for_bench("bench_plain") {
        Some(plain_db) => {
            let mut plain = TestServer::start(&plain_db, &["incidents.enabled=false"]);
            let (rate, _, _) = saturate(plain.port, "plain", per_sender);
            plain.terminate();
            Some(rate)
        }
        None => None,
    };

    // A webhook receiver, answering 200 to every incident.
    let hook = tiny_http::Server::http("127.0.0.1:0").expect("webhook receiver binds");
    let hook_port = hook.server_addr().to_ip().expect("an IP address").port();
    let delivered = Arc::new(std::sync::atomic::AtomicU64::new(0));
    {
        let delivered = Arc::clone(&delivered);
        std::thread::spawn(move || {
            for req in hook.incoming_requests() {
                delivered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let _ = req.respond(tiny_http::Response::empty(200));
            }
        });
    }
    let webhook = format!("alerts.webhook_url=http://127.0.0.1:{hook_port}/hook");
    let mut server = TestServer::start(&db, &[&webhook]);
    let port = server.port;
    println!(
        "server: {} on 127.0.0.1:{port}, database {}, incidents on, webhook to 127.0.0.1:{hook_port}",
        env!("CARGO_BIN_EXE_netsentinel"),
        db.name
    );

    // Saturation.
    let total = per_sender * SENDERS as u64;
    let (rate, p50, p99) = saturate(port, "bench", per_sender);
    println!(
        "saturation: {total} packets from {SENDERS} pipelined senders = {rate:.0} packets/s end to end \
         (bar: >= 100000); verdict latency p50 {p50:.1} ms, p99 {p99:.1} ms"
    );
    if let Some(plain) = plain_rate {
        println!(
            "incident grouping + webhook on: {rate:.0} packets/s vs {plain:.0} with incidents.enabled=false ({:.2}x)",
            rate / plain
        );
    }

    // Paced: 10,000 packets/s offered in total.
    let paced_secs = 5u64;
    let per_second = 2_000u64;
    let handles: Vec<_> = (0..SENDERS)
        .map(|i| {
            std::thread::spawn(move || {
                run_sender(
                    port,
                    &format!("paced{i}"),
                    1,
                    per_second * paced_secs,
                    Some(per_second),
                )
            })
        })
        .collect();
    let mut paced = Vec::new();
    for h in handles {
        paced.extend(h.join().expect("sender thread"));
    }
    let (p50, p99) = percentiles(&mut paced);
    println!(
        "paced: {} packets at {} packets/s offered: verdict latency p50 {p50:.2} ms, p99 {p99:.2} ms (bar: p99 < 25 ms)",
        paced.len(),
        per_second * SENDERS as u64
    );

    let rss = peak_rss_kib(server.child.id());
    println!(
        "server peak RSS (VmHWM): {:.1} MB (bar: < 150 MB)",
        rss as f64 / 1024.0
    );
    let status = server.terminate();
    println!("server exit status after SIGTERM: {status}");

    let mut c = db.client();
    let stored: i64 = c
        .query_one("SELECT count(*) FROM packets", &[])
        .unwrap()
        .get(0);
    println!(
        "rows stored: {stored} (sent {})",
        total + paced.len() as u64
    );

    let opened: i64 = c
        .query_one("SELECT count(*) FROM incidents", &[])
        .unwrap()
        .get(0);
    println!(
        "incidents opened: {opened}; webhook deliveries: {}",
        delivered.load(std::sync::atomic::Ordering::Relaxed)
    );

    // The ceiling: one plain binary COPY of as many rows into the same
    // (partitioned) table, and into an unpartitioned copy of it with the same
    // indexes.
    let copy_rate = copy_ceiling(&mut c, "packets", total);
    c.batch_execute(
        "CREATE TABLE packets_unpartitioned (LIKE packets INCLUDING DEFAULTS INCLUDING CONSTRAINTS); \
         ALTER TABLE packets_unpartitioned ADD PRIMARY KEY (id, \"timestamp\"); \
         CREATE INDEX ON packets_unpartitioned (client, client_seq) WHERE client_seq IS NOT NULL; \
         CREATE INDEX ON packets_unpartitioned (id DESC) WHERE anomaly_flag; \
         CREATE INDEX ON packets_unpartitioned (protocol, id DESC); \
         CREATE INDEX ON packets_unpartitioned (client, id DESC); \
         CREATE INDEX ON packets_unpartitioned (source_ip, anomaly_flag, id); \
         CREATE INDEX ON packets_unpartitioned (dest_ip, anomaly_flag, id); \
         CREATE INDEX ON packets_unpartitioned (src_port, anomaly_flag, id); \
         CREATE INDEX ON packets_unpartitioned (dst_port, anomaly_flag, id)",
    )
    .expect("unpartitioned table");
    let unpartitioned = copy_ceiling(&mut c, "packets_unpartitioned", total);
    println!(
        "ceiling: binary COPY of {total} rows into the partitioned packets: {copy_rate:.0} rows/s; \
         into the same table unpartitioned: {unpartitioned:.0} rows/s (partitioned / plain = {:.2})",
        copy_rate / unpartitioned
    );
    println!(
        "end to end / COPY into partitioned packets = {:.2}; end to end / plain COPY = {:.2} (bar: >= 0.5)",
        rate / copy_rate,
        rate / unpartitioned
    );
}

/// `SENDERS` pipelined senders named `PREFIX0..` × `per_sender` packets as
/// fast as they go: (packets/s end to end, verdict latency p50, p99 in ms).
fn saturate(port: u16, prefix: &str, per_sender: u64) -> (f64, f64, f64) {
    let total = per_sender * SENDERS as u64;
    let started = Instant::now();
    let handles: Vec<_> = (0..SENDERS)
        .map(|i| {
            let name = format!("{prefix}{i}");
            std::thread::spawn(move || run_sender(port, &name, 1, per_sender, None))
        })
        .collect();
    let mut latencies = Vec::with_capacity(total as usize);
    for h in handles {
        latencies.extend(h.join().expect("sender thread"));
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    let (p50, p99) = percentiles(&mut latencies);
    (rate, p50, p99)
}

/// The packet lines one sender sends: seqs `first..first+count`, ~10% anomalous sizes.
fn lines(first: u64, count: u64) -> Vec<Vec<u8>> {
    (first..first + count)
        .map(|seq| {
            let size = if seq % 10 == 0 { 9000 + seq % 50_000 } else { 64 + seq * 37 % 1436 };
            let protocol = PROTOCOLS[(seq % 5) as usize];
            let port = match protocol {
                "HTTP" => "80",
                "HTTPS" => "443",
                "ICMP" => "null",
                _ => "53",
            };
            format!(
                "{{\"seq\":{seq},\"source_ip\":\"10.{}.{}.{}\",\"dest_ip\":\"192.168.1.{}\",\"packet_size\":{size},\
                 \"protocol\":\"{protocol}\",\"src_port\":{},\"dst_port\":{port}}}\n",
                seq % 256,
                seq / 256 % 256,
                seq % 250 + 1,
                seq % 200 + 1,
                49152 + seq % 16000
            )
            .into_bytes()
        })
        .collect()
}

/// Sends `count` packets (paced at `rate` per second if given) while a reader
/// thread collects verdicts; returns each packet's verdict latency in ms.
fn run_sender(port: u16, name: &str, first: u64, count: u64, rate: Option<u64>) -> Vec<f64> {
    let payload = lines(first, count);
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream
        .write_all(format!("{{\"hello\":\"{name}\"}}\n").as_bytes())
        .expect("hello");
    let sent_at: Arc<Vec<Mutex<Option<Instant>>>> =
        Arc::new((0..count).map(|_| Mutex::new(None)).collect());
    let reader_stream = stream.try_clone().expect("clone");
    let times = Arc::clone(&sent_at);
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::with_capacity(1 << 16, reader_stream);
        let mut line = String::new();
        let mut latencies = Vec::with_capacity(count as usize);
        r.read_line(&mut line).expect("welcome");
        while latencies.len() < count as usize {
            line.clear();
            if r.read_line(&mut line).expect("verdict") == 0 {
                panic!(
                    "server closed the connection after {} verdicts",
                    latencies.len()
                );
            }
            let seq = seq_of(&line).unwrap_or_else(|| panic!("not a verdict: {line}"));
            let idx = (seq - first) as usize;
            let sent = times[idx]
                .lock()
                .expect("slot")
                .expect("sent before answered");
            latencies.push(sent.elapsed().as_secs_f64() * 1e3);
        }
        latencies
    });
    match rate {
        None => {
            // Write in 64 KiB chunks as fast as the socket takes them.
            let mut buf = Vec::with_capacity(1 << 16);
            let mut marked = 0usize;
            for (i, line) in payload.iter().enumerate() {
                buf.extend_from_slice(line);
                if buf.len() >= 1 << 16 || i + 1 == payload.len() {
                    let now = Instant::now();
                    for slot in &sent_at[marked..=i] {
                        *slot.lock().expect("slot") = Some(now);
                    }
                    marked = i + 1;
                    stream.write_all(&buf).expect("send");
                    buf.clear();
                }
            }
        }
        Some(per_second) => {
            // One packet every 1/rate seconds, on schedule.
            let start = Instant::now();
            for (i, line) in payload.iter().enumerate() {
                let due = start + Duration::from_secs_f64(i as f64 / per_second as f64);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                *sent_at[i].lock().expect("slot") = Some(Instant::now());
                stream.write_all(line).expect("send");
            }
        }
    }
    reader.join().expect("reader")
}

fn seq_of(line: &str) -> Option<u64> {
    let rest = &line[line.find("\"seq\":")? + 6..];
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    rest[..end].parse().ok()
}

fn percentiles(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99))
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// One binary COPY of `rows` rows like the senders', into `table` (shaped
/// like `packets`), committed.
fn copy_ceiling(c: &mut Client, table: &str, rows: u64) -> f64 {
    let base: i64 = c
        .query_one("SELECT coalesce(max(id), 0) + 1000000 FROM packets", &[])
        .expect("max id")
        .get(0);
    let copy = COPY_PACKETS.replacen("COPY packets ", &format!("COPY {table} "), 1);
    let now = chrono::Utc::now();
    let started = Instant::now();
    let mut tx = c.transaction().expect("transaction");
    let sink = tx.copy_in(&copy).expect("copy");
    let mut w = BinaryCopyInWriter::new(sink, &COPY_TYPES);
    for i in 0..rows {
        let seq = i + 1;
        let id = base + i as i64;
        let src: std::net::IpAddr = std::net::Ipv4Addr::new(
            10,
            (seq % 256) as u8,
            (seq / 256 % 256) as u8,
            (seq % 250 + 1) as u8,
        )
        .into();
        let dst: std::net::IpAddr =
            std::net::Ipv4Addr::new(192, 168, 1, (seq % 200 + 1) as u8).into();
        let size = (64 + seq * 37 % 1436) as i32;
        let protocol = PROTOCOLS[(seq % 5) as usize];
        let score = Some(0.4f64);
        let src_port = Some((49152 + seq % 16000) as i32);
        let dst_port = Some(443i32);
        let client = format!("copy{}", i % SENDERS as u64);
        let cseq = Some(seq as i64);
        let model: Option<i64> = Some(1);
        let flag = false;
        let flags: Option<i16> = Some(0x18);
        let icmp: Option<i16> = None;
        let features: Option<Vec<u8>> = None;
        let values: [&(dyn ToSql + Sync); 16] = [
            &id, &src, &dst, &size, &protocol, &now, &flag, &score, &src_port, &dst_port, &client,
            &cseq, &model, &flags, &icmp, &features,
        ];
        w.write(&values).expect("row");
    }
    w.finish().expect("finish");
    tx.commit().expect("commit");
    rows as f64 / started.elapsed().as_secs_f64()
}
