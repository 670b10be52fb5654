//! The grouping rules: which flagged packets make an incident, and which
//! incident a flagged packet joins. Pure state, fed in packet time; nothing
//! here touches the database.
//!
//! Each packet involves two hosts: the client of its conversation (the end
//! that started it, see [`crate::context::client_is_source`]) and the server.
//! Per host the grouper keeps running sums, decaying with packet time: the
//! strong anomalies it took part in (half-life [`COUNT_HALF_LIFE`]) and the
//! share of its packets that were flagged (half-life [`SHARE_HALF_LIFE`]). A
//! strong anomaly is a flagged packet scoring at least
//! `incidents.strong_score`: the threshold flags `detector.contamination` of
//! ordinary traffic by construction, and those packets score just above it;
//! attacks score well above. An incident opens for the client (role
//! `source`), else the server (role `target`, as for a flood from spoofed
//! sources), when its count of strong anomalies reaches
//! `incidents.min_packets` while `incidents.min_share` of its recent packets
//! are flagged, and its strong anomalies are more than one conversation:
//! [`CONNECTIONS_NEEDED`] connections within [`CONNECTION_WINDOW`] seconds (a
//! scan, a sweep, a flood, a brute force), or one connection strongly flagged
//! for [`LONG_CONNECTION`] seconds (a beacon); or at once for a packet scoring
//! `incidents.open_score`. One odd session of ordinary traffic, all its
//! packets scored alike by the conversation's context, opens nothing.
//! Measured on the generator (see `docs/INCIDENTS.md`): an ordinary host that
//! draws many flags (a busy DNS server) draws weak ones; one that draws a
//! strong one now and then (a giant packet) has most of its packets
//! unflagged; an attacker's packets are nearly all flagged, most strongly.
//!
//! A flagged packet (strong or not) joins the open incident of its client,
//! else of its server, while that incident's last strong anomaly is at most
//! `incidents.gap_s` old; past the gap the incident is over and the next
//! anomalies must earn a new one. Only strong anomalies keep an incident
//! going: a busy host always has a weak flag within a minute (contamination),
//! which would keep its incident open for ever.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::config::IncidentsConfig;
use crate::judge::ModelHandle;
use crate::protocol::Packet;

/// Half-life in seconds of packet time of a host's count of strong anomalies.
pub const COUNT_HALF_LIFE: f64 = 5.0;
/// Half-life in seconds of packet time of the share of a host's packets
/// that are strong anomalies (short, so a host's calm past does not hide a
/// change that started a second ago).
pub const SHARE_HALF_LIFE: f64 = 1.0;
/// Distinct connections with strong anomalies a host needs (within
/// [`CONNECTION_WINDOW`]) unless one of them lasts [`LONG_CONNECTION`].
pub const CONNECTIONS_NEEDED: usize = 4;
/// Seconds of packet time over which a host's connections are counted.
pub const CONNECTION_WINDOW: f64 = 10.0;
/// Seconds of packet time one connection must stay strongly flagged to count alone.
pub const LONG_CONNECTION: f64 = 3.0;
/// Distinct peers and ports counted exactly per incident; beyond, "at least".
pub const DISTINCT_CAP: usize = 4096;
/// Observations between sweeps of hosts not seen for a while.
const SWEEP_EVERY: u64 = 1 << 16;

/// Which end of the conversations the incident's host is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The host started them (a scanner, a brute-forcer, a beaconing client).
    Source,
    /// The host answered them (the target of a flood from many sources).
    Target,
}

impl Role {
    /// The role as stored and shown.
    pub fn name(self) -> &'static str {
        match self {
            Role::Source => "source",
            Role::Target => "target",
        }
    }
}

/// One committed packet with its verdict, as the grouper reads it.
pub struct Seen<'a> {
    /// Its row id.
    pub id: i64,
    /// Its packet time.
    pub time: DateTime<Utc>,
    /// The packet.
    pub packet: &'a Packet,
    /// The sender that reported it.
    pub sender: &'a str,
    /// Its score (`None` before any model).
    pub score: Option<f64>,
    /// Flagged.
    pub anomaly: bool,
    /// The model that judged it.
    pub model: Option<&'a Arc<ModelHandle>>,
    /// Its feature row (kept for flagged packets).
    pub features: Option<&'a [f32]>,
}

/// Values counted per incident, each with its packets; exact up to
/// [`DISTINCT_CAP`] values.
#[derive(Debug, Clone)]
pub struct Distinct<T: std::hash::Hash + Eq + Copy + Ord> {
    counts: HashMap<T, u64>,
    overflow: bool,
}

impl<T: std::hash::Hash + Eq + Copy + Ord> Default for Distinct<T> {
    fn default() -> Self {
        Distinct {
            counts: HashMap::new(),
            overflow: false,
        }
    }
}

impl<T: std::hash::Hash + Eq + Copy + Ord> Distinct<T> {
    fn add(&mut self, v: T) {
        if let Some(n) = self.counts.get_mut(&v) {
            *n += 1;
        } else if self.counts.len() < DISTINCT_CAP {
            self.counts.insert(v, 1);
        } else {
            self.overflow = true;
        }
    }

    /// Distinct values counted.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// True when none was counted.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// True when more values came than were counted ([`Distinct::len`] is a floor).
    pub fn overflow(&self) -> bool {
        self.overflow
    }

    /// The `n` values with the most packets, most first (ties: smallest value first).
    pub fn top(&self, n: usize) -> Vec<(T, u64)> {
        let mut all: Vec<(T, u64)> = self.counts.iter().map(|(v, c)| (*v, *c)).collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(n);
        all
    }
}

/// The packet an incident is explained by: its highest-scoring one.
#[derive(Debug, Clone)]
pub struct Peak {
    /// Its score.
    pub score: f64,
    /// Its row id.
    pub id: i64,
    /// The model that judged it.
    pub model: Option<Arc<ModelHandle>>,
    /// Its feature row.
    pub features: Option<Vec<f32>>,
    /// Its addresses, protocol and ports, to word the explanation.
    pub packet: Packet,
}

/// The packet that opened an incident, as suppression rules see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Opening {
    /// The client side of its conversation.
    pub client: IpAddr,
    /// The server side.
    pub server: IpAddr,
    /// The server-side port.
    pub server_port: Option<u16>,
    /// Its protocol.
    pub protocol: String,
}

/// An incident as the worker keeps it while its anomalies keep coming.
#[derive(Debug, Clone)]
pub struct Incident {
    /// Its id in `incidents`, once stored.
    pub id: Option<i64>,
    /// The host it is about.
    pub host: IpAddr,
    /// Which end of the conversations the host is.
    pub role: Role,
    /// Row id of the packet that opened it (unique: it names the incident
    /// before it has an id, so a retried write never stores it twice).
    pub first_packet: i64,
    /// The opening packet's client and server ends, server-side port and
    /// protocol (what suppression rules are matched against).
    pub opening: Opening,
    /// Packet time of its first and last anomalous packets.
    pub first_seen: DateTime<Utc>,
    /// See `first_seen`.
    pub last_seen: DateTime<Utc>,
    /// Anomalous packets in it.
    pub packets: u64,
    /// Their bytes.
    pub bytes: u64,
    /// The other ends of its packets.
    pub peers: Distinct<IpAddr>,
    /// Ports on the server side of its packets (probed, attacked, called).
    pub ports: Distinct<u16>,
    /// Senders that reported its packets.
    pub senders: Vec<String>,
    /// Its highest-scoring packet.
    pub peak: Peak,
    /// True when the peak changed since it was last explained.
    pub peak_changed: bool,
    /// The view of the model that gave the peak its score (from the explanation).
    pub kind: String,
    /// One sentence a person reads first.
    pub summary: String,
    /// The explanation's reasons (JSON array of the model's feature reasons).
    pub reasons: serde_json::Value,
    last_time: f64,
    dirty: bool,
}

/// Most senders listed per incident.
const MAX_SENDERS: usize = 16;

impl Incident {
    /// Counts a flagged packet in; only a strong one keeps the incident going.
    fn add(&mut self, seen: &Seen<'_>, peer: IpAddr, port: Option<u16>, t: f64, strong: bool) {
        self.packets += 1;
        self.bytes += u64::from(seen.packet.packet_size);
        self.peers.add(peer);
        if let Some(p) = port {
            self.ports.add(p);
        }
        if self.senders.len() < MAX_SENDERS && !self.senders.iter().any(|s| s == seen.sender) {
            self.senders.push(seen.sender.to_string());
        }
        if seen.time > self.last_seen {
            self.last_seen = seen.time;
        }
        if seen.time < self.first_seen {
            self.first_seen = seen.time;
        }
        if strong {
            self.last_time = self.last_time.max(t);
        }
        let score = seen.score.unwrap_or(f64::NEG_INFINITY);
        if score > self.peak.score {
            self.peak = peak_of(seen, score);
            self.peak_changed = true;
        }
        self.dirty = true;
    }

    /// True while it has changes not yet stored.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }
}

fn peak_of(seen: &Seen<'_>, score: f64) -> Peak {
    Peak {
        score,
        id: seen.id,
        model: seen.model.cloned(),
        features: seen.features.map(<[f32]>::to_vec),
        packet: seen.packet.clone(),
    }
}

/// The conversation a packet belongs to, either direction alike.
fn connection_key(p: &Packet) -> u64 {
    use std::hash::{Hash, Hasher};
    let a = (p.source_ip, p.src_port);
    let b = (p.dest_ip, p.dst_port);
    let mut h = std::collections::hash_map::DefaultHasher::new();
    p.protocol.hash(&mut h);
    a.min(b).hash(&mut h);
    a.max(b).hash(&mut h);
    h.finish()
}

/// Per host: the decaying sums and its open incident.
#[derive(Debug, Clone, Default)]
struct Host {
    time: f64,
    strong: f64,
    recent: f64,
    recent_flagged: f64,
    incident: Option<u64>,
    /// Connections with strong anomalies lately: (key, first, last strong time).
    conns: Vec<(u64, f64, f64)>,
}

impl Host {
    /// Notes a strong anomaly on connection `key` at `t`.
    fn strong_on(&mut self, key: u64, t: f64) {
        self.conns.retain(|c| t - c.2 <= CONNECTION_WINDOW);
        if let Some(c) = self.conns.iter_mut().find(|c| c.0 == key) {
            c.2 = c.2.max(t);
        } else if self.conns.len() < CONNECTIONS_NEEDED {
            self.conns.push((key, t, t));
        }
    }

    /// More than one odd session: enough connections, or one long one.
    fn spread(&self) -> bool {
        self.conns.len() >= CONNECTIONS_NEEDED
            || self.conns.iter().any(|c| c.2 - c.1 >= LONG_CONNECTION)
    }

    fn decay_to(&mut self, t: f64) {
        let dt = t - self.time;
        if dt > 0.0 {
            self.strong *= (-dt * std::f64::consts::LN_2 / COUNT_HALF_LIFE).exp();
            let share = (-dt * std::f64::consts::LN_2 / SHARE_HALF_LIFE).exp();
            self.recent *= share;
            self.recent_flagged *= share;
            self.time = t;
        }
    }
}

/// The grouping rules' settings (see the module doc).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Score from which a flagged packet is a strong anomaly.
    pub strong_score: f64,
    /// Recent strong anomalies a host needs for an incident.
    pub min_packets: f64,
    /// Share of a host's recent packets that must be flagged.
    pub min_share: f64,
    /// One packet scoring this opens an incident on its own.
    pub open_score: f64,
    /// Seconds of packet time without anomalies that end an incident.
    pub gap: f64,
    /// Hosts tracked at most; the least recently seen are forgotten beyond.
    pub max_hosts: usize,
}

impl From<&IncidentsConfig> for Settings {
    fn from(c: &IncidentsConfig) -> Settings {
        Settings {
            strong_score: c.strong_score,
            min_packets: c.min_packets as f64,
            min_share: c.min_share,
            open_score: c.open_score,
            gap: c.gap_s as f64,
            max_hosts: c.max_hosts,
        }
    }
}

/// The grouping state: hosts and incidents.
pub struct Grouper {
    settings: Settings,
    hosts: HashMap<IpAddr, Host>,
    incidents: HashMap<u64, Incident>,
    next_key: u64,
    seen: u64,
    opened: u64,
}

impl Grouper {
    /// An empty grouper.
    pub fn new(settings: Settings) -> Grouper {
        Grouper {
            settings,
            hosts: HashMap::new(),
            incidents: HashMap::new(),
            next_key: 0,
            seen: 0,
            opened: 0,
        }
    }

    /// Takes in one committed packet; returns true when it opened an incident.
    pub fn observe(&mut self, seen: &Seen<'_>) -> bool {
        let p = seen.packet;
        let t = seen.time.timestamp_micros() as f64 / 1e6;
        let client_is_source = crate::context::client_is_source(
            &p.protocol,
            p.src_port,
            p.dst_port,
            p.tcp_flags,
            p.icmp_type,
        );
        let (client, server) = if client_is_source {
            (p.source_ip, p.dest_ip)
        } else {
            (p.dest_ip, p.source_ip)
        };
        let server_port = if client_is_source {
            p.dst_port
        } else {
            p.src_port
        };
        let score = seen.score.unwrap_or(f64::NEG_INFINITY);
        let joined = seen.anomaly && self.join(seen, client, server, server_port, t);
        let flagged = seen.anomaly && !joined;
        let strong = flagged && score >= self.settings.strong_score;
        // Hashed only for the few packets that need it.
        let conn = if strong { connection_key(p) } else { 0 };
        let ends: &[IpAddr] = if client == server {
            &[client][..]
        } else {
            &[client, server][..]
        };
        for &h in ends {
            let host = self.hosts.entry(h).or_default();
            if host.time == 0.0 {
                host.time = t;
            }
            host.decay_to(t);
            host.recent += 1.0;
            if flagged {
                host.recent_flagged += 1.0;
            }
            if strong {
                host.strong += 1.0;
                host.strong_on(conn, t);
            }
        }
        let mut opened = false;
        if strong {
            for (i, &h) in ends.iter().enumerate() {
                let host = &self.hosts[&h];
                let enough = host.strong >= self.settings.min_packets
                    && host.recent_flagged >= self.settings.min_share * host.recent
                    && host.spread();
                if enough || score >= self.settings.open_score {
                    let role = if i == 0 { Role::Source } else { Role::Target };
                    let peer = if i == 0 { server } else { client };
                    let opening = Opening {
                        client,
                        server,
                        server_port,
                        protocol: p.protocol.clone(),
                    };
                    self.open(seen, h, role, peer, opening, t);
                    opened = true;
                    break;
                }
            }
        }
        self.seen += 1;
        if self.seen % SWEEP_EVERY == 0 {
            self.sweep(t);
        }
        opened
    }

    /// Adds a flagged packet to the open incident of its client, else of its
    /// server; false when neither has one within the gap.
    fn join(
        &mut self,
        seen: &Seen<'_>,
        client: IpAddr,
        server: IpAddr,
        port: Option<u16>,
        t: f64,
    ) -> bool {
        for (h, peer) in [(client, server), (server, client)] {
            let Some(key) = self.hosts.get(&h).and_then(|s| s.incident) else {
                continue;
            };
            match self.incidents.get_mut(&key) {
                Some(inc) if t - inc.last_time <= self.settings.gap => {
                    let strong =
                        seen.score.unwrap_or(f64::NEG_INFINITY) >= self.settings.strong_score;
                    inc.add(seen, peer, port, t, strong);
                    return true;
                }
                _ => {
                    // Over: the host earns its next incident afresh.
                    if let Some(host) = self.hosts.get_mut(&h) {
                        host.incident = None;
                    }
                }
            }
        }
        false
    }

    fn open(
        &mut self,
        seen: &Seen<'_>,
        h: IpAddr,
        role: Role,
        peer: IpAddr,
        opening: Opening,
        t: f64,
    ) {
        let port = opening.server_port;
        let key = self.next_key;
        self.next_key += 1;
        let score = seen.score.unwrap_or(f64::NEG_INFINITY);
        let mut inc = Incident {
            id: None,
            host: h,
            role,
            first_packet: seen.id,
            opening,
            first_seen: seen.time,
            last_seen: seen.time,
            packets: 0,
            bytes: 0,
            peers: Distinct::default(),
            ports: Distinct::default(),
            senders: Vec::new(),
            peak: peak_of(seen, score),
            peak_changed: true,
            kind: String::new(),
            summary: String::new(),
            reasons: serde_json::Value::Array(Vec::new()),
            last_time: t,
            dirty: true,
        };
        inc.add(seen, peer, port, t, true);
        inc.peak_changed = true;
        self.incidents.insert(key, inc);
        if let Some(host) = self.hosts.get_mut(&h) {
            host.incident = Some(key);
            // Its anomalies now count in the incident, not toward another.
            host.strong = 0.0;
            host.conns.clear();
        }
        self.opened += 1;
    }

    /// Forgets hosts not seen for long and incidents that are over and
    /// stored; beyond `max_hosts`, the least recently seen hosts go first.
    fn sweep(&mut self, now: f64) {
        let horizon = self.settings.gap.max(10.0 * COUNT_HALF_LIFE);
        let gap = self.settings.gap;
        self.incidents
            .retain(|_, inc| inc.dirty || inc.id.is_none() || now - inc.last_time <= gap);
        let incidents = &self.incidents;
        self.hosts.retain(|_, h| {
            now - h.time <= horizon || h.incident.is_some_and(|k| incidents.contains_key(&k))
        });
        if self.hosts.len() > self.settings.max_hosts {
            let mut idle: Vec<(f64, IpAddr)> = self
                .hosts
                .iter()
                .filter(|(_, h)| h.incident.is_none())
                .map(|(a, h)| (h.time, *a))
                .collect();
            let drop = (self.hosts.len() - self.settings.max_hosts * 9 / 10).min(idle.len());
            if drop > 0 && drop < idle.len() {
                idle.select_nth_unstable_by(drop, |a, b| a.0.total_cmp(&b.0));
            }
            for (_, a) in &idle[..drop] {
                self.hosts.remove(a);
            }
        }
    }

    /// Keys of the incidents with changes not yet stored.
    pub fn dirty(&self) -> Vec<u64> {
        let mut keys: Vec<u64> = self
            .incidents
            .iter()
            .filter(|(_, i)| i.dirty)
            .map(|(k, _)| *k)
            .collect();
        keys.sort_unstable();
        keys
    }

    /// The incident under `key`.
    pub fn get(&self, key: u64) -> Option<&Incident> {
        self.incidents.get(&key)
    }

    /// The incident under `key`, to fill in its words.
    pub fn get_mut(&mut self, key: u64) -> Option<&mut Incident> {
        self.incidents.get_mut(&key)
    }

    /// Records that the incident under `key` is stored as `id`; a `closed`
    /// one (a person closed it) takes no more packets.
    pub fn stored(&mut self, key: u64, id: i64, closed: bool) {
        let Some(inc) = self.incidents.get_mut(&key) else {
            return;
        };
        inc.id = Some(id);
        inc.dirty = false;
        if closed {
            let host = inc.host;
            self.incidents.remove(&key);
            if let Some(h) = self.hosts.get_mut(&host) {
                if h.incident == Some(key) {
                    h.incident = None;
                }
            }
        }
    }

    /// Hosts tracked now.
    pub fn hosts(&self) -> usize {
        self.hosts.len()
    }

    /// Incidents held in memory now (taking packets, or waiting to be stored).
    pub fn active(&self) -> usize {
        self.incidents.len()
    }

    /// Incidents opened since start.
    pub fn opened(&self) -> u64 {
        self.opened
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tcp;

    fn settings() -> Settings {
        Settings {
            strong_score: 0.7,
            min_packets: 5.0,
            min_share: 0.7,
            open_score: 2.0,
            gap: 60.0,
            max_hosts: 1000,
        }
    }

    fn syn(src: &str, dst: &str, port: u16) -> Packet {
        Packet {
            seq: None,
            source_ip: src.parse().unwrap(),
            dest_ip: dst.parse().unwrap(),
            packet_size: 64,
            protocol: "TCP".into(),
            src_port: Some(50_000),
            dst_port: Some(port),
            timestamp: None,
            tcp_flags: Some(tcp::SYN),
            icmp_type: None,
        }
    }

    /// A packet of the `k`th SSH connection from 10.0.0.66 to 10.0.1.10.
    fn login(k: u16) -> Packet {
        let mut p = syn("10.0.0.66", "10.0.1.10", 22);
        p.src_port = Some(50_000 + k);
        p
    }

    fn feed(g: &mut Grouper, id: i64, t: f64, p: &Packet, score: f64, threshold: f64) -> bool {
        let time = DateTime::from_timestamp_micros((t * 1e6) as i64).unwrap();
        g.observe(&Seen {
            id,
            time,
            packet: p,
            sender: "s",
            score: Some(score),
            anomaly: score > threshold,
            model: None,
            features: None,
        })
    }

    #[test]
    fn a_host_whose_packets_are_all_strong_anomalies_opens_one_incident() {
        let mut g = Grouper::new(settings());
        let mut opened = 0;
        for i in 0..100 {
            let p = syn("10.0.0.66", "10.0.1.10", 1 + i as u16);
            opened += feed(&mut g, i, 1000.0 + i as f64 * 0.01, &p, 0.9, 0.6) as u32;
        }
        assert_eq!(opened, 1);
        let keys = g.dirty();
        assert_eq!(keys.len(), 1);
        let inc = g.get(keys[0]).unwrap();
        assert_eq!(inc.host.to_string(), "10.0.0.66");
        assert_eq!(inc.role, Role::Source);
        // It opened within the first few strong anomalies and took every one after.
        assert!((4..8).contains(&inc.first_packet), "{}", inc.first_packet);
        assert_eq!(inc.packets, 100 - inc.first_packet as u64);
        assert_eq!(inc.ports.len() as u64, inc.packets);
        assert_eq!(inc.peers.len(), 1);
    }

    #[test]
    fn weak_anomalies_open_nothing_however_many() {
        let mut g = Grouper::new(settings());
        for i in 0..10_000 {
            let p = syn("10.0.0.2", "10.0.1.10", 53);
            // Flagged, but just above the threshold, like contamination's share.
            assert!(!feed(&mut g, i, 1000.0 + i as f64 * 0.01, &p, 0.65, 0.6));
        }
        assert!(g.dirty().is_empty());
    }

    #[test]
    fn strong_anomalies_scattered_among_ordinary_packets_open_nothing() {
        let mut g = Grouper::new(settings());
        for i in 0..10_000 {
            let p = syn("10.0.0.9", "10.0.1.10", 80);
            let score = if i % 4 == 0 { 0.9 } else { 0.5 };
            assert!(!feed(&mut g, i, 1000.0 + i as f64 * 0.01, &p, score, 0.6));
        }
    }

    #[test]
    fn a_flood_from_many_sources_opens_one_incident_for_its_target() {
        let mut g = Grouper::new(settings());
        let mut opened = 0;
        for i in 0..500u32 {
            let src = format!("172.16.{}.{}", i / 250, 1 + i % 250);
            let p = syn(&src, "10.0.1.20", 80);
            opened += feed(
                &mut g,
                i.into(),
                1000.0 + f64::from(i) * 0.003,
                &p,
                0.95,
                0.6,
            ) as u32;
        }
        assert_eq!(opened, 1);
        let inc = g.get(g.dirty()[0]).unwrap();
        assert_eq!(inc.host.to_string(), "10.0.1.20");
        assert_eq!(inc.role, Role::Target);
        assert!(inc.peers.len() > 400, "{}", inc.peers.len());
        assert_eq!(inc.ports.top(1), vec![(80, inc.packets)]);
    }

    #[test]
    fn after_the_gap_the_next_anomalies_make_a_new_incident_and_a_closed_one_takes_no_more() {
        let mut g = Grouper::new(settings());
        let mut id = 0;
        // A brute force: a new connection (source port) for each packet.
        let mut burst = |g: &mut Grouper, from: f64| {
            let mut opened = 0;
            for k in 0..50 {
                id += 1;
                let p = login(k);
                opened += feed(g, id, from + k as f64 * 0.05, &p, 0.9, 0.6) as u32;
            }
            opened
        };
        assert_eq!(burst(&mut g, 1000.0), 1);
        assert_eq!(
            burst(&mut g, 1030.0),
            0,
            "within the gap: the same incident"
        );
        assert_eq!(burst(&mut g, 1200.0), 1, "past the gap: a new one");
        let keys = g.dirty();
        assert_eq!(keys.len(), 2);
        g.stored(keys[0], 1, false);
        g.stored(keys[1], 2, true);
        assert_eq!(burst(&mut g, 1210.0), 1, "closed by a person: a new one");
    }

    #[test]
    fn weak_flags_join_an_incident_but_do_not_keep_it_going() {
        let mut g = Grouper::new(settings());
        let p = login(0);
        let mut opened = 0;
        for k in 0..50 {
            opened += feed(
                &mut g,
                k,
                1000.0 + k as f64 * 0.05,
                &login(k as u16),
                0.9,
                0.6,
            ) as u32;
        }
        // A weak flag every 10 s: each joins while the last strong one is
        // within the gap, none extends it.
        for k in 0..20 {
            opened += feed(&mut g, 100 + k, 1010.0 + k as f64 * 10.0, &p, 0.65, 0.6) as u32;
        }
        assert_eq!(opened, 1);
        let inc = g.get(g.dirty()[0]).unwrap();
        // Strong until 1002.45 s, so weak flags join until 1062.45 s: six of them.
        assert_eq!(inc.packets, 50 - inc.first_packet as u64 + 6);
        for k in 0..50 {
            let p = login(k as u16);
            opened += feed(&mut g, 200 + k, 1300.0 + k as f64 * 0.05, &p, 0.9, 0.6) as u32;
        }
        assert_eq!(opened, 2);
    }

    #[test]
    fn one_odd_session_opens_nothing_but_one_connection_flagged_for_long_does() {
        let mut g = Grouper::new(settings());
        let p = login(0);
        // Sixty packets in two seconds, all strongly flagged: one session.
        for k in 0..60 {
            assert!(!feed(&mut g, k, 1000.0 + k as f64 / 30.0, &p, 0.9, 0.6));
        }
        // The same connection, still strongly flagged past three seconds: a beacon.
        let opened = (0..20).any(|k| feed(&mut g, 100 + k, 1002.0 + k as f64 * 0.5, &p, 0.9, 0.6));
        assert!(opened);
    }

    #[test]
    fn one_packet_over_open_score_opens_at_once() {
        let mut g = Grouper::new(settings());
        let p = syn("10.0.0.66", "10.0.1.10", 22);
        assert!(feed(&mut g, 1, 1000.0, &p, 2.5, 0.6));
    }

    #[test]
    fn forgotten_hosts_stay_within_the_cap() {
        let mut g = Grouper::new(Settings {
            max_hosts: 1000,
            ..settings()
        });
        for i in 0..(SWEEP_EVERY as u32 * 2) {
            let src = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            let mut p = syn("10.0.0.1", "10.0.1.10", 80);
            p.source_ip = src;
            feed(&mut g, i.into(), 1000.0, &p, 0.5, 0.6);
        }
        assert!(g.hosts() <= 1000 + SWEEP_EVERY as usize, "{}", g.hosts());
    }
}
