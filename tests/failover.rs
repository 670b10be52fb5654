//! Failover against real PostgreSQL clusters this test creates on free local
//! ports (issue #14): a primary with a synchronous streaming standby
//! (`pg_basebackup -R`), the server on a multi-host `database.url` with
//! `target_session_attrs=read-write`.
//!
//! - The standby is promoted and the primary stopped mid-stream at 5,000
//!   packets/s: the server carries on against the new primary and the client
//!   ends with every packet stored there exactly once.
//! - A promoted node that still waits for a synchronous standby
//!   (`synchronous_standby_names` kept) hangs every commit: `/healthz` turns
//!   unhealthy within `database.commit_timeout_s`, nothing is acknowledged,
//!   and once the setting is cleared commits flow and the client finishes.
//!
//! Needs root (CI runs as root: the clusters run as the `postgres` user) and
//! PostgreSQL's server binaries; skips, saying why, without them.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{client_report, free_port, http_get, run_client, TestDb, TestServer};

/// PostgreSQL's server binaries (the newest installed version).
fn bindir() -> Option<PathBuf> {
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .max()
}

fn skip_reason() -> Option<String> {
    if bindir().is_none() {
        return Some("PostgreSQL server binaries not found under /usr/lib/postgresql".into());
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !root {
        return Some("not root: the test clusters run as the postgres user".into());
    }
    None
}

/// One PostgreSQL cluster in a directory of its own, stopped and removed on drop.
struct Cluster {
    dir: PathBuf,
    port: u16,
}

/// Runs PostgreSQL tool `tool` as the postgres user; panics with its output on failure.
fn pg(tool: &str, args: &[&str]) -> String {
    let bin = bindir().expect("checked").join(tool);
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(&bin)
        .args(args)
        .current_dir("/tmp")
        .output()
        .expect("runuser runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{tool} {args:?} failed:\n{text}");
    text
}

impl Cluster {
    fn fresh_dir(role: &str) -> (PathBuf, u16) {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("ns-pg-{role}-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        (dir, port)
    }

    fn conf_lines(&self, lines: &str) {
        let path = self.dir.join("postgresql.auto.conf");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("postgresql.auto.conf");
        writeln!(f, "{lines}").unwrap();
    }

    fn settings(&self) -> String {
        format!(
            "port = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             fsync = off\nfull_page_writes = off\nshared_buffers = '32MB'\nmax_connections = 40\n",
            self.port,
            self.dir.display()
        )
    }

    /// A new primary, with `synchronous_standby_names = '*'`: a commit
    /// returns once a standby has it too.
    fn primary() -> Cluster {
        let (dir, port) = Self::fresh_dir("primary");
        std::fs::create_dir_all(&dir).unwrap();
        chown(&dir);
        let c = Cluster { dir, port };
        pg(
            "initdb",
            &[
                "-D",
                c.path(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
            ],
        );
        c.conf_lines(&format!(
            "{}wal_level = replica\nmax_wal_senders = 5\nsynchronous_standby_names = '*'\n",
            c.settings()
        ));
        c.start();
        c
    }

    /// A streaming standby of `primary` (`pg_basebackup -R`); with
    /// `keep_sync`, it keeps the primary's `synchronous_standby_names`, so
    /// once promoted it waits for a standby of its own.
    fn standby_of(primary: &Cluster, keep_sync: bool) -> Cluster {
        let (dir, port) = Self::fresh_dir("standby");
        let c = Cluster { dir, port };
        pg(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &primary.port.to_string(),
                "-U",
                "postgres",
                "-D",
                c.path(),
                "-R",
                "-X",
                "stream",
                "--no-sync",
            ],
        );
        let sync = if keep_sync {
            ""
        } else {
            "synchronous_standby_names = ''\n"
        };
        c.conf_lines(&format!("{}{sync}", c.settings()));
        c.start();
        c
    }

    fn path(&self) -> &str {
        self.dir.to_str().expect("utf-8 path")
    }

    fn start(&self) {
        let log = self.dir.join("server.log");
        pg(
            "pg_ctl",
            &[
                "-D",
                self.path(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
    }

    fn promote(&self) {
        pg("pg_ctl", &["-D", self.path(), "-w", "promote"]);
    }

    fn stop_now(&self) {
        pg("pg_ctl", &["-D", self.path(), "-m", "immediate", "stop"]);
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url("postgres"), postgres::NoTls).expect("connect")
    }

    fn count(&self, db: &str, sql: &str) -> i64 {
        postgres::Client::connect(&self.url(db), postgres::NoTls)
            .expect("connect")
            .query_one(sql, &[])
            .expect("count")
            .get(0)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let bin = bindir().expect("checked").join("pg_ctl");
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin)
            .args(["-D", self.path(), "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn chown(dir: &Path) {
    let ok = Command::new("chown")
        .args(["postgres:postgres", dir.to_str().unwrap()])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "chown {}", dir.display());
}

/// The multi-host URL of the pair: whichever accepts writes.
fn pair_url(a: &Cluster, b: &Cluster, db: &str) -> String {
    format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/{db}?target_session_attrs=read-write&connect_timeout=2",
        a.port, b.port
    )
}

/// A database on the pair that the server will create itself. Its drop
/// (on the shared test cluster) finds nothing to drop.
fn pair_db(a: &Cluster, b: &Cluster, name: &str) -> TestDb {
    TestDb {
        name: name.into(),
        url: pair_url(a, b, name),
    }
}

#[test]
fn promoted_standby_takes_over_mid_stream_and_every_packet_is_stored_once() {
    if let Some(why) = skip_reason() {
        println!("SKIPPED: {why}");
        return;
    }
    let primary = Cluster::primary();
    let standby = Cluster::standby_of(&primary, false);
    let db = pair_db(&primary, &standby, "ns_failover");
    let server = TestServer::start(&db, &["database.commit_timeout_s=5"]);
    let port = server.port;
    let run = std::thread::spawn(move || {
        run_client(
            port,
            &["mover", "--count", "30000", "--rate", "5000", "--json"],
        )
    });
    // Mid-stream: about 10,000 packets in.
    std::thread::sleep(Duration::from_secs(2));
    let before = primary.count("ns_failover", "SELECT count(*) FROM packets");
    assert!(
        before > 0 && before < 30_000,
        "{before} stored before the failover"
    );
    standby.promote();
    primary.stop_now();
    println!("failover after {before} packets: standby promoted, primary stopped");

    let r = client_report(&run.join().unwrap());
    assert_eq!(r["sent"], 30000, "{r}");
    assert_eq!(r["acked"], 30000, "{r}");
    let stored = |sql: &str| standby.count("ns_failover", sql);
    assert_eq!(
        stored("SELECT count(*) FROM packets WHERE client = 'mover'"),
        30000
    );
    assert_eq!(
        stored("SELECT count(DISTINCT client_seq) FROM packets WHERE client = 'mover'"),
        30000
    );
    // The dashboard's pool followed too: its totals come from the new primary.
    let (status, body) = http_get(server.dashboard_port, "/api/stats");
    assert_eq!(status, 200, "{body}");
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(stats["total_packets"], 30000, "{stats}");
    let (status, body) = http_get(server.dashboard_port, "/healthz");
    assert_eq!(status, 200, "{body}");
    assert!(server.log_text().contains("database write failed"));
}

#[test]
fn a_promoted_node_still_waiting_for_a_standby_turns_healthz_unhealthy() {
    if let Some(why) = skip_reason() {
        println!("SKIPPED: {why}");
        return;
    }
    let primary = Cluster::primary();
    let standby = Cluster::standby_of(&primary, true);
    let db = pair_db(&primary, &standby, "ns_stall");
    let server = TestServer::start(&db, &["database.commit_timeout_s=2"]);
    let port = server.port;
    let run = std::thread::spawn(move || {
        run_client(
            port,
            &["waiter", "--count", "20000", "--rate", "5000", "--json"],
        )
    });
    std::thread::sleep(Duration::from_secs(1));
    primary.stop_now();
    standby.promote();
    let promoted = Instant::now();
    println!("primary stopped, standby promoted with synchronous_standby_names = '*' kept");

    // Commits now wait for a standby that does not exist.
    let unhealthy = loop {
        let (status, body) = http_get(server.dashboard_port, "/healthz");
        if status == 503 && body.contains("commit stalled") {
            break promoted.elapsed();
        }
        assert!(
            promoted.elapsed() < Duration::from_secs(20),
            "/healthz still says {status} {body}\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    println!(
        "/healthz unhealthy {:.1} s after the promotion",
        unhealthy.as_secs_f64()
    );
    // The limit plus the reconnect to the new primary.
    assert!(unhealthy < Duration::from_secs(12), "{unhealthy:?}");
    // The watchdog (four looks a second) logs and counts it.
    server.wait_for_log("has waited", Duration::from_secs(5));
    let (_, metrics) = http_get(server.dashboard_port, "/metrics");
    assert!(
        metrics.contains("netsentinel_commit_stalls_total 1"),
        "{metrics}"
    );
    let acked_during = standby.count(
        "ns_stall",
        "SELECT count(*) FROM packets WHERE client = 'waiter'",
    );
    assert!(!run.is_finished(), "the client finished while commits hung");

    // What docs/OPERATIONS.md says to do on promotion.
    let mut admin = standby.client();
    admin
        .batch_execute("ALTER SYSTEM SET synchronous_standby_names = ''")
        .unwrap();
    admin.batch_execute("SELECT pg_reload_conf()").unwrap();
    let r = client_report(&run.join().unwrap());
    assert_eq!(r["acked"], 20000, "{r}");
    assert_eq!(
        standby.count(
            "ns_stall",
            "SELECT count(DISTINCT client_seq) FROM packets WHERE client = 'waiter'"
        ),
        20000
    );
    assert!(acked_during <= 20000);
    server.wait_for_log("commits flow again", Duration::from_secs(5));
    let (status, body) = http_get(server.dashboard_port, "/healthz");
    assert_eq!(status, 200, "{body}");
}
