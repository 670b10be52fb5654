//! Live-capture harness: the real `netsentinel client --interface` process
//! (waited for until it captures), bursts of UDP datagrams and SYN probes to
//! chosen addresses, and a network namespace joined by a veth pair that the
//! test creates and removes itself. Capturing needs root; [`skip_unless_root`]
//! says why a test did nothing otherwise.

use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::ChildLog;

/// True when running as root (capture and namespaces need it).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Prints why and returns true when the test cannot run here.
pub fn skip_unless_root(test: &str) -> bool {
    if is_root() {
        return false;
    }
    eprintln!("skipping {test}: live capture needs root (CI runs as root)");
    true
}

/// A running `netsentinel client NAME --interface ...`.
pub struct LiveClient {
    pub child: Child,
    pub log: ChildLog,
    stdout: Option<std::process::ChildStdout>,
}

impl LiveClient {
    /// Starts the client on `iface` with `args` against the server on `port`
    /// and waits until its log says it captures.
    pub fn start(port: u16, name: &str, iface: &str, args: &[&str]) -> LiveClient {
        let mut child = Command::new(env!("CARGO_BIN_EXE_netsentinel"))
            .args(["client", name, "--interface", iface, "--json"])
            .args(args)
            .args(["--server", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("client binary starts");
        let log = ChildLog::collect(&mut child);
        let stdout = child.stdout.take();
        let client = LiveClient { child, log, stdout };
        client.wait_for_log("capturing on", Duration::from_secs(20));
        client
    }

    pub fn wait_for_log(&self, needle: &str, timeout: Duration) {
        self.log.wait_for("client", needle, timeout);
    }

    pub fn log_text(&self) -> String {
        self.log.text()
    }

    /// Waits for the client to end (it stops by --count or --duration) and
    /// returns its JSON report; panics with its log when it failed.
    pub fn report(mut self, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("client did not end:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut out = String::new();
        if let Some(mut stdout) = self.stdout.take() {
            stdout.read_to_string(&mut out).unwrap();
        }
        assert!(
            status.success(),
            "client failed: {status}\n{}",
            self.log_text()
        );
        serde_json::from_str(out.trim()).expect("one JSON report")
    }
}

impl Drop for LiveClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `count` UDP datagrams to `to`, datagram `i` with `size(i)` bytes of
/// payload, in bursts of 100 with a short pause (no kernel drop on a busy CI
/// machine).
pub fn udp_burst(to: SocketAddr, count: usize, size: impl Fn(usize) -> usize) {
    let bind = match to.ip() {
        IpAddr::V4(_) => "0.0.0.0:0",
        IpAddr::V6(_) => "[::]:0",
    };
    let socket = UdpSocket::bind(bind).unwrap();
    let payload = vec![0x5a; 65_000];
    for i in 0..count {
        // A refused datagram (ICMP unreachable) surfaces as an error on a later send.
        let _ = socket.send_to(&payload[..size(i)], to);
        if i % 100 == 99 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// One SYN to each port of `ports` on `host` (ordinary connects to closed
/// ports: the answer is a reset).
pub fn syn_probes(host: IpAddr, ports: std::ops::Range<u16>) {
    for port in ports {
        let _ =
            TcpStream::connect_timeout(&SocketAddr::new(host, port), Duration::from_millis(300));
    }
}

/// A network namespace joined to this one by a veth pair, removed on drop:
/// `outside` (here) and `inside` (in the namespace) addresses of a /30 of
/// 10.213.0.0/16 picked from the process id.
pub struct VethPair {
    pub namespace: String,
    pub outside_if: String,
    pub outside: IpAddr,
    pub inside: IpAddr,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("ip (iproute2) runs");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl VethPair {
    pub fn create(tag: &str) -> VethPair {
        let id = std::process::id() % 60_000;
        let namespace = format!("nstest-{tag}-{id}");
        let outside_if = format!("vo{id}{}", &tag[..1]);
        let inside_if = format!("vi{id}{}", &tag[..1]);
        let (a, b) = ((id / 64 % 256) as u8, (id % 64 * 4) as u8);
        let outside: IpAddr = format!("10.213.{a}.{}", b + 1).parse().unwrap();
        let inside: IpAddr = format!("10.213.{a}.{}", b + 2).parse().unwrap();
        let pair = VethPair {
            namespace: namespace.clone(),
            outside_if: outside_if.clone(),
            outside,
            inside,
        };
        ip(&["netns", "add", &namespace]);
        ip(&[
            "link",
            "add",
            &outside_if,
            "type",
            "veth",
            "peer",
            "name",
            &inside_if,
        ]);
        ip(&["link", "set", &inside_if, "netns", &namespace]);
        ip(&["addr", "add", &format!("{outside}/30"), "dev", &outside_if]);
        ip(&["link", "set", &outside_if, "up"]);
        let ns = namespace.as_str();
        ip(&[
            "-n",
            ns,
            "addr",
            "add",
            &format!("{inside}/30"),
            "dev",
            &inside_if,
        ]);
        ip(&["-n", ns, "link", "set", &inside_if, "up"]);
        ip(&["-n", ns, "link", "set", "lo", "up"]);
        pair
    }

    /// Resolves the inside address (ARP) so a burst is not queued behind it.
    pub fn warm_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let _ = TcpStream::connect_timeout(
                &SocketAddr::new(self.inside, 9),
                Duration::from_millis(200),
            );
            let neigh = Command::new("ip")
                .args(["neigh", "show", &self.inside.to_string()])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&neigh.stdout).contains("lladdr") {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{} never answered ARP", self.inside);
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.outside_if])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.namespace])
            .output();
    }
}
