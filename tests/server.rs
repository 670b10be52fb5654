//! `netsentinel server` end to end: the real binary, a real PostgreSQL (one
//! database per test), raw protocol over TCP (issue #3's acceptance).

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::{packet, Sender, TestDb, TestServer};
use serde_json::Value;

#[test]
fn thousand_packets_give_thousand_rows_and_thousand_verdicts_in_order() {
    let db = TestDb::new("thousand");
    let server = TestServer::start(&db, &[]);
    let mut s = server.connect();
    let welcome = s.hello("c1");
    assert_eq!(welcome["welcome"], "netsentinel");
    assert_eq!(welcome["version"], 1);
    assert_eq!(welcome["max_clients"], 5);
    s.send_packets(1..=1000);
    let verdicts = s.recv_n(1000);
    let mut last_id = 0;
    for (i, v) in verdicts.iter().enumerate() {
        assert_eq!(v["seq"], i as u64 + 1, "verdicts in the order sent");
        let id = v["id"].as_i64().unwrap();
        assert!(id > last_id);
        last_id = id;
        assert!(v["anomaly"].is_boolean());
        assert!(v.get("duplicate").is_none());
    }
    assert_eq!(db.count("SELECT count(*) FROM packets"), 1000);
    assert_eq!(
        db.count("SELECT count(*) FROM packets WHERE client = 'c1'"),
        1000
    );
    assert_eq!(
        db.count("SELECT sum(packets)::int8 FROM traffic_minutes"),
        1000
    );
    assert_eq!(
        db.count("SELECT last_seq FROM senders WHERE client = 'c1'"),
        1000
    );
    // Every verdict's id is the row with that seq.
    let mut c = db.client();
    for v in verdicts.iter().step_by(97) {
        let row = c
            .query_one(
                "SELECT client_seq, anomaly_flag FROM packets WHERE id = $1",
                &[&v["id"].as_i64().unwrap()],
            )
            .unwrap();
        assert_eq!(row.get::<_, i64>(0), v["seq"].as_i64().unwrap());
        assert_eq!(row.get::<_, bool>(1), v["anomaly"].as_bool().unwrap());
    }
}

#[test]
fn seven_senders_with_max_clients_five_never_more_than_five_served() {
    let db = TestDb::new("seven");
    let server = TestServer::start(&db, &["server.max_clients=5"]);
    // Five connect and are served: their hello is answered at once.
    let mut served: Vec<Sender> = (0..5)
        .map(|i| {
            let mut s = server.connect();
            assert_eq!(s.hello(&format!("served{i}"))["welcome"], "netsentinel");
            s
        })
        .collect();
    // Two more are accepted but told their place in line.
    let mut waiting: Vec<Sender> = (0..2)
        .map(|i| {
            let mut s = server.connect();
            let queued = s.recv();
            assert_eq!(queued["queued"], i + 1, "{queued}");
            assert_eq!(queued["max_clients"], 5);
            s
        })
        .collect();
    // A waiting sender's packet is not answered while five are served.
    waiting[0].send_raw("{\"hello\":\"late0\"}\n");
    waiting[0].send_packets([1]);
    waiting[0]
        .stream
        .set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    assert!(
        waiting[0].try_recv().is_none(),
        "a sixth connection was served"
    );
    // The served ones work, then one leaves: the first in line is served.
    for (i, s) in served.iter_mut().enumerate() {
        s.send_packets(1..=10);
        assert_eq!(s.recv_n(10).len(), 10, "served{i}");
    }
    drop(served.remove(0));
    waiting[0]
        .stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(waiting[0].recv()["welcome"], "netsentinel");
    assert_eq!(waiting[0].recv()["seq"], 1);
    // The second waits until another leaves.
    waiting[1].send_raw("{\"hello\":\"late1\"}\n");
    waiting[1]
        .stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    assert!(waiting[1].try_recv().is_none());
    drop(served.remove(0));
    waiting[1]
        .stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(waiting[1].recv()["welcome"], "netsentinel");
    assert_eq!(db.count("SELECT count(DISTINCT client) FROM packets"), 6);
}

#[test]
fn waiting_longer_than_queue_timeout_is_a_clear_error() {
    let db = TestDb::new("qtimeout");
    let server = TestServer::start(&db, &["server.max_clients=1", "server.queue_timeout_s=1"]);
    let mut first = server.connect();
    first.hello("holder");
    let mut second = server.connect();
    assert_eq!(second.recv()["queued"], 1);
    let closing = second.recv();
    assert!(
        closing["error"]
            .as_str()
            .unwrap()
            .contains("queue_timeout_s"),
        "{closing}"
    );
    assert_eq!(closing["closing"], true);
    assert!(second.try_recv().is_none(), "closed after the error");
}

#[test]
fn concurrent_senders_keep_per_sender_fifo_order_in_the_table() {
    let db = TestDb::new("fifo");
    let server = TestServer::start(&db, &[]);
    let handles: Vec<_> = (0..4)
        .map(|i| {
            server.spawn_sender(&format!("fifo{i}"), |s| {
                for chunk in 0..10u64 {
                    s.send_packets(chunk * 200 + 1..=chunk * 200 + 200);
                }
                s.recv_n(2000)
            })
        })
        .collect();
    for h in handles {
        let verdicts = h.join().unwrap();
        let seqs: Vec<u64> = verdicts
            .iter()
            .map(|v| v["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, (1..=2000).collect::<Vec<_>>());
    }
    // In the table, ids grow with seq for every sender.
    let disorder = db.count(
        "SELECT count(*) FROM (SELECT client_seq, lag(client_seq) OVER (PARTITION BY client ORDER BY id) AS prev \
         FROM packets) t WHERE prev IS NOT NULL AND prev >= client_seq",
    );
    assert_eq!(disorder, 0);
    assert_eq!(db.count("SELECT count(*) FROM packets"), 8000);
}

#[test]
fn bad_lines_get_errors_and_the_good_lines_around_them_are_stored() {
    let db = TestDb::new("badlines");
    let server = TestServer::start(&db, &[]);
    let mut s = server.connect();
    s.hello("mixed");
    let good = |seq| packet(seq).to_string();
    let lines = [
        good(1),
        "{not json".to_string(),
        good(2),
        r#"{"seq":3,"source_ip":"1.1.1.1","dest_ip":"2.2.2.2","packet_size":-5,"protocol":"TCP"}"#
            .to_string(),
        "[1,2,3]".to_string(),
        good(4),
        r#"{"hello":"again"}"#.to_string(),
        good(5),
    ];
    s.send_raw(&(lines.join("\n") + "\n"));
    let replies = s.recv_n(8);
    assert_eq!(replies[0]["seq"], 1);
    assert_eq!(replies[1]["line"], 3);
    assert!(replies[1]["error"]
        .as_str()
        .unwrap()
        .contains("malformed JSON"));
    assert_eq!(replies[2]["seq"], 2);
    assert_eq!(replies[3]["line"], 5);
    assert_eq!(replies[3]["seq"], 3);
    assert_eq!(
        replies[3]["error"],
        "packet_size must be an integer 0..=65535, got -5"
    );
    assert!(replies[4]["error"].as_str().unwrap().contains("array"));
    assert_eq!(replies[5]["seq"], 4);
    assert!(replies[6]["error"].as_str().unwrap().contains("first line"));
    assert_eq!(replies[7]["seq"], 5);
    assert_eq!(db.count("SELECT count(*) FROM packets"), 4);
    // A line over 64 KiB ends the connection after everything before it is answered.
    s.send_packets([6]);
    s.send_raw(&format!("{}\n", "x".repeat(70_000)));
    s.send_packets([7]);
    assert_eq!(s.recv()["seq"], 6);
    let last = s.recv();
    assert!(
        last["error"]
            .as_str()
            .unwrap()
            .contains("longer than 65536"),
        "{last}"
    );
    assert_eq!(last["closing"], true);
    assert!(s.try_recv().is_none());
    assert_eq!(db.count("SELECT count(*) FROM packets"), 5);
}

#[test]
fn resend_after_reconnect_stores_nothing_twice_and_returns_stored_verdicts() {
    let db = TestDb::new("resend");
    let server = TestServer::start(&db, &[]);
    let mut first = server.connect();
    first.hello("resender");
    first.send_packets(1..=100);
    let original: Vec<Value> = first.recv_n(100);
    drop(first);
    let mut again = server.connect();
    again.hello("resender");
    again.send_packets(51..=150);
    let replies = again.recv_n(100);
    for (i, r) in replies.iter().enumerate() {
        let seq = 51 + i as u64;
        assert_eq!(r["seq"], seq);
        if seq <= 100 {
            assert_eq!(r["duplicate"], true, "{r}");
            let before = &original[(seq - 1) as usize];
            assert_eq!(r["id"], before["id"]);
            assert_eq!(r["anomaly"], before["anomaly"]);
            assert_eq!(r["score"], before["score"]);
        } else {
            assert!(r.get("duplicate").is_none(), "{r}");
        }
    }
    // A resend inside one batch is answered too, and a seq below the mark
    // that was never stored is refused.
    again.send_packets([150, 150]);
    let dup = again.recv_n(2);
    assert_eq!(dup[0]["duplicate"], true);
    assert_eq!(dup[0]["id"], dup[1]["id"]);
    assert_eq!(db.count("SELECT count(*) FROM packets"), 150);
    assert_eq!(
        db.count("SELECT count(DISTINCT client_seq) FROM packets"),
        150
    );
}

#[test]
fn sigterm_mid_stream_keeps_every_acknowledged_packet_and_exits_zero() {
    let db = TestDb::new("sigterm");
    let mut server = TestServer::start(&db, &[]);
    let sender = server.spawn_sender("streamer", |s| {
        let mut acked = Vec::new();
        let mut seq = 1;
        // Send in chunks until the server stops answering.
        'outer: for _ in 0..400 {
            let text: String = (seq..seq + 100)
                .map(|q| format!("{}\n", packet(q)))
                .collect();
            if s.stream.write_all(text.as_bytes()).is_err() {
                break;
            }
            seq += 100;
            for _ in 0..100 {
                match s.try_recv() {
                    Some(v) if v.get("id").is_some() => acked.push(v),
                    _ => break 'outer,
                }
            }
        }
        while let Some(v) = s.try_recv() {
            if v.get("id").is_some() {
                acked.push(v);
            }
        }
        acked
    });
    std::thread::sleep(Duration::from_millis(400));
    let status = server.terminate();
    assert!(
        status.success(),
        "exit status {status:?}\n{}",
        server.log_text()
    );
    let acked = sender.join().unwrap();
    assert!(!acked.is_empty());
    let mut c = db.client();
    let ids: Vec<i64> = acked.iter().map(|v| v["id"].as_i64().unwrap()).collect();
    let stored: i64 = c
        .query_one("SELECT count(*) FROM packets WHERE id = ANY($1)", &[&ids])
        .unwrap()
        .get(0);
    assert_eq!(
        stored as usize,
        acked.len(),
        "every acknowledged packet is stored"
    );
    assert!(server.log_text().contains("server stopped"));
}

#[test]
fn killed_database_connections_lose_nothing_and_duplicate_nothing() {
    let db = TestDb::new("pgkill");
    let server = TestServer::start(&db, &["server.batch_max=200"]);
    let sender = server.spawn_sender("survivor", |s| s.stream_chunks(40, 500, Duration::ZERO));
    let started = Instant::now();
    let mut kills = 0;
    let mut admin = postgres::Client::connect(common::ADMIN_URL, postgres::NoTls).unwrap();
    while !sender.is_finished() && started.elapsed() < Duration::from_secs(60) {
        let n: i64 = admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&db.name],
            )
            .unwrap()
            .get(0);
        kills += n;
        std::thread::sleep(Duration::from_millis(150));
    }
    let verdicts = sender.join().unwrap();
    assert!(kills > 0, "no backend was killed");
    common::assert_each_seq_once(&verdicts, 20_000);
    assert_eq!(db.count("SELECT count(*) FROM packets"), 20_000);
    assert_eq!(
        db.count("SELECT count(DISTINCT client_seq) FROM packets"),
        20_000
    );
    assert_eq!(
        db.count("SELECT sum(packets)::int8 FROM traffic_minutes"),
        20_000
    );
    assert!(
        server.log_text().contains("database write failed"),
        "{}",
        server.log_text()
    );
}

#[test]
fn cold_start_trains_at_min_train_packets_and_judges_the_early_packets_late() {
    let db = TestDb::new("coldstart");
    let server = TestServer::start(&db, &["detector.min_train_packets=50"]);
    let mut s = server.connect();
    s.hello("cold");
    s.send_packets(1..=49);
    let first = s.recv_n(49);
    assert!(first
        .iter()
        .all(|v| v["score"].is_null() && v["anomaly"] == false));
    // The 50th packet trains the first model: it is answered with a score,
    // and each of the 49 before it gets a second, late verdict with one.
    s.send_packets([50]);
    let lines = s.recv_n(50);
    let (late, now): (Vec<_>, Vec<_>) = lines.iter().partition(|v| v["late"] == true);
    assert_eq!(now.len(), 1, "{lines:?}");
    assert_eq!(now[0]["seq"], 50);
    assert!(now[0]["score"].is_f64(), "{}", now[0]);
    let mut seqs: Vec<u64> = late
        .iter()
        .map(|v| {
            assert!(v["score"].is_f64(), "{v}");
            v["seq"].as_u64().unwrap()
        })
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=49).collect::<Vec<_>>());
    s.send_packets(51..=150);
    let later = s.recv_n(100);
    assert!(
        later
            .iter()
            .all(|v| v["score"].is_f64() && v["late"].is_null()),
        "{:?}",
        later[0]
    );
    // The early rows were updated in place: score, verdict and the first model.
    assert_eq!(
        db.count(
            "SELECT count(*) FROM packets WHERE model_id IS NOT NULL AND anomaly_score IS NOT NULL"
        ),
        150
    );
    assert_eq!(
        db.count("SELECT count(*) FROM packets WHERE client_seq <= 50 AND model_id = (SELECT min(id) FROM models)"),
        50
    );
    assert_eq!(
        db.count("SELECT training_rows::int8 FROM models ORDER BY id LIMIT 1"),
        50
    );
    // The counters agree with the rows after the late verdicts.
    assert_eq!(
        db.count("SELECT sum(anomalies)::int8 FROM traffic_minutes"),
        db.count("SELECT count(*) FROM packets WHERE anomaly_flag")
    );
}

#[test]
fn retrain_command_stores_a_model_the_running_server_picks_up() {
    let db = TestDb::new("retrain");
    let server = TestServer::start(&db, &["detector.min_train_packets=10000"]);
    let mut s = server.connect();
    s.hello("r");
    s.send_packets(1..=300);
    s.recv_n(300);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_netsentinel"))
        .args([
            "retrain",
            "--database-url",
            &db.url,
            "--set",
            "detector.min_train_packets=100",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("trained at"));
    server.wait_for_log("model 1 in use", Duration::from_secs(10));
    s.send_packets([301]);
    assert!(s.recv()["score"].is_f64());
    // Too little data: a clear error, exit 1.
    let empty = TestDb::new("retrain_empty");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_netsentinel"))
        .args(["retrain", "--database-url", &empty.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("training needs at least 50"));
}

#[test]
fn unreachable_database_at_start_is_one_clear_error_and_exit_1() {
    let port = common::free_port();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_netsentinel"))
        .args([
            "server",
            "--port",
            &common::free_port().to_string(),
            "--database-url",
            &format!("postgresql://postgres@127.0.0.1:{port}/x"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot connect to PostgreSQL at 127.0.0.1:"),
        "{err}"
    );
    assert!(err.contains("setup-db.sh"), "{err}");
}

#[test]
fn idle_connection_is_closed_with_a_reason() {
    let db = TestDb::new("idle");
    let server = TestServer::start(&db, &["server.idle_timeout_s=1"]);
    let mut s = server.connect();
    let started = Instant::now();
    let last = s.recv();
    assert!(last["error"].as_str().unwrap().contains("idle"), "{last}");
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[test]
fn a_packet_the_database_refuses_gets_an_error_and_the_rest_are_stored() {
    let db = TestDb::new("poison");
    let server = TestServer::start(&db, &[]);
    // A trigger that refuses one particular size, standing in for any lasting
    // database refusal (a broken constraint, a full tablespace, …).
    db.client()
        .batch_execute(
            "CREATE FUNCTION refuse_4242() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN IF NEW.packet_size = 4242 THEN RAISE EXCEPTION 'size 4242 refused by test trigger'; END IF; \
             RETURN NEW; END $$; \
             CREATE TRIGGER refuse_4242 BEFORE INSERT ON packets FOR EACH ROW EXECUTE FUNCTION refuse_4242();",
        )
        .unwrap();
    let mut s = server.connect();
    s.hello("mixed");
    let mut text = String::new();
    for seq in 1..=20u64 {
        let mut p = packet(seq);
        if seq == 7 {
            p["packet_size"] = serde_json::json!(4242);
        }
        text.push_str(&format!("{p}\n"));
    }
    s.send_raw(&text);
    let replies = s.recv_n(20);
    for (i, r) in replies.iter().enumerate() {
        assert_eq!(r["seq"], i as u64 + 1, "{r}");
        if i == 6 {
            let e = r["error"].as_str().unwrap();
            assert!(
                e.contains("not stored") && e.contains("size 4242 refused"),
                "{e}"
            );
        } else {
            assert!(r["id"].is_i64(), "{r}");
        }
    }
    assert_eq!(db.count("SELECT count(*) FROM packets"), 19);
}

#[test]
fn port_zero_binds_free_ports_and_the_log_names_them() {
    let db = TestDb::new("port0");
    // TestServer passes --port 0 --dashboard-port 0 and reads the ports back
    // from the log lines "server started on …" and "dashboard on http://…/".
    let server = TestServer::start(&db, &[]);
    assert_ne!(server.port, 0);
    assert_ne!(server.dashboard_port, 0);
    assert_ne!(server.port, server.dashboard_port);
    let mut s = server.connect();
    s.hello("zero");
    s.send_packets(1..=3);
    assert_eq!(s.recv_n(3).len(), 3);
    let mut http = std::net::TcpStream::connect(("127.0.0.1", server.dashboard_port)).unwrap();
    http.write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut http, &mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"),
        "{answer}"
    );
}
