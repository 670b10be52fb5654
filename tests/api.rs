//! The dashboard's JSON API, handler by handler, against a real PostgreSQL
//! with packets stored by the real server, without sockets: `web::api::route`
//! takes a request value and returns a response value (issue #5).

mod common;

use std::sync::Arc;

use common::{TestDb, TestServer};
use netsentinel::config::Config;
use netsentinel::stats::Stats;
use netsentinel::store;
use netsentinel::trainer::{self, ModelSlot};
use netsentinel::web::request::{ApiRequest, ApiResponse};
use netsentinel::web::routes::route;
use netsentinel::web::state::{WebSettings, WebState};
use serde_json::Value;

/// A database filled by the real server: 300 packets from "alpha" (every
/// 10th a giant), 40 from a sender whose name is an XSS probe.
fn filled_db(tag: &str) -> TestDb {
    let db = TestDb::new(tag);
    let server = TestServer::start(&db, &["detector.min_train_packets=100"]);
    common::send_with_giants(&server, "alpha", 300);
    server.wait_for_log("model", std::time::Duration::from_secs(10));
    let mut x = server.connect();
    x.hello("<img src=x onerror=alert(1)>");
    x.send_packets(1..=40);
    x.recv_n(40);
    db
}

fn state(db: &TestDb, token: Option<&str>) -> WebState {
    let mut detector = Config::default().detector;
    detector.min_train_packets = 100;
    let pool = store::open_pool(&db.url, 2).unwrap();
    let models = Arc::new(ModelSlot::default());
    if let Some(m) = trainer::load_newest(&mut *pool.get().unwrap(), &detector.half_lives).unwrap()
    {
        models.publish(m);
    }
    let settings = WebSettings {
        access: netsentinel::web::guard::Access {
            write_token: token.map(str::to_string),
            ..Default::default()
        },
        retrain_interval: std::time::Duration::ZERO,
        detector,
        storage: Default::default(),
    };
    WebState::new(
        pool,
        models,
        Arc::new(Stats::default()),
        Arc::new(common::Idle),
        settings,
    )
}

fn get(state: &WebState, target: &str) -> ApiResponse {
    route(&ApiRequest::new("GET", target), state)
}

fn ok(state: &WebState, target: &str) -> Value {
    let r = get(state, target);
    assert_eq!(
        r.status,
        200,
        "{target}: {}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.content_type, "application/json");
    r.json_body()
}

fn bad(state: &WebState, target: &str, parameter: &str) -> String {
    let r = get(state, target);
    assert_eq!(r.status, 400, "{target}");
    let v = r.json_body();
    assert_eq!(v["parameter"], parameter, "{target}: {v}");
    v["error"].as_str().unwrap().to_string()
}

#[test]
fn every_endpoint_its_filters_and_its_errors() {
    let db = filled_db("api");
    let st = state(&db, None);

    // Stats: totals from the counters, the model in use.
    let s = ok(&st, "/api/stats");
    assert_eq!(s["total_packets"], 340);
    assert_eq!(s["clients_connected"], 0);
    assert_eq!(s["queue_depth"], 0);
    assert!(s["anomalies"].as_i64().unwrap() > 0);
    let rate = s["anomaly_rate"].as_f64().unwrap();
    assert!((rate - s["anomalies"].as_f64().unwrap() / 340.0).abs() < 1e-12);
    let model = &s["model"];
    for key in ["id", "trained_at", "rows", "threshold", "contamination"] {
        assert!(!model[key].is_null(), "model.{key} in {s}");
    }
    assert!(bad(&st, "/api/stats?x=1", "x").contains("unknown parameter"));

    // Protocols: per-protocol totals that add up.
    let p = ok(&st, "/api/protocols");
    let rows = p["protocols"].as_array().unwrap();
    assert_eq!(rows.len(), 5);
    let sum: i64 = rows.iter().map(|r| r["packets"].as_i64().unwrap()).sum();
    assert_eq!(sum, 340);

    // Timeseries: 60 minutes by default, zero-filled, newest minute holds the traffic.
    let t = ok(&st, "/api/timeseries");
    let points = t["points"].as_array().unwrap();
    assert_eq!(points.len(), 60);
    let total: i64 = points.iter().map(|p| p["packets"].as_i64().unwrap()).sum();
    assert_eq!(total, 340);
    assert_eq!(
        ok(&st, "/api/timeseries?minutes=5")["points"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert!(bad(&st, "/api/timeseries?minutes=0", "minutes").contains("1..=1440"));
    bad(&st, "/api/timeseries?minutes=100000", "minutes");
    bad(&st, "/api/timeseries?minutes=abc", "minutes");

    // Packets: newest first, keyset paging, filters.
    let page = ok(&st, "/api/packets?limit=100");
    let list = page["packets"].as_array().unwrap();
    assert_eq!(list.len(), 100);
    let ids: Vec<i64> = list.iter().map(|p| p["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first");
    let next = page["next_before"].as_i64().unwrap();
    assert_eq!(next, *ids.last().unwrap());
    let older = ok(&st, &format!("/api/packets?limit=100&before={next}"));
    assert!(older["packets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["id"].as_i64().unwrap() < next));
    let last_page = ok(&st, "/api/packets?limit=1000");
    assert_eq!(last_page["packets"].as_array().unwrap().len(), 340);
    assert!(last_page["next_before"].is_null());
    let anomalies = ok(&st, "/api/packets?anomalies=true&limit=1000");
    let a = anomalies["packets"].as_array().unwrap();
    assert!(!a.is_empty() && a.iter().all(|p| p["anomaly"] == true));
    assert_eq!(a.len() as i64, s["anomalies"].as_i64().unwrap());
    let udp = ok(&st, "/api/packets?protocol=udp&limit=1000");
    assert!(udp["packets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["protocol"] == "UDP"));
    let xss = ok(
        &st,
        "/api/packets?client=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E&limit=1000",
    );
    let x = xss["packets"].as_array().unwrap();
    assert_eq!(x.len(), 40);
    assert_eq!(x[0]["client"], "<img src=x onerror=alert(1)>");
    let both = ok(&st, "/api/packets?client=alpha&anomalies=1&protocol=TCP");
    assert!(both["packets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["client"] == "alpha" && p["anomaly"] == true && p["protocol"] == "TCP"));
    assert!(bad(&st, "/api/packets?limit=0", "limit").contains("1..=1000"));
    bad(&st, "/api/packets?limit=1001", "limit");
    bad(&st, "/api/packets?limit=ten", "limit");
    bad(&st, "/api/packets?before=-3", "before");
    bad(&st, "/api/packets?anomalies=maybe", "anomalies");
    bad(&st, "/api/packets?protocol=%3Cscript%3E", "protocol");
    bad(
        &st,
        &format!("/api/packets?client={}", "c".repeat(65)),
        "client",
    );
    bad(&st, "/api/packets?limit=1&limit=2", "limit");
    bad(&st, "/api/packets?limit=%ZZ", "limit");
    let long = get(&st, &format!("/api/packets?client={}", "a".repeat(5000)));
    assert_eq!(long.status, 400);
    assert!(long.json_body()["error"]
        .as_str()
        .unwrap()
        .contains("at most 2048"));

    // One packet with its explanation.
    let flagged_id = a[0]["id"].as_i64().unwrap();
    let d = ok(&st, &format!("/api/packets/{flagged_id}"));
    assert_eq!(d["packet"]["id"], flagged_id);
    let threshold = d["threshold"].as_f64().unwrap();
    let e = &d["explanation"];
    assert!(e["score"].as_f64().unwrap() > threshold);
    let shares = e["features"].as_array().unwrap();
    assert_eq!(
        shares[0]["feature"], "log_size",
        "a giant is isolated by its size: {e}"
    );
    // Only unusual values are given as reasons: an odd size is at an end of
    // what training saw, its common protocol and port are no reason.
    let p = shares[0]["percentile"].as_f64().unwrap();
    assert!(p == 0.0 || p == 100.0, "{e}");
    assert!(
        shares.iter().all(|f| f["feature"] != "protocol_rarity"),
        "{e}"
    );
    assert_eq!(e["view"], "packet", "{e}");
    let sentence = shares[0]["sentence"].as_str().unwrap();
    assert!(
        sentence.starts_with("size of this packet: ") && sentence.contains("percentile"),
        "{sentence}"
    );
    // The first packet came before any model and was judged late, by the first one.
    let first = last_page["packets"].as_array().unwrap().last().unwrap();
    assert!(first["score"].is_number(), "{first}");
    assert!(first["model_id"].is_number(), "{first}");
    assert_eq!(get(&st, "/api/packets/999999999").status, 404);
    assert_eq!(get(&st, "/api/packets/abc").status, 400);
    assert_eq!(get(&st, "/api/packets/-1").status, 400);

    // Clients, metrics, health, unknown paths, wrong methods, static files.
    let c = ok(&st, "/api/clients");
    assert_eq!(c["clients"].as_array().unwrap().len(), 2);
    let m = get(&st, "/metrics");
    assert_eq!(m.status, 200);
    let text = String::from_utf8(m.body).unwrap();
    for name in [
        "netsentinel_packets_stored_total",
        "netsentinel_anomalies_total",
        "netsentinel_rejected_lines_total",
        "netsentinel_queue_depth",
        "netsentinel_clients_connected",
        "netsentinel_batch_size_packets_bucket",
        "netsentinel_commit_seconds_bucket",
        "netsentinel_db_errors_total",
        "netsentinel_model_age_seconds",
        "netsentinel_judged_late_total",
        "netsentinel_models_trained_total",
        "netsentinel_context_entries",
        "netsentinel_context_bytes",
        "netsentinel_context_evictions_total",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics");
    }
    assert_eq!(ok(&st, "/healthz")["status"], "ok");
    assert_eq!(get(&st, "/api/nothing").status, 404);
    assert_eq!(get(&st, "/nothing.html").status, 404);
    assert_eq!(get(&st, "/../../etc/passwd").status, 404);
    assert_eq!(
        route(&ApiRequest::new("POST", "/api/stats"), &st).status,
        405
    );
    assert_eq!(
        route(&ApiRequest::new("DELETE", "/api/packets/1"), &st).status,
        405
    );
    let retrain_get = get(&st, "/api/retrain");
    assert_eq!(retrain_get.status, 405, "state changes only by POST");
    let page = get(&st, "/");
    assert_eq!(page.status, 200);
    assert!(page.content_type.starts_with("text/html"));
    assert!(page
        .headers
        .iter()
        .any(|(k, v)| *k == "Content-Security-Policy" && v.contains("script-src 'self'")));
}

/// A POST as the dashboard's page sends it.
fn post_json(path: &str) -> ApiRequest {
    let mut r = ApiRequest::new("POST", path);
    r.content_type = Some("application/json".into());
    r.host = Some("127.0.0.1:5000".into());
    r.origin = Some("http://127.0.0.1:5000".into());
    r
}

#[test]
fn retrain_trains_a_new_model_and_refuses_with_409_or_401_when_it_must() {
    let db = filled_db("apiretrain");
    let st = state(&db, None);
    let before = ok(&st, "/api/stats")["model"]["id"].as_i64().unwrap();
    let r = route(&ApiRequest::new("POST", "/api/retrain"), &st);
    assert_eq!(
        r.status, 415,
        "without a token a write must be JSON from the page"
    );
    let r = route(&post_json("/api/retrain"), &st);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let m = r.json_body();
    assert!(m["model"]["id"].as_i64().unwrap() > before);
    assert_eq!(m["model"]["rows"], 340);
    assert_eq!(ok(&st, "/api/stats")["model"]["id"], m["model"]["id"]);

    // With a token: 401 without it or with a wrong one, 200 with it.
    let locked = state(&db, Some("s3cret"));
    let mut req = ApiRequest::new("POST", "/api/retrain");
    assert_eq!(route(&req, &locked).status, 401);
    req.authorization = Some("Bearer wrong".into());
    assert_eq!(route(&req, &locked).status, 401);
    req.authorization = Some("Bearer s3cret".into());
    assert_eq!(route(&req, &locked).status, 200);

    // Too little data: 409 saying how much is needed.
    let empty = TestDb::new("apiempty");
    let st = state(&empty, None);
    let r = route(&post_json("/api/retrain"), &st);
    assert_eq!(r.status, 409);
    assert!(r.json_body()["error"]
        .as_str()
        .unwrap()
        .contains("at least 100"));
    // A retrain already running: 409.
    assert!(st.models.begin_training());
    let r = route(&post_json("/api/retrain"), &st);
    assert_eq!(r.status, 409);
    assert!(r.json_body()["error"]
        .as_str()
        .unwrap()
        .contains("already running"));
}

#[test]
fn dashboard_is_served_over_http_by_the_running_server() {
    let db = TestDb::new("apihttp");
    let server = TestServer::start(&db, &[]);
    let get = |path: &str| -> (u16, String) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", server.dashboard_port)).unwrap();
        // A refused request line may be cut short by the server: the write
        // can fail; the answer is read all the same.
        let _ = write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        );
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
        (status, text)
    };
    let (status, body) = get("/");
    assert_eq!(status, 200);
    assert!(body.contains("<title>NetSentinel</title>"));
    assert_eq!(get("/../../etc/passwd").0, 404);
    assert_eq!(get("/api/stats").0, 200);
    assert_eq!(get("/api/packets?limit=-1").0, 400);
    assert_eq!(
        get(&format!("/api/packets?client={}", "%41".repeat(1000))).0,
        400
    );
    // A request line past 8 KiB is refused before it is read whole.
    assert_eq!(
        get(&format!("/api/packets?client={}", "%41".repeat(3000))).0,
        414
    );
}

#[test]
fn retrains_are_rate_limited_with_retry_after() {
    let db = filled_db("apiretrainrate");
    let mut st = state(&db, None);
    st.settings.retrain_interval = std::time::Duration::from_secs(60);
    assert_eq!(route(&post_json("/api/retrain"), &st).status, 200);
    let again = route(&post_json("/api/retrain"), &st);
    assert_eq!(again.status, 429);
    assert!(again
        .headers
        .iter()
        .any(|(h, v)| *h == "Retry-After" && v.parse::<u64>().is_ok_and(|s| s > 0 && s <= 60)));
    assert!(String::from_utf8_lossy(&again.body).contains("dashboard.retrain_interval_s"));
}

/// Every id `/api/packets` lists for `query`, following `next_before`.
fn all_ids(st: &WebState, query: &str) -> Vec<i64> {
    let mut ids = Vec::new();
    let mut before: Option<i64> = None;
    loop {
        let target = match before {
            None => format!("/api/packets?{query}&limit=37"),
            Some(b) => format!("/api/packets?{query}&limit=37&before={b}"),
        };
        let page = ok(st, &target);
        for p in page["packets"].as_array().unwrap() {
            ids.push(p["id"].as_i64().unwrap());
        }
        match page["next_before"].as_i64() {
            Some(b) => before = Some(b),
            None => return ids,
        }
    }
}

#[test]
fn search_by_host_network_port_and_sender_pages_like_the_plain_list() {
    let db = filled_db("apisearch");
    let st = state(&db, None);
    let sql_ids = |cond: &str| -> Vec<i64> {
        db.client()
            .query(
                &format!("SELECT id FROM packets WHERE {cond} ORDER BY id DESC"),
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    for (query, cond) in [
        ("host=192.168.1.10", "source_ip = '192.168.1.10' OR dest_ip = '192.168.1.10'"),
        ("host=10.0.5.6", "source_ip = '10.0.5.6' OR dest_ip = '10.0.5.6'"),
        ("net=10.0.5.0/24", "source_ip <<= '10.0.5.0/24' OR dest_ip <<= '10.0.5.0/24'"),
        ("net=10.0.0.0/8", "source_ip <<= '10.0.0.0/8' OR dest_ip <<= '10.0.0.0/8'"),
        ("port=443", "src_port = 443 OR dst_port = 443"),
        ("port=22", "src_port = 22 OR dst_port = 22"),
        (
            "host=192.168.1.10&protocol=UDP&anomalies=true",
            "(source_ip = '192.168.1.10' OR dest_ip = '192.168.1.10') AND protocol = 'UDP' AND anomaly_flag",
        ),
        (
            "net=10.0.1.0/24&port=443&client=alpha",
            "(source_ip <<= '10.0.1.0/24' OR dest_ip <<= '10.0.1.0/24') AND (src_port = 443 OR dst_port = 443) AND client = 'alpha'",
        ),
    ] {
        let want = sql_ids(cond);
        let got = all_ids(&st, query);
        assert_eq!(got, want, "{query}: newest first, every match once");
    }
    assert!(
        !sql_ids("source_ip = '10.0.5.6'").is_empty(),
        "the data has a match"
    );
    for (query, parameter) in [
        ("/api/packets?host=nope", "host"),
        ("/api/packets?host=10.0.0.0/8", "host"),
        ("/api/packets?net=10.0.0.0/33", "net"),
        ("/api/packets?net=somewhere", "net"),
        ("/api/packets?port=70000", "port"),
        ("/api/packets?port=-1", "port"),
    ] {
        assert!(!bad(&st, query, parameter).is_empty());
    }
}

#[test]
fn a_host_view_sums_up_what_the_host_did_lately() {
    let db = filled_db("apihost");
    let st = state(&db, None);
    let v = ok(&st, "/api/hosts/192.168.1.10");
    assert_eq!(v["host"], "192.168.1.10");
    let s = &v["summary"];
    let total = db.count(
        "SELECT count(*) FROM packets WHERE dest_ip = '192.168.1.10' OR source_ip = '192.168.1.10'",
    );
    assert_eq!(s["sampled"], total);
    assert_eq!(s["received"], total);
    assert_eq!(s["sent"], 0);
    let flagged =
        db.count("SELECT count(*) FROM packets WHERE dest_ip = '192.168.1.10' AND anomaly_flag");
    assert_eq!(s["anomalies"], flagged);
    assert_eq!(s["top_ports"][0][0], 443, "{s}");
    assert_eq!(s["top_ports"][0][1], total, "{s}");
    let peers = s["top_peers"].as_array().unwrap();
    assert!(!peers.is_empty() && peers.len() <= 10, "{s}");
    let busiest = db.count(
        "SELECT count(*) FROM packets WHERE dest_ip = '192.168.1.10' GROUP BY source_ip ORDER BY 1 DESC LIMIT 1",
    );
    assert_eq!(peers[0][1], busiest, "{s}");
    let senders: Vec<&str> = s["senders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert!(senders.contains(&"alpha"), "{s}");
    assert_eq!(v["packets"].as_array().unwrap().len(), 50);
    assert!(v["incidents"].as_array().is_some());

    // A sample bounds the work: the newest packets only.
    let small = ok(&st, "/api/hosts/192.168.1.10?sample=10&limit=5");
    assert_eq!(small["summary"]["sampled"], 10);
    assert_eq!(small["packets"].as_array().unwrap().len(), 5);

    // A host never seen: an empty summary, not an error; IPv6 percent-encoded.
    let none = ok(&st, "/api/hosts/2001%3Adb8%3A%3A1");
    assert_eq!(none["host"], "2001:db8::1");
    assert_eq!(none["summary"]["sampled"], 0);
    assert!(!bad(&st, "/api/hosts/nope", "host").is_empty());
    assert!(!bad(&st, "/api/hosts/10.0.0.0%2F8", "host").is_empty());
    assert!(!bad(&st, "/api/hosts/192.168.1.10?sample=0", "sample").is_empty());
}

#[test]
fn a_query_past_its_statement_timeout_is_recognised() {
    let db = TestDb::new("apitimeout");
    let mut c = store::connect(&db.url).unwrap();
    c.batch_execute("SET statement_timeout = 10").unwrap();
    let e = c.query("SELECT pg_sleep(1)", &[]).unwrap_err();
    assert!(netsentinel::store::queries::timed_out(
        &netsentinel::store::StoreError::Query(e)
    ));
    let other = c.query("SELECT 1/0", &[]).unwrap_err();
    assert!(!netsentinel::store::queries::timed_out(
        &netsentinel::store::StoreError::Query(other)
    ));
}

#[test]
fn a_time_range_bounds_the_charts_the_talkers_and_the_table() {
    // alpha's packets (and the probe's) count as stored 3 hours ago; beta's
    // are stored now, by a second server on the same database.
    let db = filled_db("apirange");
    db.client()
        .batch_execute("UPDATE traffic_minutes SET minute = minute - interval '3 hours'")
        .unwrap();
    let old = db.count("SELECT count(*) FROM packets");
    let server = TestServer::start(&db, &[]);
    common::send_with_giants(&server, "beta", 60);
    drop(server);
    let st = state(&db, None);
    let total = old + 60;
    // The pool's sessions run without JIT (it compiled the skip scan of a
    // network search for a second before running it in a millisecond).
    let jit: String = st
        .with_db(|c| Ok(c.query_one("SHOW jit", &[])?.get(0)))
        .unwrap();
    assert_eq!(jit, "off");

    // The table: the last hour is beta's alone, six hours is everything.
    let clients = |query: &str| -> Vec<String> {
        ok(&st, &format!("/api/packets?{query}"))["packets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["client"].as_str().unwrap().to_string())
            .collect()
    };
    let recent = clients("range=1h&limit=1000");
    assert_eq!(recent.len(), 60, "the last hour holds beta's 60 packets");
    assert!(recent.iter().all(|c| c == "beta"));
    assert_eq!(clients("range=6h&limit=1000").len() as i64, total);
    assert!(clients("range=1h&client=alpha").is_empty());
    assert_eq!(clients("range=7d&client=alpha&limit=1000").len(), 300);
    // Paging within a range stays within it.
    let first = ok(&st, "/api/packets?range=1h&limit=50");
    let next = first["next_before"].as_i64().expect("a second page");
    let rest = ok(
        &st,
        &format!("/api/packets?range=1h&limit=50&before={next}"),
    );
    assert_eq!(rest["packets"].as_array().unwrap().len(), 10);

    // Protocols and the chart count the range's packets.
    let protocol_sum = |query: &str| -> i64 {
        ok(&st, &format!("/api/protocols?{query}"))["protocols"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["packets"].as_i64().unwrap())
            .sum()
    };
    assert_eq!(protocol_sum("range=1h"), 60);
    assert_eq!(protocol_sum("range=6h"), total);
    assert_eq!(protocol_sum(""), total, "no range: all time");
    for (range, buckets, bucket_s, packets) in [
        ("15m", 15, 60, 60),
        ("1h", 60, 60, 60),
        ("6h", 72, 300, total),
        ("24h", 96, 900, total),
        ("7d", 168, 3600, total),
    ] {
        let t = ok(&st, &format!("/api/timeseries?range={range}"));
        let points = t["points"].as_array().unwrap();
        assert_eq!(points.len(), buckets, "{range}");
        assert_eq!(t["bucket_seconds"], bucket_s, "{range}");
        let sum: i64 = points.iter().map(|p| p["packets"].as_i64().unwrap()).sum();
        assert_eq!(sum, packets, "{range}");
        // The last bucket is the one now is in.
        let last =
            chrono::DateTime::parse_from_rfc3339(points[buckets - 1]["minute"].as_str().unwrap())
                .unwrap();
        let now = chrono::DateTime::parse_from_rfc3339(t["now"].as_str().unwrap()).unwrap();
        let into = (now - last).num_seconds();
        assert!(
            (0..bucket_s).contains(&into),
            "{range}: now is {into} s into the last bucket"
        );
    }
    assert_eq!(
        ok(&st, "/api/timeseries?minutes=5")["points"]
            .as_array()
            .unwrap()
            .len(),
        5
    );

    // Top talkers: exact over a small range, hosts ranked by packets.
    let t = ok(&st, "/api/talkers?range=1h");
    assert_eq!(t["packets"], 60);
    assert_eq!(t["exact"], true);
    let talkers = t["talkers"].as_array().unwrap();
    assert!(!talkers.is_empty());
    for w in talkers.windows(2) {
        assert!(w[0]["packets"].as_i64() >= w[1]["packets"].as_i64());
    }
    let top = talkers[0]["host"].as_str().unwrap();
    let want = db.count(&format!(
        "SELECT count(*) FROM packets WHERE client = 'beta' AND (source_ip = '{top}' OR dest_ip = '{top}')"
    ));
    assert_eq!(talkers[0]["packets"], want, "{top}");
    assert_eq!(ok(&st, "/api/talkers?range=6h")["packets"], total);
    assert!(
        ok(&st, "/api/talkers?range=15m&limit=1")["talkers"]
            .as_array()
            .unwrap()
            .len()
            <= 1
    );

    // A sample when the range holds more packets than it reads: estimates.
    let mut c = db.client();
    let range = store::ranges::TimeRange::parse("6h").unwrap();
    let s = store::ranges::talkers(&mut c, range, 100, 5).unwrap();
    assert!(!s.exact);
    assert_eq!(s.packets, total);
    assert!(s.sampled > 0 && s.sampled <= 100, "{}", s.sampled);
    assert!(s.talkers.iter().all(|t| t.packets <= 2 * total));

    for (query, parameter) in [
        ("/api/packets?range=2w", "range"),
        ("/api/packets?range=0m", "range"),
        ("/api/protocols?range=yesterday", "range"),
        ("/api/timeseries?range=400d", "range"),
        ("/api/timeseries?range=1h&minutes=60", "range"),
        ("/api/talkers?range=1y", "range"),
        ("/api/talkers?limit=0", "limit"),
    ] {
        assert!(!bad(&st, query, parameter).is_empty(), "{query}");
    }
}

/// `/api/storage` (issue #14): what an honest page reads, and what it
/// refuses: parameters it does not take, writes, readers without the token.
#[test]
fn storage_reports_partitions_and_refuses_what_it_does_not_take() {
    let db = filled_db("api_storage");
    let st = state(&db, None);
    let v = ok(&st, "/api/storage");
    assert!(v["database_bytes"].as_i64().unwrap() > 0, "{v}");
    assert!(v["partitions"].as_array().is_some(), "{v}");
    assert!(v["retention_days"].is_null(), "off by default: {v}");
    assert_eq!(v["drops_total"], 0);
    assert!(v["default_partition"]["bytes"].as_i64().is_some(), "{v}");
    bad(&st, "/api/storage?range=1h", "range");
    let huge = format!("/api/storage?{}=1", "x".repeat(100_000));
    assert_eq!(get(&st, &huge).status, 400);
    assert_eq!(
        route(&ApiRequest::new("POST", "/api/storage"), &st).status,
        405
    );
    let locked = WebState::new(
        store::open_pool(&db.url, 2).unwrap(),
        Arc::new(ModelSlot::default()),
        Arc::new(Stats::default()),
        Arc::new(common::Idle),
        WebSettings {
            access: netsentinel::web::guard::Access {
                read_token: Some("reader".into()),
                ..Default::default()
            },
            ..WebSettings::default()
        },
    );
    assert_eq!(get(&locked, "/api/storage").status, 401);
    let mut req = ApiRequest::new("GET", "/api/storage");
    req.authorization = Some("Bearer reader".into());
    assert_eq!(route(&req, &locked).status, 200);
}
