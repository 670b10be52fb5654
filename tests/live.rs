//! Live capture (issue #13), as root, on loopback and on a veth pair into a
//! network namespace the test creates: a known burst (5,000 UDP datagrams of
//! chosen sizes, a SYN scan of 200 ports) is captured, stored with the right
//! fields and counted; the BPF filter keeps out what it should; a server
//! restart mid-capture loses nothing; the report's counts add up. Without the
//! privilege, and with a bad interface or filter, the client says what to do
//! and exits 1 or 2.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use common::live::{skip_unless_root, syn_probes, udp_burst, LiveClient, VethPair};
use common::{TestDb, TestServer};
use serde_json::Value;

const DATAGRAMS: usize = 5_000;
const SCAN_PORTS: std::ops::Range<u16> = 20_000..20_200;

/// Payload bytes of datagram `i`: every size from 1 to 1,400, in turn.
fn payload(i: usize) -> usize {
    1 + (i * 7) % 1_400
}

/// The burst's filter: datagrams to `kept` and SYN-only probes of the scan
/// range, to `host` only (other tests share loopback).
fn burst_filter(host: IpAddr, kept: u16) -> String {
    format!(
        "dst host {host} and ((udp and dst port {kept}) or (tcp and dst portrange {}-{} and \
         tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn))",
        SCAN_PORTS.start,
        SCAN_PORTS.end - 1
    )
}

/// Runs the burst against `target` while capturing on `iface`, then checks
/// the rows and the report.
fn burst_is_captured_and_stored(tag: &str, iface: &str, target: IpAddr) {
    let db = TestDb::new(tag);
    let server = TestServer::start(&db, &[]);
    let (kept, filtered_out) = (41_234, 41_235);
    let name = format!("live-{tag}");
    let expected = DATAGRAMS + SCAN_PORTS.len();
    let client = LiveClient::start(
        server.port,
        &name,
        iface,
        &[
            "--filter",
            &burst_filter(target, kept),
            "--count",
            &expected.to_string(),
            "--duration",
            "60",
        ],
    );
    // Datagrams to another port are on the wire too, and must stay out.
    udp_burst(SocketAddr::new(target, filtered_out), 1_000, |_| 64);
    udp_burst(SocketAddr::new(target, kept), DATAGRAMS, payload);
    syn_probes(target, SCAN_PORTS);
    let report = client.report(Duration::from_secs(90));
    eprintln!("{tag}: {report}");
    check_counts(&report, &db, &name);
    assert_eq!(report["sent"], expected as u64, "{report}");
    assert_eq!(report["capture"]["captured"], expected as u64, "{report}");

    let mut c = db.client();
    let rows = c
        .query(
            "SELECT packet_size FROM packets WHERE client = $1 AND protocol = 'UDP' \
             AND dst_port = $2 AND dest_ip = $3::text::inet ORDER BY id",
            &[&name, &i32::from(kept), &target.to_string()],
        )
        .unwrap();
    let mut sizes: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    let mut want: Vec<i32> = (0..DATAGRAMS).map(|i| 28 + payload(i) as i32).collect();
    sizes.sort_unstable();
    want.sort_unstable();
    assert_eq!(sizes.len(), DATAGRAMS, "every datagram stored once");
    assert_eq!(sizes, want, "IP sizes are the datagrams' sizes");
    let probes = db.count(&format!(
        "SELECT count(DISTINCT dst_port) FROM packets WHERE client = '{name}' AND protocol = 'TCP' \
         AND tcp_flags = 2 AND dst_port BETWEEN {} AND {}",
        SCAN_PORTS.start,
        SCAN_PORTS.end - 1
    ));
    assert_eq!(
        probes,
        SCAN_PORTS.len() as i64,
        "one SYN row per probed port"
    );
    let outsiders = db.count(&format!(
        "SELECT count(*) FROM packets WHERE client = '{name}' AND dst_port = {filtered_out}"
    ));
    assert_eq!(outsiders, 0, "the filter kept out the other port");
}

/// captured = sent + dropped by the client + frames without a record;
/// acknowledged = rows stored for the sender.
fn check_counts(report: &Value, db: &TestDb, name: &str) {
    let n = |v: &Value| v.as_u64().unwrap_or_else(|| panic!("number: {report}"));
    let c = &report["capture"];
    assert_eq!(
        n(&c["captured"]),
        n(&report["sent"]) + n(&c["dropped_by_client"]) + n(&c["not_records"]),
        "{report}"
    );
    assert_eq!(n(&report["acked"]), n(&report["sent"]), "{report}");
    let rows = db.count(&format!(
        "SELECT count(*) FROM packets WHERE client = '{name}'"
    ));
    assert_eq!(rows as u64, n(&report["acked"]), "{report}");
}

#[test]
fn a_burst_on_loopback_is_captured_stored_and_counted() {
    if skip_unless_root("a_burst_on_loopback_is_captured_stored_and_counted") {
        return;
    }
    // 127.0.0.3 is loopback too, and no other test talks to it.
    burst_is_captured_and_stored("live_lo", "lo", "127.0.0.3".parse().unwrap());
}

#[test]
fn a_burst_through_a_veth_pair_into_a_namespace_is_captured() {
    if skip_unless_root("a_burst_through_a_veth_pair_into_a_namespace_is_captured") {
        return;
    }
    let pair = VethPair::create("v");
    pair.warm_up();
    burst_is_captured_and_stored("live_veth", &pair.outside_if, pair.inside);
}

#[test]
fn a_server_restart_mid_capture_loses_nothing() {
    if skip_unless_root("a_server_restart_mid_capture_loses_nothing") {
        return;
    }
    let db = TestDb::new("live_restart");
    let port = common::free_port();
    let mut server = TestServer::start_on(&db, port, &[]);
    let target: IpAddr = "127.0.0.4".parse().unwrap();
    let to = SocketAddr::new(target, 41_300);
    let client = LiveClient::start(
        port,
        "live-restart",
        "lo",
        &[
            "--filter",
            &format!("dst host {target} and udp and dst port {}", to.port()),
            "--count",
            "4000",
            "--duration",
            "90",
        ],
    );
    // Killed while the first burst streams: some packets are in flight.
    let burst = std::thread::spawn(move || udp_burst(to, 2_000, |i| 10 + i % 500));
    std::thread::sleep(Duration::from_millis(20));
    server.kill9();
    burst.join().unwrap();
    // Captured while the server is down: buffered by the client.
    udp_burst(to, 1_000, |i| 10 + i % 500);
    std::thread::sleep(Duration::from_secs(1));
    let _server = TestServer::start_on(&db, port, &[]);
    udp_burst(to, 1_000, |i| 10 + i % 500);
    let report = client.report(Duration::from_secs(120));
    eprintln!("restart: {report}");
    check_counts(&report, &db, "live-restart");
    assert_eq!(report["capture"]["captured"], 4000, "{report}");
    assert_eq!(report["sent"], 4000, "{report}");
    assert!(report["reconnects"].as_u64().unwrap() >= 1, "{report}");
    let distinct =
        db.count("SELECT count(DISTINCT client_seq) FROM packets WHERE client = 'live-restart'");
    assert_eq!(distinct, 4000, "each captured packet stored exactly once");
}

fn netsentinel(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_netsentinel"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("netsentinel runs")
}

#[test]
fn a_bad_interface_or_filter_is_a_usage_error_naming_it() {
    let out = netsentinel(&[
        "client",
        "x",
        "--interface",
        "nosuch9",
        "--server",
        "127.0.0.1:9",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("\"nosuch9\"") && err.contains("--list-interfaces"),
        "{err}"
    );

    if skip_unless_root("the bad filter half of a_bad_interface_or_filter_is_a_usage_error") {
        return;
    }
    let out = netsentinel(&[
        "client",
        "x",
        "--interface",
        "lo",
        "--filter",
        "tcp and and port",
        "--server",
        "127.0.0.1:9",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("tcp and and port"), "names the filter: {err}");
    assert!(
        err.contains("syntax error"),
        "gives libpcap's message: {err}"
    );

    let out = netsentinel(&["client", "--list-interfaces"]);
    assert!(out.status.success());
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.lines().any(|l| l.starts_with("lo ")), "{listed}");
}

#[test]
fn without_the_privilege_the_client_says_how_to_get_it() {
    // As root, drop to nobody with no capabilities; otherwise we already lack them.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = dir.path().join("netsentinel");
    std::fs::copy(env!("CARGO_BIN_EXE_netsentinel"), &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = exe.to_string_lossy().to_string();
    let args = [
        "client",
        "x",
        "--interface",
        "lo",
        "--server",
        "127.0.0.1:9",
    ];
    let mut cmd = if common::live::is_root() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    let out = cmd
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("setpriv runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(
        err.lines().count(),
        1,
        "one line that says what to do: {err}"
    );
    assert!(err.contains("no permission to capture on lo"), "{err}");
    assert!(
        err.contains(&format!("sudo setcap cap_net_raw,cap_net_admin=eip {exe}")),
        "{err}"
    );
}

#[test]
fn capture_files_rotate_and_hold_every_frame() {
    if skip_unless_root("capture_files_rotate_and_hold_every_frame") {
        return;
    }
    let db = TestDb::new("live_file");
    let server = TestServer::start(&db, &[]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edge.pcap");
    let target: IpAddr = "127.0.0.5".parse().unwrap();
    let to = SocketAddr::new(target, 41_400);
    let client = LiveClient::start(
        server.port,
        "live-file",
        "lo",
        &[
            "--filter",
            &format!("dst host {target} and udp"),
            "--count",
            "3000",
            // Ends the capture, should a frame go missing, instead of hanging.
            "--duration",
            "15",
            "--capture-file",
            file.to_str().unwrap(),
            "--capture-file-size",
            "1",
        ],
    );
    // A reader that stalls (a slow disk, a busy machine) while the burst
    // arrives: the kernel's buffer must hold all of it meanwhile.
    let pid = client.child.id().to_string();
    Command::new("kill").args(["-STOP", &pid]).status().unwrap();
    udp_burst(to, 3_000, |_| 1_000);
    std::thread::sleep(Duration::from_millis(200));
    Command::new("kill").args(["-CONT", &pid]).status().unwrap();
    let report = client.report(Duration::from_secs(90));
    check_counts(&report, &db, "live-file");
    // Frames of 1,042 bytes, 1,058 with their record header: 945 to a file of at most 1 MB.
    let mut frames = 0;
    let mut files = 0;
    for index in 0.. {
        let path = if index == 0 {
            file.clone()
        } else {
            dir.path().join(format!("edge.{index}.pcap"))
        };
        if !path.exists() {
            break;
        }
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size <= 1_000_000, "{} is {size} bytes", path.display());
        let capture = netsentinel::capture::read_capture(&path).unwrap();
        assert!(
            capture.error.is_none(),
            "{}: {:?}",
            path.display(),
            capture.error
        );
        assert!(capture
            .frames
            .iter()
            .all(|f| f.packet.as_ref().is_some_and(|p| p.packet_size == 1_028)));
        frames += capture.frames.len();
        files += 1;
    }
    // Whole frames are packed by size in the kernel's 32 MiB buffer: the
    // burst (3.2 MB) fits whole while the reader stalls, where fixed slots
    // of 65,535 bytes held 256 frames and lost the rest.
    let captured = report["capture"]["captured"].as_u64().unwrap();
    assert_eq!(captured, 3_000, "the whole burst was captured: {report}");
    assert_eq!(report["capture"]["dropped_by_kernel"], 0, "{report}");
    assert_eq!(
        frames as u64, captured,
        "every captured frame is in the files: {report}"
    );
    // 945 whole frames fit in 1 MB: rotated that often, no more.
    assert_eq!(files as u64, captured.div_ceil(945), "rotated at 1 MB");
    assert_eq!(report["capture"]["files_written"], files, "{report}");
}

#[test]
fn a_full_buffer_counts_drops_and_says_so_instead_of_growing() {
    if skip_unless_root("a_full_buffer_counts_drops_and_says_so_instead_of_growing") {
        return;
    }
    let db = TestDb::new("live_drops");
    let server = TestServer::start(&db, &[]);
    let target: IpAddr = "127.0.0.6".parse().unwrap();
    let to = SocketAddr::new(target, 41_500);
    let client = LiveClient::start(
        server.port,
        "live-drops",
        "lo",
        &[
            "--filter",
            &format!("dst host {target} and udp"),
            "--count",
            "5000",
            "--duration",
            "60",
            "--capture-buffer",
            "20",
            "--window",
            "100",
        ],
    );
    // A frozen server answers nothing: 100 in flight, 20 buffered, the rest dropped.
    let pid = server.child.id().to_string();
    Command::new("kill").args(["-STOP", &pid]).status().unwrap();
    udp_burst(to, 5_000, |_| 50);
    client.wait_for_log("records dropped by the client", Duration::from_secs(10));
    Command::new("kill").args(["-CONT", &pid]).status().unwrap();
    let report = client.report(Duration::from_secs(90));
    eprintln!("drops: {report}");
    check_counts(&report, &db, "live-drops");
    let dropped = report["capture"]["dropped_by_client"].as_u64().unwrap();
    let sent = report["sent"].as_u64().unwrap();
    assert_eq!(report["capture"]["captured"], 5000, "{report}");
    assert!(sent <= 100 + 20 + 1, "bounded by window + buffer: {report}");
    assert_eq!(dropped, 5000 - sent, "{report}");
}

/// Ethernet frames from a made-up source address, so the capture's filter
/// sees only what the test injects.
const FAKE_MAC: [u8; 6] = [0x02, 0x4e, 0x53, 0x00, 0x00, 0x01];

fn ether(ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 6];
    f.extend_from_slice(&FAKE_MAC);
    f.extend_from_slice(&ether_type.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Frames a hostile or broken host puts on the wire: truncated and lying
/// headers at every layer, endless VLAN tags, ARP of odd sizes, noise.
fn hostile_frames() -> Vec<Vec<u8>> {
    use rand::{Rng, SeedableRng};
    let ipv4 = |ihl_version: u8, total: u16, proto: u8, rest: &[u8]| {
        let mut h = vec![ihl_version, 0];
        h.extend_from_slice(&total.to_be_bytes());
        h.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        h.extend_from_slice(rest);
        h
    };
    let mut frames = vec![
        ether(0x0800, &[0x45, 0, 0]),
        ether(0x0800, &ipv4(0x4f, 60, 6, &[])),
        ether(0x0800, &ipv4(0x44, 20, 17, &[])),
        ether(0x0800, &ipv4(0x45, 65_535, 6, &[0, 80, 0, 1])),
        ether(0x0800, &ipv4(0x45, 0, 17, &[0, 53, 0, 53, 0, 8, 0, 0])),
        ether(0x0800, &ipv4(0x45, 21, 1, &[8])),
        ether(0x86dd, &{
            let mut h = vec![0x60, 0, 0, 0, 0xff, 0xff, 6, 64];
            h.extend_from_slice(&[0u8; 32]);
            h
        }),
        ether(0x0806, &[0, 1, 8, 0, 6, 4, 0]),
        ether(0x0806, &[0, 1, 8, 0, 0xff, 0xff, 0, 1, 1, 2, 3]),
        ether(0x8100, &[0x81, 0x00].repeat(40)),
        ether(0x1234, b"not a protocol anyone speaks"),
        ether(0x0800, &[]),
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(13);
    for _ in 0..300 {
        let kind = [0x0800u16, 0x86dd, 0x0806, 0x8100][rng.random_range(0..4)];
        let len = rng.random_range(0..120);
        let mut body: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        if kind == 0x0800 && !body.is_empty() {
            body[0] = 0x40 | (body[0] & 0x0f);
        }
        frames.push(ether(kind, &body));
    }
    frames
}

#[test]
fn hostile_frames_on_the_wire_are_counted_never_crash_the_client() {
    if skip_unless_root("hostile_frames_on_the_wire_are_counted_never_crash_the_client") {
        return;
    }
    let db = TestDb::new("live_hostile");
    let server = TestServer::start(&db, &[]);
    let mut frames = hostile_frames();
    // Honest frames beside them: UDP datagrams from 10.0.0.1 to 10.0.0.2.
    let honest = 20;
    for i in 0..honest {
        let mut udp = vec![
            0x45, 0, 0, 36, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        udp.extend_from_slice(&[0x30, 0x39, 0, 53 + i as u8, 0, 16, 0, 0]);
        udp.extend_from_slice(&[0u8; 8]);
        frames.push(ether(0x0800, &udp));
    }
    let filter = format!(
        "ether src {}",
        FAKE_MAC.map(|b| format!("{b:02x}")).join(":")
    );
    let client = LiveClient::start(
        server.port,
        "live-hostile",
        "lo",
        &["--filter", &filter, "--duration", "3"],
    );
    let mut inject = pcap::Capture::from_device("lo").unwrap().open().unwrap();
    for f in &frames {
        inject.sendpacket(f.as_slice()).unwrap();
    }
    let report = client.report(Duration::from_secs(60));
    eprintln!("hostile: {report}");
    check_counts(&report, &db, "live-hostile");
    // The kernel's BPF rejects a frame too short for the filter's own loads
    // (the IP header the own-connection exclusion reads), as for tcpdump.
    let captured = report["capture"]["captured"].as_u64().unwrap();
    let long_enough = frames.iter().filter(|f| f.len() >= 14 + 40).count() as u64;
    assert!(
        (long_enough..=frames.len() as u64).contains(&captured),
        "{long_enough} frames of 54 bytes or more, {captured} captured: {report}"
    );
    assert_eq!(
        report["rejected"], 0,
        "every record sent is one the server takes: {report}"
    );
    let stored_honest = db.count(
        "SELECT count(*) FROM packets WHERE client = 'live-hostile' AND protocol = 'UDP' \
         AND source_ip = '10.0.0.1' AND dest_ip = '10.0.0.2' AND packet_size = 36 \
         AND src_port = 12345",
    );
    assert_eq!(
        stored_honest, honest as i64,
        "the honest frames are all stored"
    );
}

#[test]
fn a_quiet_interface_still_ends_on_duration_and_on_sigterm() {
    if skip_unless_root("a_quiet_interface_still_ends_on_duration_and_on_sigterm") {
        return;
    }
    let db = TestDb::new("live_quiet");
    let server = TestServer::start(&db, &[]);
    let nothing = "dst host 127.0.0.9 and udp port 9";
    let started = std::time::Instant::now();
    let client = LiveClient::start(
        server.port,
        "live-quiet",
        "lo",
        &["--filter", nothing, "--duration", "1"],
    );
    let report = client.report(Duration::from_secs(20));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "--duration ended it"
    );
    assert_eq!(report["capture"]["captured"], 0, "{report}");

    let client = LiveClient::start(server.port, "live-quiet2", "lo", &["--filter", nothing]);
    std::thread::sleep(Duration::from_millis(300));
    let pid = client.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let report = client.report(Duration::from_secs(20));
    assert_eq!(report["sent"], 0, "{report}");
}

#[test]
fn capture_flags_out_of_range_or_alone_are_usage_errors() {
    let cases: [&[&str]; 8] = [
        &["--interface", "lo", "--snaplen", "10"],
        &["--interface", "lo", "--capture-buffer", "0"],
        &["--interface", "lo", "--duration", "0"],
        &["--interface", "lo", "--duration", "-1"],
        &[
            "--interface",
            "lo",
            "--capture-file",
            "x.pcap",
            "--capture-file-size",
            "0",
        ],
        &["--interface", "lo", "--rate", "5"],
        &["--filter", "udp", "--count", "5"],
        &["--interface", ""],
    ];
    for args in cases {
        let mut all = vec!["client", "x", "--server", "127.0.0.1:9"];
        all.extend_from_slice(args);
        let out = netsentinel(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.trim().is_empty(), "{args:?} says why");
    }
}

#[test]
fn the_any_interface_is_read_through_the_linux_cooked_header() {
    if skip_unless_root("the_any_interface_is_read_through_the_linux_cooked_header") {
        return;
    }
    let db = TestDb::new("live_any");
    let server = TestServer::start(&db, &[]);
    let target: IpAddr = "127.0.0.10".parse().unwrap();
    let client = LiveClient::start(
        server.port,
        "live-any",
        "any",
        &[
            "--filter",
            &format!("dst host {target} and udp dst port 41600"),
            "--count",
            "50",
            "--duration",
            "30",
        ],
    );
    udp_burst(SocketAddr::new(target, 41_600), 50, |i| 100 + i);
    let report = client.report(Duration::from_secs(60));
    check_counts(&report, &db, "live-any");
    assert_eq!(report["sent"], 50, "{report}");
    let sizes = db.count(
        "SELECT sum(packet_size) FROM packets WHERE client = 'live-any' AND protocol = 'UDP' \
         AND dst_port = 41600",
    );
    assert_eq!(
        sizes,
        (0..50).map(|i| 128 + i).sum::<i64>(),
        "IP sizes through SLL"
    );
}
