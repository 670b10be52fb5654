//! Captures written byte by byte, as the formats say: pcap headers and
//! records, pcapng blocks, and the frames inside them (Ethernet, Linux cooked,
//! IPv4/IPv6 with TCP, UDP or ICMP). One builder for every test that needs a
//! capture file.

/// Link types (pcap's LINKTYPE_ values).
pub const ETHERNET: u32 = 1;
/// Linux cooked capture v1.
pub const LINUX_SLL: u32 = 113;

/// TCP flag bits.
pub const SYN: u8 = 0x02;
/// TCP ACK.
pub const ACK: u8 = 0x10;

/// A classic pcap file header (microsecond timestamps, little-endian).
pub fn pcap_header(link: u32) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&0i32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&65535u32.to_le_bytes());
    v.extend_from_slice(&link.to_le_bytes());
    v
}

/// Appends one record holding `frame`, captured at `secs` + `micros`.
pub fn pcap_record(out: &mut Vec<u8>, secs: u32, micros: u32, frame: &[u8]) {
    out.extend_from_slice(&secs.to_le_bytes());
    out.extend_from_slice(&micros.to_le_bytes());
    out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    out.extend_from_slice(frame);
}

/// A whole pcap file: one record per frame, one second apart from `first_secs`.
pub fn pcap_file(link: u32, first_secs: u32, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut v = pcap_header(link);
    for (i, f) in frames.iter().enumerate() {
        pcap_record(&mut v, first_secs + i as u32, 0, f);
    }
    v
}

/// One pcapng block of `kind` around `body` (padded to 32 bits).
pub fn pcapng_block(kind: u32, body: &[u8]) -> Vec<u8> {
    let pad = (4 - body.len() % 4) % 4;
    let len = (12 + body.len() + pad) as u32;
    let mut v = Vec::new();
    v.extend_from_slice(&kind.to_le_bytes());
    v.extend_from_slice(&len.to_le_bytes());
    v.extend_from_slice(body);
    v.extend(std::iter::repeat_n(0u8, pad));
    v.extend_from_slice(&len.to_le_bytes());
    v
}

/// A pcapng file: section header, one interface of `link` (microseconds),
/// one enhanced packet block per (microseconds since the epoch, frame).
pub fn pcapng_file(link: u16, packets: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    let mut idb = Vec::new();
    idb.extend_from_slice(&link.to_le_bytes());
    idb.extend_from_slice(&0u16.to_le_bytes());
    idb.extend_from_slice(&65535u32.to_le_bytes());
    let mut file = pcapng_block(0x0a0d_0d0a, &shb);
    file.extend(pcapng_block(1, &idb));
    for (micros, frame) in packets {
        let mut epb = Vec::new();
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&((micros >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(*micros as u32).to_le_bytes());
        epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        epb.extend_from_slice(frame);
        file.extend(pcapng_block(6, &epb));
    }
    file
}

/// An IPv4 header for `payload_len` bytes of `protocol` from `src` to `dst`.
pub fn ipv4_header(src: [u8; 4], dst: [u8; 4], protocol: u8, payload_len: usize) -> Vec<u8> {
    let total = 20 + payload_len;
    let mut v = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        0,
        0x40,
        0,
        64,
        protocol,
        0,
        0,
    ];
    v.extend_from_slice(&src);
    v.extend_from_slice(&dst);
    v
}

/// A TCP segment header with these ports and flags.
pub fn tcp_header(src_port: u16, dst_port: u16, flags: u8) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&src_port.to_be_bytes());
    v.extend_from_slice(&dst_port.to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    v
}

/// IPv4 10.0.0.1 → 10.0.0.2, TCP with these ports and flags, `payload` zero bytes.
pub fn ipv4_tcp(src_port: u16, dst_port: u16, flags: u8, payload: usize) -> Vec<u8> {
    let mut v = ipv4_header([10, 0, 0, 1], [10, 0, 0, 2], 6, 20 + payload);
    v.extend(tcp_header(src_port, dst_port, flags));
    v.extend(std::iter::repeat_n(0u8, payload));
    v
}

/// IPv6 2001:db8::1 → 2001:db8::2, UDP with these ports, `payload` zero bytes.
pub fn ipv6_udp(src_port: u16, dst_port: u16, payload: usize) -> Vec<u8> {
    let len = 8 + payload;
    let mut v = vec![0x60, 0, 0, 0, (len >> 8) as u8, len as u8, 17, 64];
    v.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    v.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    v.extend_from_slice(&src_port.to_be_bytes());
    v.extend_from_slice(&dst_port.to_be_bytes());
    v.extend_from_slice(&(len as u16).to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    v.extend(std::iter::repeat_n(0u8, payload));
    v
}

/// IPv4 192.168.0.1 → 192.168.0.2, an ICMP message of `icmp_type` (8: echo request).
pub fn ipv4_icmp(icmp_type: u8) -> Vec<u8> {
    let mut v = ipv4_header([192, 168, 0, 1], [192, 168, 0, 2], 1, 8);
    v.extend_from_slice(&[icmp_type, 0, 0, 0, 0, 1, 0, 1]);
    v
}

/// An Ethernet frame carrying `payload` under `ether_type` (0x0800 IPv4, 0x86dd IPv6, 0x0806 ARP).
pub fn ethernet(ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    v.extend_from_slice(&ether_type.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// A Linux cooked (v1) frame carrying `payload` under `ether_type`.
pub fn sll(ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0];
    v.extend_from_slice(&ether_type.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// An ARP message (Ethernet/IPv4): `op` 1 request, 2 reply, from the sender
/// protocol address `sender` about `target`.
pub fn arp(op: u16, sender: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let mut v = vec![0, 1, 0x08, 0, 6, 4];
    v.extend_from_slice(&op.to_be_bytes());
    v.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
    v.extend_from_slice(&sender);
    v.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    v.extend_from_slice(&target);
    v
}

/// The Ethernet frame of an IPv4 record as a capture holds it: headers only
/// (cut by the snap length), the IP header giving the packet's full length.
/// TCP carries the record's flags, ICMP its type; any other protocol name
/// with ports goes as UDP.
pub fn ipv4_frame(p: &netsentinel::protocol::Packet) -> Vec<u8> {
    let (std::net::IpAddr::V4(src), std::net::IpAddr::V4(dst)) = (p.source_ip, p.dest_ip) else {
        panic!("IPv4 records only");
    };
    let (number, transport) = match (p.tcp_flags, p.icmp_type) {
        (Some(flags), _) => (
            6,
            tcp_header(p.src_port.unwrap_or(0), p.dst_port.unwrap_or(0), flags),
        ),
        (None, Some(kind)) => (1, vec![kind, 0, 0, 0, 0, 1, 0, 1]),
        (None, None) => {
            let mut udp = Vec::new();
            udp.extend_from_slice(&p.src_port.unwrap_or(0).to_be_bytes());
            udp.extend_from_slice(&p.dst_port.unwrap_or(0).to_be_bytes());
            udp.extend_from_slice(&(p.packet_size.saturating_sub(20)).to_be_bytes());
            udp.extend_from_slice(&[0, 0]);
            (17, udp)
        }
    };
    let mut ip = ipv4_header(
        src.octets(),
        dst.octets(),
        number,
        usize::from(p.packet_size).saturating_sub(20),
    );
    ip.extend(transport);
    ethernet(0x0800, &ip)
}
