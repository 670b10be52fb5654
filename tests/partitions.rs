//! Time partitions and retention (issue #14): exactly-once without a global
//! unique index, partitions created ahead, retention that drops exactly the
//! old partitions (by age and by size), counters and incidents on their own
//! retention, and the in-place upgrade of an unpartitioned table that keeps
//! every row while packets keep flowing.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use common::{http_get, TestDb, TestServer, ADMIN_URL};
use netsentinel::protocol::Packet;
use netsentinel::store::ingest::{BatchWrite, IngestConn, NewPacket, SenderMark};
use netsentinel::store::{self, migrate, partitions};
use postgres::{Client, NoTls};
use serde_json::Value;

fn packet(seq: u64) -> Packet {
    Packet {
        seq: Some(seq),
        source_ip: "10.0.0.1".parse().unwrap(),
        dest_ip: "10.0.0.2".parse().unwrap(),
        packet_size: 100,
        protocol: "TCP".into(),
        src_port: Some(1234),
        dst_port: Some(80),
        timestamp: Some(Utc::now()),
        tcp_flags: None,
        icmp_type: None,
    }
}

/// Writes `seqs` of `client` through `conn`, planned against `marks`.
fn write_seqs(
    conn: &mut IngestConn,
    client: &str,
    seqs: std::ops::Range<u64>,
    marks: &HashMap<String, i64>,
) -> Result<(), store::StoreError> {
    let packets: Vec<Packet> = seqs.map(packet).collect();
    let ids = conn.take_ids(packets.len())?;
    let rows: Vec<NewPacket<'_>> = packets
        .iter()
        .zip(ids)
        .map(|(p, id)| NewPacket {
            id,
            packet: p,
            timestamp: p.timestamp.unwrap(),
            client,
            anomaly: false,
            score: None,
            model_id: None,
            features: None,
        })
        .collect();
    conn.write(&BatchWrite {
        rows: &rows,
        minutes: Vec::new(),
        senders: SenderMark::of_batch(&rows, marks),
        late: &[],
        server: "test",
    })
}

#[test]
fn a_batch_planned_against_a_stale_mark_is_not_written() {
    let db = TestDb::new("part_guard");
    let pool = store::open_pool(&db.url, 2).unwrap();
    let mut a = IngestConn::new(pool.get().unwrap()).unwrap();
    let mut b = IngestConn::new(pool.get().unwrap()).unwrap();
    let none = HashMap::new();
    // Server B stores seqs 0..10 of the sender while A still believes the
    // sender has stored nothing.
    write_seqs(&mut b, "moving", 0..10, &none).unwrap();
    let err = write_seqs(&mut a, "moving", 5..15, &none).unwrap_err();
    assert!(err.is_stored_elsewhere(), "{err}");
    assert!(
        err.is_transient(),
        "retried after re-reading the mark: {err}"
    );
    assert!(err.to_string().contains("moving"), "{err}");
    assert_eq!(
        db.count("SELECT count(*) FROM packets"),
        10,
        "nothing of A's batch"
    );
    // Planned against the stored mark, the rest goes in.
    let marks = a.high_water_marks(&["moving"]).unwrap();
    assert_eq!(marks["moving"], 9);
    write_seqs(&mut a, "moving", 10..15, &marks).unwrap();
    assert_eq!(
        db.count("SELECT count(DISTINCT client_seq) FROM packets"),
        15
    );
    assert_eq!(db.count("SELECT count(*) FROM packets"), 15);
}

/// Two writers race for one sender's seqs, each planning from the mark it
/// read: every seq ends up stored exactly once (no unique index helps).
#[test]
fn two_writers_racing_for_one_sender_store_each_seq_once() {
    let db = TestDb::new("part_race");
    let pool = store::open_pool(&db.url, 3).unwrap();
    let total = 20_000u64;
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let mut conn = IngestConn::new(pool.get().unwrap()).unwrap();
                let mut lost = 0;
                loop {
                    let marks = conn.high_water_marks(&["racer"]).unwrap();
                    let next = (marks.get("racer").copied().unwrap_or(-1) + 1) as u64;
                    if next >= total {
                        return lost;
                    }
                    // Uneven batch sizes so the writers overlap.
                    let end = (next + 150 + 70 * w).min(total);
                    match write_seqs(&mut conn, "racer", next..end, &marks) {
                        Ok(()) => {}
                        Err(e) if e.is_stored_elsewhere() => lost += 1,
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    let lost: Vec<u64> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    println!("batches refused for a stale mark: {lost:?}");
    assert_eq!(db.count("SELECT count(*) FROM packets"), total as i64);
    assert_eq!(
        db.count("SELECT count(DISTINCT client_seq) FROM packets"),
        total as i64
    );
}

fn day_start(day: NaiveDate) -> DateTime<Utc> {
    partitions::midnight(day)
}

/// Inserts `n` rows stamped through the hours after `at`.
fn insert_rows(c: &mut Client, at: DateTime<Utc>, n: i64, client: &str, payload: i32) {
    c.execute(
        "INSERT INTO packets (id, source_ip, dest_ip, packet_size, protocol, \"timestamp\", \
         client, client_seq, features) \
         SELECT nextval('packets_id_seq'), '10.1.0.1', '10.2.0.2', 100, 'TCP', \
                $1::timestamptz + g * interval '1 second', $3, g, \
                CASE WHEN $4::int4 > 0 THEN decode(repeat(md5(g::text), $4::int4), 'hex') END \
         FROM generate_series(1, $2::int8) g",
        &[&at, &n, &client, &payload],
    )
    .unwrap();
}

/// The next `n` answers to lines, skipping late verdicts (second verdicts
/// for packets stored before the first model).
fn answers(s: &mut common::Sender, n: usize) -> Vec<Value> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let v = s.recv();
        if v["late"] != true {
            out.push(v);
        }
    }
    out
}

fn json_get(port: u16, path: &str) -> Value {
    let (status, body) = http_get(port, path);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn partition_names(c: &mut Client) -> Vec<String> {
    partitions::layout(c)
        .unwrap()
        .dated
        .into_iter()
        .map(|p| p.name)
        .collect()
}

#[test]
fn retention_drops_exactly_the_partitions_past_the_limit() {
    let db = TestDb::new("retention");
    drop(store::open_pool(&db.url, 1).unwrap()); // creates and migrates
    let mut c = db.client();
    let today = Utc::now().date_naive();
    let day = |back: i64| today - TimeDelta::days(back);
    partitions::ensure(&mut c, 1, day(10), day(0)).unwrap();
    for back in 1..=10 {
        insert_rows(&mut c, day_start(day(back)), 100, "old", 0);
    }
    // Stragglers: a replay of an old capture, in the default partition.
    insert_rows(
        &mut c,
        "2017-07-07T10:00:00Z".parse().unwrap(),
        50,
        "replay",
        0,
    );
    // Counters of 6 and 4 days ago; incidents that ended 6 days ago (one
    // closed, one still open) and 1 day ago.
    for back in [6, 4] {
        c.execute(
            "INSERT INTO traffic_minutes (minute, protocol, packets, bytes, anomalies) \
             VALUES ($1, 'TCP', 1, 1, 0)",
            &[&(day_start(day(back)) + TimeDelta::hours(1))],
        )
        .unwrap();
    }
    for (i, (back, status)) in [(6, "closed"), (6, "open"), (1, "closed")]
        .iter()
        .enumerate()
    {
        let seen = day_start(day(*back)) + TimeDelta::hours(1);
        c.execute(
            "INSERT INTO incidents (first_packet, host, role, kind, status, first_seen, last_seen, \
             packets, bytes, peers, ports, top_peers, top_ports, senders, peak_score, \
             peak_packet, summary, reasons) VALUES ($1, '10.9.9.9', 'source', 'scan', $2, $3, $3, \
             1, 1, 1, 1, '[]', '[]', '{}', 1.0, $1, 'test', '[]')",
            &[&(i as i64 + 1), status, &seen],
        )
        .unwrap();
    }

    let server = TestServer::start(
        &db,
        &[
            "storage.retention_days=3",
            "storage.counter_retention_days=5",
            "storage.incident_retention_days=5",
        ],
    );
    // The first round runs before the server accepts: partitions of days
    // 4..10 back ended at least 3 days ago; day 3 back ends 2 days ago.
    let names = partition_names(&mut c);
    let expected: Vec<String> = (-2..=3)
        .rev()
        .map(|back| partitions::partition_name(day_start(day(back))))
        .collect();
    assert_eq!(names, expected, "kept: 3 days back, today and 2 ahead");
    assert_eq!(
        db.count("SELECT count(*) FROM packets WHERE client = 'old'"),
        300,
        "the kept days keep every row"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM packets_default"),
        50,
        "stragglers are not dated: retention leaves them"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM packet_partition_drops WHERE reason = 'retention'"),
        7
    );
    let log = server.log_text();
    for back in 4..=10 {
        let name = partitions::partition_name(day_start(day(back)));
        assert!(log.contains(&format!("dropped partition {name}")), "{log}");
    }
    assert_eq!(
        db.count("SELECT count(*) FROM traffic_minutes"),
        1,
        "counters: only the 6-day-old row is past 5 days"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM incidents ORDER BY 1"),
        2,
        "the old closed incident goes; the open one and the recent one stay"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM incidents WHERE status = 'open'"),
        1
    );

    // A packet of now lands in today's partition.
    let mut s = server.connect();
    s.hello("live");
    s.send_packets(1..=5);
    let v = answers(&mut s, 5);
    assert!(v.iter().all(|v| v.get("error").is_none()), "{v:?}");
    let today_name = partitions::partition_name(day_start(today));
    assert_eq!(
        db.count(&format!(
            "SELECT count(*) FROM packets WHERE client = 'live' AND tableoid = '{today_name}'::regclass"
        )),
        5
    );

    let storage = json_get(server.dashboard_port, "/api/storage");
    assert_eq!(storage["retention_days"], 3, "{storage}");
    assert_eq!(storage["drops_total"], 7, "{storage}");
    assert_eq!(storage["partitions"].as_array().unwrap().len(), 6);
    assert_eq!(storage["drops"][0]["reason"], "retention");
    assert!(storage["default_partition"]["bytes"].as_i64().unwrap() > 0);
    let (_, metrics) = http_get(server.dashboard_port, "/metrics");
    assert!(
        metrics.contains("netsentinel_partitions_dropped_total{reason=\"retention\"} 7"),
        "{metrics}"
    );
    assert!(
        metrics.contains("netsentinel_packet_partitions 6"),
        "{metrics}"
    );
    assert!(
        metrics.contains("netsentinel_retention_days 3"),
        "{metrics}"
    );
}

#[test]
fn an_oversized_database_drops_its_oldest_partitions_until_it_fits() {
    let db = TestDb::new("maxbytes");
    drop(store::open_pool(&db.url, 1).unwrap());
    let mut c = db.client();
    let today = Utc::now().date_naive();
    let day = |back: i64| today - TimeDelta::days(back);
    partitions::ensure(&mut c, 1, day(5), day(0)).unwrap();
    for back in 1..=5 {
        // About 1.5 kB per row, stored inline: some 12 MB per day.
        insert_rows(&mut c, day_start(day(back)), 8_000, "bulk", 93);
    }
    c.batch_execute("CHECKPOINT").unwrap();
    let layout = partitions::layout(&mut c).unwrap();
    let size = partitions::database_bytes(&mut c).unwrap();
    let (oldest, second) = (&layout.dated[0], &layout.dated[1]);
    assert!(oldest.bytes > 5_000_000, "{oldest:?}");
    // Room for all but the oldest and half the next: two must go.
    let limit = size - oldest.bytes - second.bytes / 2;
    let server = TestServer::start(&db, &[&format!("storage.max_database_bytes={limit}")]);
    let names = partition_names(&mut c);
    let gone = [
        partitions::partition_name(day_start(day(5))),
        partitions::partition_name(day_start(day(4))),
    ];
    for g in &gone {
        assert!(!names.contains(g), "{g} dropped: {names:?}");
        assert!(
            server
                .log_text()
                .contains(&format!("dropped partition {g}")),
            "{}",
            server.log_text()
        );
    }
    assert!(
        names.contains(&partitions::partition_name(day_start(day(3)))),
        "only what was needed: {names:?}"
    );
    assert!(partitions::database_bytes(&mut c).unwrap() <= limit);
    assert_eq!(db.count("SELECT count(*) FROM packets"), 3 * 8_000);
    assert_eq!(
        db.count("SELECT count(*) FROM packet_partition_drops WHERE reason = 'size'"),
        2
    );
    let (_, metrics) = http_get(server.dashboard_port, "/metrics");
    assert!(
        metrics.contains("netsentinel_partitions_dropped_total{reason=\"size\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("netsentinel_database_over_limit 0"),
        "{metrics}"
    );

    // A limit nothing older can meet: today's partition stays, a warning says
    // why, and /metrics shows it.
    drop(server);
    let server = TestServer::start(&db, &["storage.max_database_bytes=1000"]);
    let names = partition_names(&mut c);
    assert!(names.contains(&partitions::partition_name(day_start(today))));
    assert_eq!(
        db.count("SELECT count(*) FROM packets"),
        0,
        "every day before today was dropped"
    );
    assert!(
        server
            .log_text()
            .contains("no partition older than today is left to drop"),
        "{}",
        server.log_text()
    );
    let (_, metrics) = http_get(server.dashboard_port, "/metrics");
    assert!(
        metrics.contains("netsentinel_database_over_limit 1"),
        "{metrics}"
    );
}

#[test]
fn the_in_place_upgrade_moves_every_row_while_packets_keep_flowing() {
    let db = TestDb::new("upgrade");
    {
        let mut admin = Client::connect(ADMIN_URL, NoTls).unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {}", db.name))
            .unwrap();
    }
    let mut c = db.client();
    // The schema of the previous version: everything before 0012.
    migrate::apply_until(&mut c, migrate::MIGRATIONS.len() - 1).unwrap();
    assert_eq!(db.count("SELECT count(*) FROM pg_inherits"), 0);
    let old = 120_000i64;
    let now = Utc::now();
    let start = now - TimeDelta::days(3);
    // Old packets over the last three days (seconds apart), then stragglers
    // from an old capture; the counters say when this installation began.
    c.execute(
        "INSERT INTO packets (id, source_ip, dest_ip, packet_size, protocol, \"timestamp\", \
         client, client_seq, anomaly_flag, anomaly_score) \
         SELECT nextval('packets_id_seq'), '10.1.0.1', ('10.2.' || (g % 250) || '.1')::inet, \
                g % 1500, 'TCP', $1::timestamptz + g * interval '2 seconds', 'old', g - 1, \
                g % 10 = 0, g / 1e6 \
         FROM generate_series(1, $2::int8) g",
        &[&start, &old],
    )
    .unwrap();
    insert_rows(
        &mut c,
        "2017-07-07T10:00:00Z".parse().unwrap(),
        1_000,
        "replay",
        0,
    );
    c.execute(
        "INSERT INTO traffic_minutes (minute, protocol, packets, bytes, anomalies) \
         VALUES ($1, 'TCP', $2, 0, 0)",
        &[&start, &old],
    )
    .unwrap();
    c.execute(
        "INSERT INTO senders (client, last_seq, packets) VALUES ('old', $1, $2)",
        &[&(old - 1), &old],
    )
    .unwrap();
    let checksum = "SELECT md5(string_agg(p::text, '|' ORDER BY id)) FROM packets p";
    let before: String = c.query_one(checksum, &[]).unwrap().get(0);
    let stored_ids: HashMap<i64, i64> = c
        .query(
            "SELECT client_seq, id FROM packets WHERE client = 'old' AND client_seq >= $1",
            &[&(old - 100)],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let max_old_id: i64 = c
        .query_one("SELECT max(id) FROM packets", &[])
        .unwrap()
        .get(0);

    let started = std::time::Instant::now();
    let server = TestServer::start(&db, &[]);
    let ready = started.elapsed();
    println!(
        "server accepting {:.2} s after start (migration included)",
        ready.as_secs_f64()
    );
    // While the rows move: a new sender streams, and the old one reconnects,
    // resends its last 100 packets (answered from the table, wherever the
    // row is at that moment) and goes on.
    let fresh = {
        let port = server.port;
        std::thread::spawn(move || {
            let mut s = common::Sender::connect(port);
            s.hello("fresh");
            let mut all = Vec::new();
            for chunk in 0..20u64 {
                s.send_packets(chunk * 100 + 1..=chunk * 100 + 100);
                all.extend(answers(&mut s, 100));
                std::thread::sleep(Duration::from_millis(20));
            }
            all
        })
    };
    let mut s = server.connect();
    s.hello("old");
    let first = (old - 100) as u64;
    s.send_packets(first..first + 200);
    for v in &answers(&mut s, 200) {
        assert!(v.get("error").is_none(), "{v}");
        let seq = v["seq"].as_i64().unwrap();
        if let Some(id) = stored_ids.get(&seq) {
            assert_eq!(
                v["id"].as_i64(),
                Some(*id),
                "a resend gets its stored row: {v}"
            );
        }
    }
    let fresh = fresh.join().unwrap();
    assert_eq!(fresh.len(), 2_000);
    assert!(fresh.iter().all(|v| v.get("error").is_none()));

    server.wait_for_log(
        "upgrade to time partitions finished",
        Duration::from_secs(120),
    );
    assert_eq!(
        db.count("SELECT count(*) FROM pg_class WHERE relname = 'packets_legacy'"),
        0,
        "the emptied old table is dropped"
    );
    let after: String = c
        .query_one(
            &format!(
                "SELECT md5(string_agg(p::text, '|' ORDER BY id)) FROM packets p WHERE id <= {max_old_id}"
            ),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(before, after, "every old row, unchanged, once");
    assert_eq!(
        db.count("SELECT count(*) FROM packets"),
        old + 1_000 + 2_000 + 100
    );
    assert_eq!(
        db.count("SELECT count(*) FROM packets"),
        db.count("SELECT count(DISTINCT id) FROM packets")
    );
    assert_eq!(
        db.count("SELECT count(DISTINCT client_seq) FROM packets WHERE client = 'old'"),
        old + 100
    );
    assert_eq!(
        db.count("SELECT count(*) FROM packets_default"),
        1_000,
        "only the old capture's stragglers are undated"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM packets WHERE client = 'old' AND tableoid <> 'packets_default'::regclass"),
        old + 100
    );
    let (_, metrics) = http_get(server.dashboard_port, "/metrics");
    assert!(
        metrics.contains(&format!(
            "netsentinel_upgrade_rows_moved_total {}",
            old + 1_000
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains("netsentinel_storage_upgrading 0"),
        "{metrics}"
    );
}

#[test]
fn a_day_the_default_partition_already_holds_is_left_to_it() {
    let db = TestDb::new("part_default");
    drop(store::open_pool(&db.url, 1).unwrap());
    let mut c = db.client();
    let far = Utc::now().date_naive() + TimeDelta::days(40);
    // A sender's clock 40 days ahead: no partition yet, the default takes it.
    insert_rows(&mut c, day_start(far), 3, "skewed", 0);
    assert_eq!(db.count("SELECT count(*) FROM packets_default"), 3);
    let made = partitions::ensure(
        &mut c,
        1,
        far - TimeDelta::days(1),
        far + TimeDelta::days(2),
    )
    .unwrap();
    let name = |d: NaiveDate| partitions::partition_name(day_start(d));
    assert_eq!(
        made,
        vec![
            partitions::Created::Yes(name(far - TimeDelta::days(1))),
            partitions::Created::DefaultHasRows(name(far)),
            partitions::Created::Yes(name(far + TimeDelta::days(1))),
        ]
    );
    assert_eq!(
        db.count("SELECT count(*) FROM packets_default"),
        3,
        "nothing lost"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM packets WHERE client = 'skewed'"),
        3
    );
    // Asking again changes nothing and fails nothing.
    let again = partitions::ensure(
        &mut c,
        1,
        far - TimeDelta::days(1),
        far + TimeDelta::days(2),
    )
    .unwrap();
    assert_eq!(again, vec![partitions::Created::DefaultHasRows(name(far))]);
}

/// Searches read partition by partition, the one with the newest ids first,
/// and stop early: whatever the layout (a replay's old timestamps with new
/// ids, a partition reached only through the default), every search, page
/// by page, returns exactly what one `ORDER BY id DESC` over the whole table
/// returns.
#[test]
fn searches_across_partitions_match_one_scan_of_the_whole_table() {
    use netsentinel::store::queries::{self, PacketFilter};
    let db = TestDb::new("part_search");
    drop(store::open_pool(&db.url, 1).unwrap());
    let mut c = db.client();
    let today = Utc::now().date_naive();
    partitions::ensure(
        &mut c,
        1,
        today - TimeDelta::days(6),
        today + TimeDelta::days(1),
    )
    .unwrap();
    // Rounds of inserts in an order unrelated to the days: each round
    // writes some rows into every day and into the default partition, so
    // each partition's ids interleave with the others'. Sources: 273
    // addresses of 10.0.0.0/8 in every partition (more than the skip scan
    // visits one by one: the network is walked on that side).
    for round in 0..4i64 {
        for back in [3i64, 0, 6, 1, 5, 2, 4] {
            let at = day_start(today - TimeDelta::days(back)) + TimeDelta::hours(round);
            c.execute(
                "INSERT INTO packets (id, source_ip, dest_ip, packet_size, protocol, \"timestamp\", \
                 client, client_seq, anomaly_flag, src_port, dst_port) \
                 SELECT nextval('packets_id_seq'), \
                        ('10.' || (g % 3) || '.' || (g % 7) || '.' || (g % 13 + 1))::inet, \
                        ('192.168.' || (g % 5) || '.1')::inet, 100, 'TCP', \
                        $1::timestamptz + g * interval '1 second', 'mix', NULL, g % 9 = 0, \
                        40000 + g % 13, CASE WHEN g % 97 = 0 THEN 8443 ELSE 443 END \
                 FROM generate_series(1, 300) g",
                &[&at],
            )
            .unwrap();
        }
        insert_rows(
            &mut c,
            "2016-01-01T00:00:00Z".parse().unwrap(),
            40,
            "replay",
            0,
        );
    }
    let searches: Vec<(&str, PacketFilter)> = vec![
        (
            "host",
            PacketFilter {
                host: Some("10.1.3.4".parse().unwrap()),
                ..Default::default()
            },
        ),
        (
            "dest host",
            PacketFilter {
                host: Some("192.168.2.1".parse().unwrap()),
                ..Default::default()
            },
        ),
        (
            "dense net",
            PacketFilter {
                net: Some("10.0.0.0/8".into()),
                ..Default::default()
            },
        ),
        (
            "dense anomalous net",
            PacketFilter {
                net: Some("10.0.0.0/8".into()),
                anomalies_only: true,
                ..Default::default()
            },
        ),
        (
            "sparse net",
            PacketFilter {
                net: Some("10.2.5.0/24".into()),
                ..Default::default()
            },
        ),
        (
            "both sides",
            PacketFilter {
                net: Some("0.0.0.0/0".into()),
                ..Default::default()
            },
        ),
        (
            "port",
            PacketFilter {
                port: Some(8443),
                ..Default::default()
            },
        ),
        (
            "anomalous port",
            PacketFilter {
                port: Some(40003),
                anomalies_only: true,
                ..Default::default()
            },
        ),
    ];
    let where_of = |name: &str| match name {
        "host" => "(source_ip = '10.1.3.4' OR dest_ip = '10.1.3.4')",
        "dest host" => "(source_ip = '192.168.2.1' OR dest_ip = '192.168.2.1')",
        "dense net" => "(source_ip <<= '10.0.0.0/8' OR dest_ip <<= '10.0.0.0/8')",
        "dense anomalous net" => {
            "(source_ip <<= '10.0.0.0/8' OR dest_ip <<= '10.0.0.0/8') AND anomaly_flag"
        }
        "sparse net" => "(source_ip <<= '10.2.5.0/24' OR dest_ip <<= '10.2.5.0/24')",
        "both sides" => "true",
        "port" => "(src_port = 8443 OR dst_port = 8443)",
        _ => "(src_port = 40003 OR dst_port = 40003) AND anomaly_flag",
    };
    for (name, filter) in searches {
        let mut before: Option<i64> = None;
        let mut pages = 0;
        loop {
            let f = PacketFilter {
                limit: 37,
                before,
                ..filter.clone()
            };
            let got: Vec<i64> = queries::packets(&mut c, &f)
                .unwrap()
                .iter()
                .map(|r| r.id)
                .collect();
            let want: Vec<i64> = c
                .query(
                    &format!(
                        "SELECT id FROM packets WHERE {} AND id < $1 ORDER BY id DESC LIMIT 37",
                        where_of(name)
                    ),
                    &[&before.unwrap_or(i64::MAX)],
                )
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            assert_eq!(got, want, "{name}, page {pages}");
            pages += 1;
            // Forty pages reach back over several rounds of every partition.
            match got.last() {
                Some(&last) if got.len() == 37 && pages < 40 => before = Some(last),
                _ => break,
            }
        }
        if name == "dense net" || name == "dest host" {
            assert!(pages > 3, "{name}: {pages} pages");
        }
    }
}
