//! Reading captures: pcap and pcapng, Ethernet and Linux cooked, IPv4/IPv6,
//! TCP/UDP/ICMP, frames without IP, truncated files and label files, on
//! captures written here byte by byte (`common::pcap`).

mod common;

use std::path::Path;

use common::pcap::*;
use netsentinel::capture::{parse_capture, read_labels};

#[test]
fn ethernet_capture_with_ipv4_ipv6_icmp_and_a_non_ip_frame() {
    let frames = [
        ethernet(0x0800, &ipv4_tcp(51000, 443, SYN, 100)),
        ethernet(0x86dd, &ipv6_udp(5353, 53, 30)),
        ethernet(0x0806, &[0u8; 28]), // ARP
        ethernet(0x0800, &ipv4_icmp(8)),
        ethernet(0x0800, &ipv4_tcp(80, 40000, ACK, 0)),
    ];
    let file = pcap_file(ETHERNET, 1_700_000_000, &frames);
    let cap = parse_capture(&file, Path::new("t.pcap")).unwrap();
    assert!(cap.error.is_none());
    assert_eq!(cap.frames.len(), 5);
    let p0 = cap.frames[0].packet.as_ref().unwrap();
    assert_eq!(p0.protocol, "HTTPS");
    assert_eq!(p0.packet_size, 140);
    assert_eq!((p0.src_port, p0.dst_port), (Some(51000), Some(443)));
    assert_eq!(p0.source_ip.to_string(), "10.0.0.1");
    assert_eq!(p0.timestamp.unwrap().timestamp(), 1_700_000_000);
    let p1 = cap.frames[1].packet.as_ref().unwrap();
    assert_eq!(p1.protocol, "UDP");
    assert_eq!(p1.packet_size, 40 + 38);
    assert!(p1.source_ip.is_ipv6());
    assert!(cap.frames[2].packet.is_none(), "ARP is skipped");
    let p3 = cap.frames[3].packet.as_ref().unwrap();
    assert_eq!(
        (p3.protocol.as_str(), p3.packet_size, p3.dst_port),
        ("ICMP", 28, None)
    );
    assert_eq!(cap.frames[4].packet.as_ref().unwrap().protocol, "HTTP");
}

#[test]
fn linux_cooked_capture() {
    let frames = [
        sll(0x0800, &ipv4_tcp(1234, 22, SYN, 10)),
        sll(0x86dd, &ipv6_udp(1, 2, 0)),
        sll(0x0806, &[0u8; 28]),
    ];
    let file = pcap_file(LINUX_SLL, 5, &frames);
    let cap = parse_capture(&file, Path::new("sll.pcap")).unwrap();
    assert_eq!(cap.frames.len(), 3);
    assert_eq!(cap.frames[0].packet.as_ref().unwrap().packet_size, 50);
    assert_eq!(cap.frames[0].packet.as_ref().unwrap().protocol, "TCP");
    assert_eq!(cap.frames[1].packet.as_ref().unwrap().packet_size, 48);
    assert!(cap.frames[2].packet.is_none());
}

#[test]
fn truncated_file_keeps_earlier_frames_and_names_the_offset() {
    let frame = ethernet(0x0800, &ipv4_tcp(1, 2, SYN, 10));
    let mut file = pcap_file(ETHERNET, 1, std::slice::from_ref(&frame));
    let good_len = file.len();
    pcap_record(&mut file, 2, 0, &frame);
    file.truncate(good_len + 20);
    let cap = parse_capture(&file, Path::new("cut.pcap")).unwrap();
    assert_eq!(cap.frames.len(), 1);
    let err = cap.error.unwrap();
    assert_eq!(err.offset, good_len);
    let text = err.to_string();
    assert!(
        text.contains("cut.pcap")
            && text.contains("truncated")
            && text.contains(&good_len.to_string()),
        "{text}"
    );
}

#[test]
fn not_a_capture_is_an_error_at_offset_zero() {
    let err = parse_capture(b"hello world", Path::new("x.txt")).unwrap_err();
    assert_eq!(err.offset, 0);
    assert!(err.to_string().contains("not a pcap"));
    assert!(parse_capture(b"", Path::new("e")).is_err());
}

/// Regression: pcap-file 2 reads enhanced-packet ticks as nanoseconds;
/// the default unit is microseconds (if_tsresol), so times were 1000× off.
#[test]
fn pcapng_with_enhanced_packets() {
    let frame = ethernet(0x0800, &ipv4_tcp(1000, 80, SYN, 60));
    let file = pcapng_file(1, &[(1_700_000_000_000_000, frame)]);
    let cap = parse_capture(&file, Path::new("t.pcapng")).unwrap();
    assert!(cap.error.is_none(), "{:?}", cap.error);
    assert_eq!(cap.frames.len(), 1);
    let p = cap.frames[0].packet.as_ref().unwrap();
    assert_eq!((p.protocol.as_str(), p.packet_size), ("HTTP", 100));
    assert_eq!(p.timestamp.unwrap().timestamp(), 1_700_000_000);
}

#[test]
fn labels_file_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("l.csv");
    std::fs::write(&p, "label\n0\n1\n0\n").unwrap();
    assert_eq!(read_labels(&p).unwrap(), [false, true, false]);
    std::fs::write(&p, "0\n2\n").unwrap();
    let e = read_labels(&p).unwrap_err().to_string();
    assert!(e.contains("line 2") && e.contains("\"2\""), "{e}");
}
