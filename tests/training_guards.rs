//! Training guards (issue #10): a window flooded with identical packets does
//! not replace the model (the API answers 409 saying why, the CLI exits 1),
//! and only the newest `detector.keep_models` models are kept.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Sender, TestDb, TestServer};
use serde_json::{json, Value};

fn post_retrain(port: u16) -> (u16, Value) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "POST /api/retrain HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\n\
         Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn model_in_use(db: &TestDb) -> i64 {
    db.count("SELECT coalesce(max(id), 0) FROM models")
}

#[test]
fn a_flood_of_identical_packets_cannot_retrain_the_model() {
    let db = TestDb::new("guard_uniform");
    let server = TestServer::start(&db, &["dashboard.retrain_interval_s=0"]);
    let out = common::run_client(
        server.port,
        &["honest", "--count", "2000", "--rate", "0", "--json"],
    );
    common::client_report(&out);
    let before = model_in_use(&db);
    assert!(before > 0, "a model was trained on honest traffic");

    // 10,000 copies of one packet.
    let mut s = Sender::connect(server.port);
    s.hello("flooder");
    for chunk in 0..10u64 {
        let mut text = String::new();
        for i in 0..1000u64 {
            let seq = chunk * 1000 + i + 1;
            let p = json!({"seq": seq, "source_ip": "10.9.9.9", "dest_ip": "10.0.0.1",
                           "packet_size": 64, "protocol": "UDP", "src_port": 4444, "dst_port": 53});
            text.push_str(&p.to_string());
            text.push('\n');
        }
        s.send_raw(&text);
        s.recv_n(1000);
    }
    let (status, body) = post_retrain(server.dashboard_port);
    assert_eq!(status, 409, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("distinct") && error.contains("detector.min_distinct_rows"),
        "{error}"
    );
    let after_api = model_in_use(&db);
    assert!(
        db.count(&format!(
            "SELECT count(*) FROM models WHERE id > {before} AND training_rows >= 10000"
        )) == 0,
        "no model was trained on the flood window (models {before} -> {after_api})"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_netsentinel"))
        .args(["retrain", "--set", &format!("database.url={}", db.url)])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("detector.min_distinct_rows"), "{err}");
    assert_eq!(
        model_in_use(&db),
        after_api,
        "the CLI stored nothing either"
    );
}

#[test]
fn only_the_newest_models_are_kept() {
    let db = TestDb::new("guard_prune");
    let server = TestServer::start(&db, &["detector.keep_models=3"]);
    let out = common::run_client(
        server.port,
        &["p", "--count", "3300", "--rate", "0", "--json"],
    );
    common::client_report(&out);
    std::thread::sleep(Duration::from_millis(500));
    let newest = model_in_use(&db);
    assert!(
        newest >= 6,
        "models trained at 50, 100, ..., 3200 packets: {newest}"
    );
    assert_eq!(db.count("SELECT count(*) FROM models"), 3);
    assert_eq!(db.count("SELECT min(id) FROM models"), newest - 2);
}
