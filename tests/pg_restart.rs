//! PostgreSQL restarted in the middle of a stream (issue #6, promise 2): no
//! loss, no duplicate, recovery without restarting the server. Alone in its
//! test binary, because a restart cuts every connection of every database.
//! Uses `pg_ctlcluster … restart` when it can (CI runs as root); otherwise it
//! falls back to terminating the server's backends, and says so.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{TestDb, TestServer};

fn restart_postgres() -> Result<String, String> {
    let version = std::fs::read_dir("/etc/postgresql")
        .map_err(|e| format!("no /etc/postgresql: {e}"))?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .max()
        .ok_or("no cluster")?;
    let out = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, "main", "restart"])
        .output()
        .map_err(|e| format!("pg_ctlcluster: {e}"))?;
    if out.status.success() {
        Ok(format!("pg_ctlcluster {version} main restart"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn postgres_restarted_mid_stream_loses_nothing_and_duplicates_nothing() {
    let db = TestDb::new("pgrestart");
    let server = TestServer::start(&db, &["server.batch_max=500"]);
    let sender = server.spawn_sender("through-restart", |s| {
        s.stream
            .set_read_timeout(Some(Duration::from_secs(90)))
            .unwrap();
        // Paced over several seconds, so the restart lands mid-stream.
        s.stream_chunks(100, 300, Duration::from_millis(40))
    });
    std::thread::sleep(Duration::from_millis(1000));
    assert!(!sender.is_finished(), "the stream ended before the restart");
    let how = match restart_postgres() {
        Ok(how) => how,
        Err(why) => {
            println!("pg_ctlcluster restart not possible ({why}); terminating backends instead");
            let mut admin = postgres::Client::connect(common::ADMIN_URL, postgres::NoTls).unwrap();
            admin
                .execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                    &[&db.name],
                )
                .unwrap();
            "pg_terminate_backend".into()
        }
    };
    println!("database interrupted by {how}");
    let verdicts = sender.join().expect("sender got every verdict");
    common::assert_each_seq_once(&verdicts, 30_000);
    // Wait for PostgreSQL to take connections again, then count.
    let mut tries = 0;
    let count = loop {
        match postgres::Client::connect(&db.url, postgres::NoTls) {
            Ok(mut c) => {
                break c
                    .query_one(
                        "SELECT count(*), count(DISTINCT client_seq) FROM packets",
                        &[],
                    )
                    .unwrap()
            }
            Err(_) if tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("PostgreSQL did not come back: {e}"),
        }
    };
    assert_eq!(count.get::<_, i64>(0), 30_000, "every packet stored");
    assert_eq!(count.get::<_, i64>(1), 30_000, "none twice");
    assert!(
        server.log_text().contains("database write failed"),
        "{}",
        server.log_text()
    );
}
