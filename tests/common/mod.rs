//! Test harness: a database of its own per test, the real server binary on a
//! free port, and a raw-protocol sender.

#![allow(dead_code)]

pub mod live;
pub mod pcap;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};
use serde_json::{json, Value};

pub const ADMIN_URL: &str = "postgresql://postgres@127.0.0.1:5432/postgres";

/// A database that exists for one test and is dropped after it.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub fn new(tag: &str) -> TestDb {
        Self::try_new(tag).unwrap_or_else(|e| panic!("{e}"))
    }

    /// For benchmarks: a fresh database, or `None` after printing why they skip.
    pub fn for_bench(tag: &str) -> Option<TestDb> {
        Self::try_new(tag)
            .map_err(|e| println!("SKIPPED: {e}"))
            .ok()
    }

    /// A fresh database name (the server creates it); an error when
    /// PostgreSQL does not answer (benchmarks print it and skip).
    pub fn try_new(tag: &str) -> Result<TestDb, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "ns_test_{tag}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let mut admin = Client::connect(ADMIN_URL, NoTls).map_err(|e| {
            format!("no PostgreSQL at 127.0.0.1:5432 ({e}); run bash scripts/setup-db.sh")
        })?;
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .map_err(|e| e.to_string())?;
        let url = format!("postgresql://postgres@127.0.0.1:5432/{name}");
        Ok(TestDb { name, url })
    }

    pub fn client(&self) -> Client {
        Client::connect(&self.url, NoTls).unwrap()
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.client().query_one(sql, &[]).unwrap().get(0)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = Client::connect(ADMIN_URL, NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// The number in environment variable `name`, else `default` (benchmark sizes).
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The stderr lines of a child process, gathered by a thread of their own.
#[derive(Clone, Default)]
pub struct ChildLog(pub Arc<Mutex<Vec<String>>>);

impl ChildLog {
    /// Takes `child`'s piped stderr and gathers its lines.
    pub fn collect(child: &mut Child) -> ChildLog {
        let log = ChildLog::default();
        let stderr = child.stderr.take().expect("stderr is piped");
        let sink = Arc::clone(&log.0);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        log
    }

    /// Waits until a line contains `needle`; panics with the log after `timeout`.
    pub fn wait_for(&self, who: &str, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.0.lock().unwrap().iter().any(|l| l.contains(needle)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{who} log never said {needle:?}:\n{}", self.text());
    }

    /// Every line so far.
    pub fn text(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }
}

/// The real `netsentinel server` process.
pub struct TestServer {
    pub child: Child,
    pub port: u16,
    pub dashboard_port: u16,
    pub log: ChildLog,
}

impl TestServer {
    /// Starts the server on `db` with extra `--set` overrides, both ports 0
    /// (free ports the server picks and logs); waits until it listens and
    /// reads the real ports from its log.
    pub fn start(db: &TestDb, sets: &[&str]) -> TestServer {
        Self::start_on(db, 0, sets)
    }

    /// [`TestServer::start`] with the packet listener on `port` (e.g. to
    /// restart a server where its senders reconnect).
    pub fn start_on(db: &TestDb, port: u16, sets: &[&str]) -> TestServer {
        Self::launch(db, port, sets, None)
    }

    /// [`TestServer::start`] with at most `nofile` open file descriptors
    /// (through util-linux `prlimit`, which execs the server in place).
    pub fn start_with_fd_limit(db: &TestDb, sets: &[&str], nofile: u32) -> TestServer {
        Self::launch(db, 0, sets, Some(nofile))
    }

    fn launch(db: &TestDb, port: u16, sets: &[&str], nofile: Option<u32>) -> TestServer {
        let mut cmd = match nofile {
            None => Command::new(env!("CARGO_BIN_EXE_netsentinel")),
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}"))
                    .arg("--")
                    .arg(env!("CARGO_BIN_EXE_netsentinel"));
                c
            }
        };
        cmd.arg("server")
            .args(["--port", &port.to_string(), "--dashboard-port", "0"])
            .args(["--database-url", &db.url])
            .env("RUST_LOG", "info")
            .env_remove("DATABASE_URL")
            .current_dir(std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for s in sets {
            cmd.arg("--set").arg(s);
        }
        let mut child = cmd.spawn().expect("server binary starts");
        let log = ChildLog::collect(&mut child);
        let mut server = TestServer {
            child,
            port,
            dashboard_port: 0,
            log,
        };
        server.port = server.logged_port("server started on ", Duration::from_secs(20));
        server.dashboard_port = server.logged_port("dashboard on http://", Duration::from_secs(5));
        server
    }

    /// The port of the address the log line containing `after` names right after it.
    fn logged_port(&self, after: &str, timeout: Duration) -> u16 {
        self.wait_for_log(after, timeout);
        let log = self.log.0.lock().unwrap();
        let line = log.iter().find(|l| l.contains(after)).unwrap();
        let addr = line[line.find(after).unwrap() + after.len()..]
            .split(['/', ' '])
            .next()
            .unwrap();
        let port = addr.rsplit(':').next().unwrap().parse().unwrap();
        assert_ne!(port, 0, "the log names the real port: {line}");
        port
    }

    pub fn wait_for_log(&self, needle: &str, timeout: Duration) {
        self.log.wait_for("server", needle, timeout);
    }

    pub fn log_text(&self) -> String {
        self.log.text()
    }

    pub fn connect(&self) -> Sender {
        Sender::connect(self.port)
    }

    /// Runs `f` on a thread of its own with a sender that said hello as `name`.
    pub fn spawn_sender<T: Send + 'static>(
        &self,
        name: &str,
        f: impl FnOnce(&mut Sender) -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let (port, name) = (self.port, name.to_string());
        std::thread::spawn(move || {
            let mut s = Sender::connect(port);
            s.hello(&name);
            f(&mut s)
        })
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.wait(Duration::from_secs(60))
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("server did not exit:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // A failed test shows what the server said (its last 100 lines).
            let log = self.log.text();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(100)..].join("\n");
            eprintln!("---- server log (last 100 lines) ----\n{tail}");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A sender speaking the raw protocol.
pub struct Sender {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Sender {
    pub fn connect(port: u16) -> Sender {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Sender { stream, reader }
    }

    pub fn hello(&mut self, name: &str) -> Value {
        self.send_raw(&format!("{}\n", json!({ "hello": name })));
        self.recv()
    }

    pub fn send_raw(&mut self, text: &str) {
        self.stream.write_all(text.as_bytes()).unwrap();
    }

    pub fn send_packets(&mut self, seqs: impl IntoIterator<Item = u64>) {
        let mut text = String::new();
        for seq in seqs {
            text.push_str(&packet(seq).to_string());
            text.push('\n');
        }
        self.send_raw(&text);
    }

    /// The next line, parsed; panics on timeout or close.
    pub fn recv(&mut self) -> Value {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).unwrap();
        assert!(n > 0, "connection closed");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    /// The next line, or None at end of stream / timeout.
    pub fn try_recv(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => serde_json::from_str(&line).ok(),
        }
    }

    pub fn recv_n(&mut self, n: usize) -> Vec<Value> {
        (0..n).map(|_| self.recv()).collect()
    }

    /// Streams `chunks` chunks of `size` packets (seqs from 1 on), reading
    /// each chunk's verdicts before the next and pausing `pause` between
    /// chunks; returns every verdict in order.
    pub fn stream_chunks(&mut self, chunks: u64, size: u64, pause: Duration) -> Vec<Value> {
        let mut verdicts = Vec::with_capacity((chunks * size) as usize);
        for c in 0..chunks {
            self.send_packets(c * size + 1..=c * size + size);
            verdicts.extend(self.recv_n(size as usize));
            if !pause.is_zero() {
                std::thread::sleep(pause);
            }
        }
        verdicts
    }

    pub fn close_write(&self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
    }
}

/// Asserts `verdicts` answer `n` packets, each seq exactly once.
pub fn assert_each_seq_once(verdicts: &[Value], n: usize) {
    assert_eq!(verdicts.len(), n);
    let seqs: std::collections::HashSet<u64> = verdicts
        .iter()
        .map(|v| v["seq"].as_u64().expect("a verdict carries its seq"))
        .collect();
    assert_eq!(seqs.len(), n, "a seq answered twice");
}

/// A normal-looking packet with this seq.
pub fn packet(seq: u64) -> Value {
    let protocol = ["TCP", "UDP", "HTTP", "HTTPS", "ICMP"][(seq % 5) as usize];
    json!({
        "seq": seq,
        "source_ip": format!("10.0.{}.{}", seq % 200, seq % 250 + 1),
        "dest_ip": "192.168.1.10",
        "packet_size": 64 + (seq * 37 % 1400),
        "protocol": protocol,
        "dst_port": 443,
    })
}

/// Sends `count` packets as sender `name`, every 10th a giant of 9,000 bytes
/// or more (spread out, so they are isolated rather than a cluster), and
/// waits for every verdict.
pub fn send_with_giants(server: &TestServer, name: &str, count: u64) -> Vec<Value> {
    let mut s = server.connect();
    s.hello(name);
    let mut text = String::new();
    for seq in 1..=count {
        let mut p = packet(seq);
        if seq % 10 == 0 {
            p["packet_size"] = json!(9000 + seq * 7919 % 56000);
        }
        text.push_str(&format!("{p}\n"));
    }
    s.send_raw(&text);
    s.recv_n(count as usize)
}

/// Runs `netsentinel client` with `args` against the server on `port`.
pub fn run_client(port: u16, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_netsentinel"))
        .arg("client")
        .args(args)
        .args(["--server", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("client runs")
}

/// Runs `netsentinel server` (packet port free, dashboard on
/// `dashboard_port`, 0 for a free one) against `url` with `extra` arguments
/// until it exits (for start-up errors).
pub fn server_output(url: &str, dashboard_port: u16, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_netsentinel"))
        .args(["server", "--port", "0", "--dashboard-port"])
        .arg(dashboard_port.to_string())
        .args(["--database-url", url])
        .args(extra)
        .env_remove("DATABASE_URL")
        .output()
        .expect("server runs")
}

/// The JSON report of a client run that must have succeeded.
pub fn client_report(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "client failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON report")
}

/// An honest sender streaming `chunks` × 50 packets while a case runs; joins
/// to the verdicts it got.
pub fn honest(server: &TestServer, name: &str, chunks: u64) -> std::thread::JoinHandle<Vec<Value>> {
    server.spawn_sender(name, move |s| {
        s.stream_chunks(chunks, 50, Duration::from_millis(20))
    })
}

/// Joins an [`honest`] sender: every packet answered in order with an id,
/// and stored exactly once.
pub fn check_honest(
    db: &TestDb,
    name: &str,
    handle: std::thread::JoinHandle<Vec<Value>>,
    expected: usize,
) {
    let verdicts = handle.join().expect("the honest sender finished");
    assert_eq!(verdicts.len(), expected);
    for (i, v) in verdicts.iter().enumerate() {
        assert_eq!(v["seq"], i as u64 + 1, "honest verdict {i}: {v}");
        assert!(v["id"].is_i64(), "{v}");
    }
    assert_eq!(
        db.count(&format!(
            "SELECT count(*) FROM packets WHERE client = '{name}'"
        )),
        expected as i64
    );
}

/// No server behind a dashboard state built by a test: nobody connected, an
/// empty FIFO of 10 places.
pub struct Idle;

impl netsentinel::web::state::IngestGauges for Idle {
    fn served(&self) -> usize {
        0
    }
    fn waiting(&self) -> usize {
        0
    }
    fn queue_depth(&self) -> usize {
        0
    }
    fn queue_capacity(&self) -> usize {
        10
    }
}

/// `GET path` on the dashboard: (status, body).
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    );
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}
