//! What the benchmarks share: a free port, and the real server binary started
//! on a database of its own and waited for.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port()
}

/// Starts `netsentinel server` on `url` with packets on `port` and the
/// dashboard on `dash`; returns once both listen. Server warnings and errors
/// are echoed to stderr.
pub fn start_server(url: &str, port: u16, dash: u16) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_netsentinel"))
        .args([
            "server",
            "--port",
            &port.to_string(),
            "--dashboard-port",
            &dash.to_string(),
        ])
        .args(["--database-url", url])
        .env("RUST_LOG", "warn,netsentinel::server=info")
        .current_dir(std::env::temp_dir())
        .stderr(Stdio::piped())
        .spawn()
        .expect("server starts");
    let stderr = child.stderr.take().expect("piped");
    let ready = Arc::new(Mutex::new(false));
    let flag = Arc::clone(&ready);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("dashboard on") {
                *flag.lock().expect("flag") = true;
            }
            if line.contains("ERROR") || line.contains("WARN") {
                eprintln!("server: {line}");
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while !*ready.lock().expect("flag") {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}
