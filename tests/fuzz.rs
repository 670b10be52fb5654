//! Fuzzing the two parsers that take input from anyone: the wire-line parser
//! and the dashboard's query strings (issue #6).
//!
//! A seeded mutation fuzzer: it starts from a corpus (built-in seeds plus
//! every file under `tests/corpus/<target>/`), mutates inputs (bit flips,
//! byte inserts and deletes, splices, extreme numbers, unicode, duplication)
//! and checks that parsing never panics and that what it accepts is valid.
//!
//! In `cargo test` each target runs for 2 seconds and every corpus file is
//! replayed as a regression test. The long run is a separate command:
//!
//! ```sh
//! FUZZ_SECONDS=600 FUZZ_SAVE=1 cargo test --release --test fuzz -- --nocapture
//! ```
//!
//! which runs each target for 10 minutes and saves inputs that reach an
//! outcome not seen before (a new error kind) into the corpus.

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use netsentinel::protocol::is_valid_protocol_name;
use netsentinel::protocol::{parse_line, Line, MAX_SEQ};
use netsentinel::web::routes::{packet_filter_from_query, series_range_from_query};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const WIRE_SEEDS: &[&str] = &[
    r#"{"seq": 17, "source_ip": "192.168.1.10", "dest_ip": "10.0.0.5", "packet_size": 512, "protocol": "TCP", "src_port": 51234, "dst_port": 443, "timestamp": "2026-11-25T08:00:00.123Z"}"#,
    r#"{"source_ip":"::1","dest_ip":"2001:db8::2","packet_size":0,"protocol":"ICMPV6"}"#,
    r#"{"hello":"client1"}"#,
    r#"{"seq":1,"source_ip":"::ffff:1.2.3.4","dest_ip":"fe80::1%eth0","packet_size":65535,"protocol":"a-b_c"}"#,
    r#"[1,2,{"a":null}]"#,
    "",
];

const QUERY_SEEDS: &[&str] = &[
    "protocol=TCP&anomalies=true&client=client1&limit=100&before=123",
    "limit=1000",
    "client=%3Cimg%20src%3Dx%3E&anomalies=1",
    "minutes=60",
    "before=9223372036854775807&limit=1",
    "protocol=&client=&limit=",
];

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
        .into_iter()
        .filter_map(|p| std::fs::read(&p).ok().map(|b| (p, b)))
        .collect()
}

fn budget() -> Duration {
    Duration::from_secs_f64(
        std::env::var("FUZZ_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(2.0),
    )
}

const INTERESTING: &[&[u8]] = &[
    b"-1",
    b"65536",
    b"1e309",
    b"-0",
    b"9223372036854775808",
    b"18446744073709551616",
    b"null",
    b"true",
    b"\"\"",
    b"[]",
    b"{}",
    b"\\u0000",
    b"\xff",
    b"\xc3\x28",
    b"%",
    b"%zz",
    b"%00",
    b"&&",
    b"==",
    b"\n",
    b"\"",
    b"\xe2\x80\xae",
    b"999.1.1.1",
    b"::",
    b"1.2.3",
    b"<script>",
    b"0.5",
    b"1E2",
];

/// One random mutation of `input`, with material from `other`.
fn mutate(rng: &mut StdRng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        match rng.random_range(0..7) {
            0 if !v.is_empty() => {
                let i = rng.random_range(0..v.len());
                v[i] ^= 1 << rng.random_range(0..8);
            }
            1 => {
                let i = rng.random_range(0..=v.len());
                v.insert(i, rng.random());
            }
            2 if !v.is_empty() => {
                let i = rng.random_range(0..v.len());
                let n = rng.random_range(1..=(v.len() - i).min(8));
                v.drain(i..i + n);
            }
            3 if !other.is_empty() => {
                let cut = rng.random_range(0..=v.len());
                let from = rng.random_range(0..other.len());
                v.truncate(cut);
                v.extend_from_slice(&other[from..]);
            }
            4 => {
                let pick = INTERESTING[rng.random_range(0..INTERESTING.len())];
                let i = rng.random_range(0..=v.len());
                v.splice(i..i, pick.iter().copied());
            }
            5 if !v.is_empty() && v.len() < 4096 => {
                let i = rng.random_range(0..v.len());
                let n = rng.random_range(1..=(v.len() - i).min(64));
                let chunk = v[i..i + n].to_vec();
                v.splice(i..i, chunk);
            }
            _ => {
                // Replace a run of digits with an extreme number.
                if let Some(i) = v.iter().position(|b| b.is_ascii_digit()) {
                    let end = v[i..]
                        .iter()
                        .position(|b| !b.is_ascii_digit())
                        .map_or(v.len(), |e| i + e);
                    let pick = INTERESTING[rng.random_range(0..6)];
                    v.splice(i..end, pick.iter().copied());
                }
            }
        }
    }
    v
}

/// Parses one wire line; panics (caught by the caller) on a broken invariant.
/// Returns a short name of the outcome, for novelty.
fn check_wire(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    match parse_line(&text) {
        Ok(Line::Packet(p)) => {
            assert!(
                is_valid_protocol_name(&p.protocol),
                "accepted protocol {:?}",
                p.protocol
            );
            assert!(
                p.seq.is_none_or(|s| s <= MAX_SEQ),
                "accepted seq {:?}",
                p.seq
            );
            assert_eq!(p.protocol, p.protocol.to_ascii_uppercase());
            "packet".into()
        }
        Ok(Line::Hello(hello)) => {
            let name = hello.name;
            assert!(
                !name.trim().is_empty()
                    && name.chars().count() <= 64
                    && !name.chars().any(char::is_control)
            );
            "hello".into()
        }
        Ok(Line::Blank) => "blank".into(),
        Err(e) => {
            assert!(!e.message.is_empty());
            kind(&e.message)
        }
    }
}

/// The kind of an error message: its text up to the first quoted value or
/// number, so inputs that differ only in the offending value count as one.
fn kind(message: &str) -> String {
    message
        .chars()
        .take_while(|c| *c != '"' && !c.is_ascii_digit())
        .take(40)
        .collect()
}

fn check_query(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let a = match packet_filter_from_query(&text) {
        Ok(q) => {
            let f = q.query;
            assert!(q
                .range
                .is_none_or(|r| (60..=366 * 86_400).contains(&r.span_s) && r.buckets() <= 180));
            assert!((1..=1000).contains(&f.limit), "limit {}", f.limit);
            assert!(f.before.is_none_or(|b| b >= 1));
            assert!(f.protocol.as_deref().is_none_or(is_valid_protocol_name));
            assert!(f.client.as_deref().is_none_or(|c| c.chars().count() <= 64));
            "ok".to_string()
        }
        Err(r) => {
            assert_eq!(r.status, 400);
            let v = r.json_body();
            let e = v["error"].as_str().expect("error text");
            kind(e)
        }
    };
    match series_range_from_query(&text) {
        Ok(r) => assert!((60..=366 * 86_400).contains(&r.span_s) && r.buckets() <= 180),
        Err(r) => assert_eq!(r.status, 400),
    }
    a
}

fn fuzz(target: &str, seeds: &[&str], check: fn(&[u8]) -> String) {
    // Regression: every saved input still parses without a panic.
    let saved = corpus(target);
    for (path, bytes) in &saved {
        let outcome = catch_unwind(AssertUnwindSafe(|| check(bytes)));
        assert!(
            outcome.is_ok(),
            "regression input {} panics",
            path.display()
        );
    }
    let mut pool: Vec<Vec<u8>> = seeds.iter().map(|s| s.as_bytes().to_vec()).collect();
    pool.extend(saved.into_iter().map(|(_, b)| b));
    let mut seen: HashSet<String> = pool.iter().map(|b| check(b)).collect();
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let mut rng = StdRng::seed_from_u64(seed);
    let save = std::env::var("FUZZ_SAVE").as_deref() == Ok("1");
    let started = Instant::now();
    let mut executions = 0u64;
    let mut new_outcomes = 0;
    while started.elapsed() < budget() {
        for _ in 0..1000 {
            let a = &pool[rng.random_range(0..pool.len())];
            let b = &pool[rng.random_range(0..pool.len())];
            let input = mutate(&mut rng, a, b);
            executions += 1;
            let outcome = catch_unwind(AssertUnwindSafe(|| check(&input)));
            let Ok(outcome) = outcome else {
                let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/corpus")
                    .join(target);
                let _ = std::fs::create_dir_all(&dir);
                let path = dir.join(format!("crash-{executions}.txt"));
                let _ = std::fs::write(&path, &input);
                panic!(
                    "{target}: input saved to {} breaks an invariant or panics",
                    path.display()
                );
            };
            if seen.insert(outcome) {
                new_outcomes += 1;
                if save {
                    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                        .join("tests/corpus")
                        .join(target);
                    let _ = std::fs::create_dir_all(&dir);
                    let _ =
                        std::fs::write(dir.join(format!("new-{seed}-{executions}.txt")), &input);
                }
                if input.len() < 4096 {
                    pool.push(input);
                }
            }
        }
    }
    println!(
        "fuzz {target}: {executions} executions in {:.0} s, {} distinct outcomes ({new_outcomes} new), no panic",
        started.elapsed().as_secs_f64(),
        seen.len()
    );
}

#[test]
fn fuzz_wire_line_parser() {
    fuzz("wire", WIRE_SEEDS, check_wire);
}

#[test]
fn fuzz_http_query_parameters() {
    fuzz("query", QUERY_SEEDS, check_query);
}
