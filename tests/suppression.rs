//! Suppression rules (issue #12): a rule made with `netsentinel suppress`
//! stops the alerts for the incidents it matches (they are still stored,
//! counted and listed), other incidents go out as before; the API creates,
//! lists and deletes rules, and "this is normal" on an incident suppresses it.

mod common;

use std::process::Command;
use std::sync::Arc;

use common::{client_report, run_client, TestDb, TestServer};
use netsentinel::config::Config;
use netsentinel::stats::Stats;
use netsentinel::store;
use netsentinel::trainer::ModelSlot;
use netsentinel::web::request::{ApiRequest, ApiResponse};
use netsentinel::web::routes::route;
use netsentinel::web::state::{WebSettings, WebState};
use serde_json::Value;

fn suppress(db: &TestDb, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_netsentinel"))
        .arg("suppress")
        .args(args)
        .args(["--database-url", &db.url])
        .env_remove("DATABASE_URL")
        .output()
        .expect("netsentinel runs")
}

#[test]
fn a_rule_stops_the_alerts_of_what_it_matches_and_is_listed() {
    let db = TestDb::new("suppress_cli");
    let dir = tempfile::tempdir().unwrap();
    let eve = dir.path().join("eve.json");
    let path = format!("alerts.jsonl_path={}", eve.display());
    let mut server = TestServer::start(&db, &[&path]);
    // The port scanner of `--scenario mixed` is ours.
    let out = suppress(
        &db,
        &["add", "--source", "10.0.3.66", "--note", "our scanner"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rule: i64 = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    client_report(&run_client(
        server.port,
        &[
            "mix",
            "--scenario",
            "mixed",
            "--count",
            "30000",
            "--seed",
            "4",
            "--json",
        ],
    ));
    assert!(server.terminate().success());

    let rows: Vec<(i64, String, String, Option<i64>)> = db
        .client()
        .query(
            "SELECT id, host(host), status, suppressed_by FROM incidents ORDER BY id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let scanner: Vec<_> = rows.iter().filter(|r| r.1 == "10.0.3.66").collect();
    assert_eq!(scanner.len(), 1, "{rows:?}");
    assert_eq!(scanner[0].2, "suppressed");
    assert_eq!(scanner[0].3, Some(rule));
    let others: Vec<i64> = rows
        .iter()
        .filter(|r| r.1 != "10.0.3.66")
        .map(|r| r.0)
        .collect();
    assert!(others.len() >= 3, "{rows:?}");
    assert!(rows
        .iter()
        .filter(|r| r.1 != "10.0.3.66")
        .all(|r| r.2 == "open"));

    // The sink got the others, not the suppressed one.
    let sent: Vec<i64> = std::fs::read_to_string(&eve)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["incident"]["id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(sent, others);

    // Listed, with what it suppressed.
    let out = suppress(&db, &["list"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{rule}\t")))
        .unwrap_or_else(|| panic!("rule {rule} in {text}"));
    assert!(line.contains("10.0.3.66/32"), "{line}");
    assert!(line.contains("\tyes\t1\tour scanner"), "{line}");

    let out = suppress(&db, &["remove", &rule.to_string()]);
    assert!(out.status.success());
    let out = suppress(&db, &["remove", &rule.to_string()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no suppression rule"));
}

#[test]
fn bad_rules_are_refused_naming_the_flag() {
    let db = TestDb::new("suppress_bad");
    // Creates the schema.
    let mut server = TestServer::start(&db, &[]);
    for (args, needle) in [
        (vec!["add"], "at least one of"),
        (vec!["add", "--source", "10.0.0.300"], "--source"),
        (vec!["add", "--destination", "10.0.0.0/40"], "--destination"),
        (vec!["add", "--port", "70000"], "--port"),
        (vec!["add", "--protocol", "no such"], "--protocol"),
        (
            vec!["add", "--port", "22", "--until", "2001-01-01T00:00:00Z"],
            "future",
        ),
        (vec!["add", "--port", "22", "--until", "soon"], "--until"),
    ] {
        let out = suppress(&db, &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    assert_eq!(db.count("SELECT count(*) FROM suppression_rules"), 0);
    assert!(server.terminate().success());
}

fn state(db: &TestDb) -> WebState {
    WebState::new(
        store::open_pool(&db.url, 2).unwrap(),
        Arc::new(ModelSlot::default()),
        Arc::new(Stats::default()),
        Arc::new(common::Idle),
        WebSettings {
            detector: Config::default().detector,
            ..WebSettings::default()
        },
    )
}

/// A POST as the dashboard's page sends it.
fn post(st: &WebState, path: &str, body: &str) -> ApiResponse {
    let mut r = ApiRequest::new("POST", path);
    r.content_type = Some("application/json".into());
    r.host = Some("127.0.0.1:5000".into());
    r.origin = Some("http://127.0.0.1:5000".into());
    r.body = body.as_bytes().to_vec();
    route(&r, st)
}

#[test]
fn the_api_creates_lists_and_deletes_rules_and_marks_an_incident_normal() {
    let db = TestDb::new("suppress_api");
    let mut server = TestServer::start(&db, &[]);
    client_report(&run_client(
        server.port,
        &[
            "scan",
            "--scenario",
            "portscan",
            "--count",
            "30000",
            "--seed",
            "4",
            "--json",
        ],
    ));
    assert!(server.terminate().success());
    let st = state(&db);
    let get = |t: &str| route(&ApiRequest::new("GET", t), &st).json_body();

    // Create, with every field checked.
    let r = post(
        &st,
        "/api/suppressions",
        r#"{"destination": "10.0.1.0/24", "port": 22, "until": "7d", "note": "backups"}"#,
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let rule = r.json_body()["rule"].clone();
    assert_eq!(rule["destination"], "10.0.1.0/24");
    assert_eq!(rule["active"], true);
    for (body, parameter) in [
        ("{}", "source"),
        (r#"{"port": "ssh"}"#, "body"),
        (r#"{"source": "nowhere"}"#, "source"),
        (r#"{"port": 22, "colour": "red"}"#, "body"),
        ("not json", "body"),
    ] {
        let r = post(&st, "/api/suppressions", body);
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(r.json_body()["parameter"], parameter, "{body}");
    }
    let mut foreign = ApiRequest::new("POST", "/api/suppressions");
    foreign.content_type = Some("application/json".into());
    foreign.host = Some("127.0.0.1:5000".into());
    foreign.origin = Some("http://evil.example".into());
    foreign.body = br#"{"port": 1}"#.to_vec();
    assert_eq!(route(&foreign, &st).status, 403);

    let listed = get("/api/suppressions");
    assert_eq!(listed["rules"].as_array().unwrap().len(), 1);

    // "This is normal" on the scanner's incident.
    let list = get("/api/incidents?host=10.0.3.66");
    let id = list["incidents"][0]["id"]
        .as_i64()
        .expect("the scanner's incident");
    let r = post(
        &st,
        &format!("/api/incidents/{id}/suppress"),
        r#"{"until": "1h"}"#,
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json_body();
    assert_eq!(v["incident"]["status"], "suppressed");
    assert_eq!(v["incident"]["suppressed_by"], v["rule"]["id"]);
    assert_eq!(v["rule"]["source"], "10.0.3.66/32");
    assert_eq!(v["rule"]["protocol"], "TCP");
    assert_eq!(v["rule"]["created_by"], "dashboard");
    assert_eq!(v["rule"]["suppressed"], 1);
    assert_eq!(get("/api/incidents")["counts"]["suppressed"], 1);

    // Delete.
    let rid = rule["id"].as_i64().unwrap();
    let r = post(&st, &format!("/api/suppressions/{rid}/delete"), "");
    assert_eq!(r.status, 200);
    assert_eq!(
        post(&st, &format!("/api/suppressions/{rid}/delete"), "").status,
        404
    );
    assert_eq!(post(&st, "/api/suppressions/x/delete", "").status, 400);
    assert_eq!(
        get("/api/suppressions")["rules"].as_array().unwrap().len(),
        1
    );
    let r = route(&ApiRequest::new("DELETE", "/api/suppressions"), &st);
    assert_eq!(r.status, 405);
}
