//! Attacks on the ingest port (issue #10): slot holders that never send a
//! line, connections that queue and vanish, a second connection under a live
//! name, forged seqs far ahead, one address taking every slot. In each, an
//! honest sender ends with every packet stored exactly once and the server
//! alive.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::{check_honest, packet, Sender, TestDb, TestServer};
use serde_json::{json, Value};

/// Says hello as `name` and reads past "queued" lines to the welcome.
fn hello_when_served(s: &mut Sender, name: &str) -> Value {
    s.send_raw(&format!("{}\n", json!({ "hello": name })));
    loop {
        let line = s.recv();
        if line.get("queued").is_none() {
            return line;
        }
    }
}

/// An honest sender that may have to wait for its slot: `chunks` × 50
/// packets from seq 1, 20 ms apart.
fn patient_honest(port: u16, name: &str, chunks: u64) -> thread::JoinHandle<Vec<Value>> {
    let name = name.to_string();
    thread::spawn(move || {
        let mut s = Sender::connect(port);
        let welcome = hello_when_served(&mut s, &name);
        assert_eq!(welcome["welcome"], "netsentinel", "{welcome}");
        s.stream_chunks(chunks, 50, Duration::from_millis(20))
    })
}

/// How a slot holder misbehaves.
#[derive(Clone, Copy, Debug)]
enum Holder {
    /// One byte every 500 ms, never a newline.
    Trickle,
    /// Connects and sends nothing.
    Silent,
    /// Says hello, then nothing.
    HelloThenSilent,
    /// Says hello, then a blank line every 300 ms.
    HelloThenBlanks,
    /// Says hello, then half a packet line, one byte every 500 ms.
    HelloThenHalfLine,
}

/// Runs one misbehaving slot holder until the server closes it; returns how
/// long it was held and every line the server sent.
fn hold(port: u16, how: Holder, name: &str) -> (Duration, Vec<Value>) {
    let start = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let hello = format!("{}\n", json!({ "hello": name }));
    match how {
        Holder::Trickle | Holder::Silent => {}
        _ => s.write_all(hello.as_bytes()).unwrap(),
    }
    if let Holder::HelloThenHalfLine = how {
        s.write_all(br#"{"seq":1,"source_ip":"10.0.0.1""#).unwrap();
    }
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    let mut last = Instant::now();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{how:?} was never closed"
        );
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
        let (every, byte): (u64, &[u8]) = match how {
            Holder::Trickle | Holder::HelloThenHalfLine => (500, b"a"),
            Holder::HelloThenBlanks => (300, b"\n"),
            _ => continue,
        };
        if last.elapsed() >= Duration::from_millis(every) {
            if s.write_all(byte).is_err() {
                break;
            }
            last = Instant::now();
        }
    }
    let lines = String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (start.elapsed(), lines)
}

fn closing_error(lines: &[Value]) -> String {
    lines
        .iter()
        .find(|v| v.get("closing") == Some(&Value::Bool(true)))
        .and_then(|v| v["error"].as_str())
        .unwrap_or_else(|| panic!("no closing error line in {lines:?}"))
        .to_string()
}

/// Five misbehaving slot holders take every slot; an honest sender waits.
/// Each holder must be closed within 5 s naming the limit it broke, and the
/// honest sender must then store everything.
fn holders_lose_their_slots(
    tag: &str,
    sets: &[&str],
    kinds: [(Holder, &'static str); 5],
    honest_senders: usize,
) {
    let db = TestDb::new(tag);
    let mut sets = sets.to_vec();
    sets.push("server.max_clients=5");
    let mut server = TestServer::start(&db, &sets);
    let port = server.port;
    let holders: Vec<_> = kinds
        .iter()
        .enumerate()
        .map(|(i, &(how, key))| {
            let name = format!("holder{i}");
            (how, key, thread::spawn(move || hold(port, how, &name)))
        })
        .collect();
    thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let honest: Vec<_> = (0..honest_senders)
        .map(|i| patient_honest(port, &format!("honest{i}"), 30))
        .collect();
    for (how, key, handle) in holders {
        let (held, lines) = handle.join().unwrap();
        let error = closing_error(&lines);
        assert!(error.contains(key), "{how:?}: {error}");
        assert!(
            held < Duration::from_secs(5),
            "{how:?} held its slot {held:?}"
        );
        eprintln!("{how:?}: closed after {held:?}: {error}");
    }
    for (i, h) in honest.into_iter().enumerate() {
        check_honest(&db, &format!("honest{i}"), h, 1500);
    }
    eprintln!(
        "honest sender done {:?} after it connected",
        started.elapsed()
    );
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server is alive"
    );
    assert_eq!(server.connect().hello("after")["welcome"], "netsentinel");
}

#[test]
fn slot_holders_that_never_finish_a_line_are_cut_at_the_deadlines() {
    holders_lose_their_slots(
        "ingest_deadlines",
        &[
            "server.hello_timeout_s=2",
            "server.line_timeout_s=2",
            "server.idle_grace_s=60",
        ],
        [
            (Holder::Trickle, "server.hello_timeout_s"),
            (Holder::Silent, "server.hello_timeout_s"),
            (Holder::HelloThenHalfLine, "server.line_timeout_s"),
            (Holder::HelloThenHalfLine, "server.line_timeout_s"),
            (Holder::Silent, "server.hello_timeout_s"),
        ],
        1,
    );
}

#[test]
fn idle_slot_holders_are_told_and_closed_when_others_wait() {
    holders_lose_their_slots(
        "ingest_grace",
        &[
            "server.hello_timeout_s=60",
            "server.line_timeout_s=60",
            "server.idle_grace_s=1",
        ],
        [
            (Holder::HelloThenSilent, "server.idle_grace_s"),
            (Holder::HelloThenBlanks, "server.idle_grace_s"),
            (Holder::Silent, "server.idle_grace_s"),
            (Holder::Trickle, "server.idle_grace_s"),
            (Holder::HelloThenSilent, "server.idle_grace_s"),
        ],
        5,
    );
}

#[test]
fn connections_that_close_while_waiting_give_their_place_back_at_once() {
    let db = TestDb::new("ingest_vanish");
    let server = TestServer::start(
        &db,
        &[
            "server.max_clients=1",
            "server.max_waiting=100",
            "server.queue_timeout_s=60",
        ],
    );
    let port = server.port;
    let holder = patient_honest(port, "first", 80);
    thread::sleep(Duration::from_millis(200));
    // 300 connections that connect and close at once.
    let vanishing: Vec<_> = (0..300)
        .map(|_| thread::spawn(move || drop(TcpStream::connect(("127.0.0.1", port)))))
        .collect();
    for v in vanishing {
        v.join().unwrap();
    }
    thread::sleep(Duration::from_millis(500));
    let mut second = Sender::connect(port);
    second.send_raw(&format!("{}\n", json!({ "hello": "second" })));
    let first_line = second.recv();
    assert!(
        first_line["queued"].as_u64().is_some_and(|p| p <= 2),
        "the dead connections left the line: {first_line}"
    );
    let h2 = thread::spawn(move || {
        let welcome = loop {
            let l = second.recv();
            if l.get("queued").is_none() {
                break l;
            }
        };
        assert_eq!(welcome["welcome"], "netsentinel", "{welcome}");
        second.stream_chunks(10, 50, Duration::ZERO)
    });
    check_honest(&db, "first", holder, 4000);
    check_honest(&db, "second", h2, 500);
}

#[test]
fn a_second_connection_under_a_live_name_is_refused_naming_the_first() {
    let db = TestDb::new("ingest_dupname");
    let server = TestServer::start(&db, &[]);
    let mut alice = server.connect();
    assert_eq!(alice.hello("alice")["next_seq"], 1);
    let alice_addr = alice.stream.local_addr().unwrap();
    alice.send_packets(1..=50);
    assert_eq!(alice.recv_n(50).len(), 50);

    let mut impostor = server.connect();
    impostor.send_raw("{\"hello\":\"alice\"}\n");
    impostor.send_packets(51..=60);
    let refusal = impostor.recv();
    assert_eq!(refusal["closing"], true, "{refusal}");
    assert_eq!(refusal["line"], 1, "{refusal}");
    let error = refusal["error"].as_str().unwrap();
    assert!(
        error.contains(&format!(
            "sender \"alice\" is already connected from {alice_addr}; pick another name"
        )),
        "{error}"
    );
    assert!(impostor.try_recv().is_none(), "nothing after the refusal");

    // Alice is not disturbed, and her name is free once she leaves.
    alice.send_packets(51..=100);
    let verdicts = alice.recv_n(50);
    assert!(verdicts
        .iter()
        .all(|v| v["id"].is_i64() && v.get("duplicate").is_none()));
    alice.close_write();
    assert!(alice.try_recv().is_none());
    drop(alice);
    let start = Instant::now();
    let welcome = loop {
        let mut again = server.connect();
        let w = again.hello("alice");
        if w.get("welcome").is_some() {
            break w;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the name stayed taken: {w}"
        );
        thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(welcome["next_seq"], 101, "{welcome}");
    assert_eq!(
        db.count("SELECT count(*) FROM packets WHERE client = 'alice'"),
        100
    );
}

#[test]
fn the_client_tells_the_user_its_name_is_taken_and_exits_1() {
    let db = TestDb::new("ingest_dupclient");
    let server = TestServer::start(&db, &[]);
    let mut holder = server.connect();
    holder.hello("dup");
    let holder_addr = holder.stream.local_addr().unwrap();
    let out = common::run_client(
        server.port,
        &["dup", "--count", "300", "--rate", "0", "--json"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "sender \"dup\" is already connected from {holder_addr}; pick another name"
        )),
        "{stderr}"
    );
    drop(holder);
    // Two client runs at once under one name: one is told, the other stores all.
    thread::sleep(Duration::from_millis(300));
    let port = server.port;
    let runs: Vec<_> = (0..2)
        .map(|_| {
            thread::spawn(move || {
                common::run_client(port, &["twin", "--count", "3000", "--rate", "0", "--json"])
            })
        })
        .collect();
    let outs: Vec<_> = runs.into_iter().map(|r| r.join().unwrap()).collect();
    let ok: Vec<_> = outs.iter().filter(|o| o.status.success()).collect();
    let told: Vec<_> = outs
        .iter()
        .filter(|o| {
            String::from_utf8_lossy(&o.stderr).contains("sender \"twin\" is already connected")
        })
        .collect();
    // Either they overlapped (one told, one complete) or ran one after the other.
    assert!(!ok.is_empty());
    assert_eq!(ok.len() + told.len(), 2, "{outs:?}");
    let stored = db.count("SELECT count(*) FROM packets WHERE client = 'twin'");
    assert_eq!(
        stored,
        3000 * ok.len() as i64,
        "every packet of the runs that went ahead"
    );
    for o in ok {
        let report = common::client_report(o);
        assert_eq!(report["acked"], 3000, "{report}");
    }
}

#[test]
fn forged_seqs_far_ahead_are_refused_and_the_name_stays_usable() {
    let db = TestDb::new("ingest_forge");
    let server = TestServer::start(&db, &[]);
    let mut victim = server.connect();
    victim.hello("victim");
    victim.send_packets(1..=100);
    victim.recv_n(100);
    drop(victim);
    thread::sleep(Duration::from_millis(300));

    let mut forger = server.connect();
    let welcome = hello_when_served(&mut forger, "victim");
    assert_eq!(welcome["next_seq"], 101);
    for seq in [i64::MAX as u64, 101 + 2_000_000] {
        let mut forged = packet(1);
        forged["seq"] = json!(seq);
        forger.send_raw(&format!("{forged}\n"));
    }
    for v in forger.recv_n(2) {
        let error = v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("refused: {v}"));
        assert!(error.contains("server.max_seq_jump"), "{error}");
    }
    drop(forger);
    thread::sleep(Duration::from_millis(300));

    // The real sender comes back and starts where the server says.
    let out = common::run_client(
        server.port,
        &["victim", "--count", "500", "--rate", "0", "--json"],
    );
    let report = common::client_report(&out);
    assert_eq!(report["acked"], 500, "{report}");
    assert_eq!(
        db.count("SELECT count(*) FROM packets WHERE client = 'victim'"),
        600
    );
    assert_eq!(
        db.count("SELECT count(*) FROM packets WHERE client = 'victim' AND client_seq > 1000000"),
        0,
        "no forged seq was stored"
    );
}

/// Connects from `local` (e.g. 127.0.0.2) to the server.
fn connect_from(local: &str, port: u16) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let from: SocketAddr = format!("{local}:0").parse().unwrap();
    socket.bind(&from.into()).unwrap();
    let to: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    socket.connect(&to.into()).unwrap();
    socket.into()
}

#[test]
fn one_address_cannot_take_every_slot_and_place_in_line() {
    let db = TestDb::new("ingest_peer_cap");
    let server = TestServer::start(
        &db,
        &[
            "server.max_clients=3",
            "server.max_connections_per_address=2",
        ],
    );
    let port = server.port;
    let held: Vec<Sender> = (0..2)
        .map(|i| {
            let mut s = server.connect();
            s.hello(&format!("greedy{i}"));
            s
        })
        .collect();
    let mut third = server.connect();
    third.send_raw("{\"hello\":\"greedy3\"}\n");
    let refusal = third.recv();
    let error = refusal["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("too many connections from 127.0.0.1")
            && error.contains("server.max_connections_per_address"),
        "{refusal}"
    );
    // Another address still gets a slot.
    let stream = connect_from("127.0.0.2", port);
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut w = stream;
    w.write_all(b"{\"hello\":\"elsewhere\"}\n").unwrap();
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.contains("\"welcome\""), "{line}");
    let mut text = String::new();
    for seq in 1..=200 {
        text.push_str(&packet(seq).to_string());
        text.push('\n');
    }
    w.write_all(text.as_bytes()).unwrap();
    for _ in 0..200 {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert!(v["id"].is_i64(), "{v}");
    }
    assert_eq!(
        db.count("SELECT count(*) FROM packets WHERE client = 'elsewhere'"),
        200
    );
    drop(held);
}

fn sender_cmd(db: &TestDb, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_netsentinel"))
        .arg("sender")
        .args(args)
        .args(["--database-url", &db.url])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap()
}

/// The first line the server answers to `hello` (and a packet after it).
fn first_answer(port: u16, hello: &str) -> Value {
    let mut s = Sender::connect(port);
    s.send_raw(&format!("{hello}\n{}\n", packet(1)));
    s.recv()
}

#[test]
fn registered_senders_need_their_token() {
    let db = TestDb::new("ingest_tokens");
    let server = TestServer::start(&db, &[]);
    let out = sender_cmd(&db, &["add", "alice"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(token.len(), 48, "{token}");
    let stored: Vec<String> = db
        .client()
        .query("SELECT token_sha256 FROM sender_tokens", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(stored.len(), 1);
    assert!(
        stored[0].len() == 64 && stored[0] != token,
        "only a digest is kept"
    );
    let again = sender_cmd(&db, &["add", "alice"]);
    assert_eq!(
        again.status.code(),
        Some(2),
        "a second token needs a remove first"
    );

    let port = server.port;
    for (hello, why) in [
        (json!({"hello": "alice"}), "needs its token"),
        (
            json!({"hello": "alice", "token": "0".repeat(48)}),
            "wrong token",
        ),
        (
            json!({"hello": "mallory", "token": token}),
            "not registered",
        ),
    ] {
        let answer = first_answer(port, &hello.to_string());
        assert_eq!(answer["closing"], true, "{hello}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(why),
            "{hello}: {answer}"
        );
    }
    let anonymous = {
        let mut s = Sender::connect(port);
        s.send_packets(1..=1);
        s.recv()
    };
    assert!(
        anonymous["error"]
            .as_str()
            .unwrap_or_default()
            .contains("registered senders only"),
        "{anonymous}"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM packets"),
        0,
        "nothing from strangers"
    );

    let out = common::run_client(
        port,
        &[
            "alice", "--count", "500", "--rate", "0", "--json", "--token", &token,
        ],
    );
    assert_eq!(common::client_report(&out)["acked"], 500);
    let out = common::run_client(port, &["alice", "--count", "5"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("needs its token"), "{err}");

    let listed = sender_cmd(&db, &["list"]);
    assert!(String::from_utf8_lossy(&listed.stdout).starts_with("alice\t"));
    assert!(sender_cmd(&db, &["remove", "alice"]).status.success());
    assert_eq!(sender_cmd(&db, &["remove", "alice"]).status.code(), Some(2));
    // Nobody registered: names are open again.
    let welcome = first_answer(port, &json!({"hello": "anyone"}).to_string());
    assert_eq!(welcome["welcome"], "netsentinel", "{welcome}");
}
