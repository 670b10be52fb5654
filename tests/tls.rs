//! TLS on ingest (issue #10): a server with `server.tls_cert`/`server.tls_key`
//! and clients with `--tls-ca`; certificates are made here with rcgen.

mod common;

use std::path::{Path, PathBuf};

use common::{TestDb, TestServer};

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// A CA, and a server certificate for localhost and 127.0.0.1 signed by it.
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .unwrap();
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.path().join("server.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("server.key"), key.serialize_pem()).unwrap();
        // Another CA the server's certificate does not chain to.
        let other_key = rcgen::KeyPair::generate().unwrap();
        let mut other = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        other.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        std::fs::write(
            dir.path().join("other-ca.pem"),
            other.self_signed(&other_key).unwrap().pem(),
        )
        .unwrap();
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn senders_store_everything_over_tls_and_plain_or_untrusted_ones_are_told() {
    let pki = Pki::new();
    let db = TestDb::new("tls_ingest");
    let cert = format!("server.tls_cert={}", s(&pki.path("server.pem")));
    let key = format!("server.tls_key={}", s(&pki.path("server.key")));
    let server = TestServer::start(&db, &[&cert, &key]);
    let ca = s(&pki.path("ca.pem"));
    let out = common::run_client(
        server.port,
        &[
            "secure", "--count", "3000", "--rate", "0", "--json", "--tls-ca", &ca,
        ],
    );
    let report = common::client_report(&out);
    assert_eq!(report["acked"], 3000, "{report}");
    assert_eq!(
        db.count("SELECT count(*) FROM packets WHERE client = 'secure'"),
        3000
    );

    // Plain TCP to a TLS server: told what to do.
    let out = common::run_client(server.port, &["plain", "--count", "10"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("--tls-ca"), "{err}");
    // A CA the server's certificate does not chain to: refused at once.
    let other = s(&pki.path("other-ca.pem"));
    let out = common::run_client(
        server.port,
        &["wrongca", "--count", "10", "--tls-ca", &other],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("TLS with") && err.to_lowercase().contains("certificate"),
        "{err}"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM packets WHERE client <> 'secure'"),
        0
    );
}

#[test]
fn tls_settings_that_cannot_work_stop_the_start_with_a_message() {
    let pki = Pki::new();
    let db = TestDb::new("tls_bad");
    let run = |sets: &[String]| {
        let args: Vec<&str> = sets.iter().flat_map(|s| ["--set", s.as_str()]).collect();
        common::server_output(&db.url, 0, &args)
    };
    let cert = format!("server.tls_cert={}", s(&pki.path("server.pem")));
    let out = run(std::slice::from_ref(&cert));
    assert_eq!(out.status.code(), Some(2), "a certificate without its key");
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.tls_key"));
    let missing = format!("server.tls_key={}", s(&pki.path("nope.key")));
    let out = run(&[cert.clone(), missing]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("server.tls_key") && err.contains("nope.key"),
        "{err}"
    );
    let ca_as_key = format!("server.tls_key={}", s(&pki.path("ca.pem")));
    let out = run(&[cert, ca_as_key]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.tls_key"));
}

fn threads_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

#[test]
fn connections_that_never_finish_a_handshake_are_bounded_and_timed_out() {
    let pki = Pki::new();
    let db = TestDb::new("tls_flood");
    let cert = format!("server.tls_cert={}", s(&pki.path("server.pem")));
    let key = format!("server.tls_key={}", s(&pki.path("server.key")));
    let server = TestServer::start(
        &db,
        &[
            &cert,
            &key,
            "server.hello_timeout_s=2",
            "server.max_clients=5",
            "server.max_waiting=10",
        ],
    );
    let before = threads_of(server.child.id());
    let held: Vec<std::net::TcpStream> = (0..300)
        .filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", server.port)).ok())
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let during = threads_of(server.child.id());
    eprintln!("threads: {before} before, {during} with 300 silent TLS connections");
    assert!(during <= before + 20, "{during} threads (from {before})");
    // An honest TLS sender gets through once the stalled handshakes time out.
    let ca = s(&pki.path("ca.pem"));
    let out = common::run_client(
        server.port,
        &[
            "honest", "--count", "500", "--rate", "0", "--json", "--tls-ca", &ca, "--wait",
        ],
    );
    assert_eq!(common::client_report(&out)["acked"], 500);
    drop(held);
    let metrics = {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(("127.0.0.1", server.dashboard_port)).unwrap();
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut t = String::new();
        c.read_to_string(&mut t).unwrap();
        t
    };
    let refused: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("netsentinel_tls_handshakes_refused_total "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(refused >= 250.0, "{refused}");
}
