//! The traffic generator: a small seeded network of clients and servers
//! holding sessions (TCP with handshakes, flags and teardown; DNS and NTP over
//! UDP; pings), stamped with a packet-time clock, plus the attacks it can
//! inject: the seed's size anomalies (giants and runts inside ordinary
//! sessions) and, with a [`Scenario`], behaviour made of ordinary-looking
//! packets (a port scan, a host sweep, a SYN flood, a password brute force, a
//! periodic C&C beacon, or all at once). Every packet comes with its truth
//! ([`Truth`]), which stays with the client and never goes on the wire.
//!
//! Packet time runs at the generator's own rate, so a run sent as fast as
//! possible still carries the timing of real traffic; a fixed-count run ends
//! at the moment it starts (its packets are the last seconds of traffic).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{IpAddr, Ipv4Addr};

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::protocol::{tcp, Packet};

/// Normal packet sizes, bytes.
pub const NORMAL_SIZES: std::ops::RangeInclusive<u16> = 64..=1500;
/// Anomalous giants, bytes.
pub const GIANT_SIZES: std::ops::RangeInclusive<u16> = 9000..=65535;
/// Anomalous runts, bytes.
pub const RUNT_SIZES: std::ops::RangeInclusive<u16> = 1..=40;
/// Ephemeral source ports.
const EPHEMERAL: std::ops::RangeInclusive<u16> = 49152..=65535;
/// Packets per second of packet time when no rate is given.
pub const DEFAULT_RATE: f64 = 200.0;
/// Clients and servers of the simulated network.
const CLIENTS: u8 = 40;
const WEB_SERVERS: usize = 24;
const SERVICE_SERVERS: u8 = 10;
/// Web servers a client mostly visits.
const FAVOURITES: usize = 3;
/// Share of a client's web sessions that go to a server outside its favourites.
const NEW_SITE_SHARE: f64 = 0.1;
/// Share of packets a scenario's attack aims at, by default.
pub const DEFAULT_ATTACK_SHARE: f64 = 0.05;

/// A behavioural attack injected beside normal traffic.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// One host sends SYNs to a thousand ports of one target.
    Portscan,
    /// One host pings every address of a subnet.
    Sweep,
    /// Spoofed sources flood one web server with SYNs.
    Synflood,
    /// One host opens SSH connection after connection to one server (ten
    /// password guesses a second, as hydra's sixteen parallel tasks do).
    Bruteforce,
    /// An infected client talks to its C&C server every two seconds.
    Beacon,
    /// All of the above, from different hosts.
    Mixed,
}

/// What a generated packet really is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Truth {
    /// Ordinary traffic.
    Normal,
    /// A giant or a runt (the seed's anomalies).
    Size,
    /// Part of a scenario's attack (both directions).
    Attack(Scenario),
    /// Labelled an anomaly in a capture's labels file.
    Labelled,
}

impl Truth {
    /// True for anything but normal traffic.
    pub fn is_anomaly(self) -> bool {
        self != Truth::Normal
    }

    /// The kind as the report names it.
    pub fn name(self) -> &'static str {
        match self {
            Truth::Normal => "normal",
            Truth::Size => "size",
            Truth::Attack(s) => s.name(),
            Truth::Labelled => "labelled",
        }
    }
}

impl Scenario {
    /// The scenario's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Portscan => "portscan",
            Scenario::Sweep => "sweep",
            Scenario::Synflood => "synflood",
            Scenario::Bruteforce => "bruteforce",
            Scenario::Beacon => "beacon",
            Scenario::Mixed => "mixed",
        }
    }

    /// The single attacks this scenario runs.
    fn parts(self) -> Vec<Scenario> {
        match self {
            Scenario::Mixed => vec![
                Scenario::Portscan,
                Scenario::Sweep,
                Scenario::Synflood,
                Scenario::Bruteforce,
                Scenario::Beacon,
            ],
            s => vec![s],
        }
    }

    /// Packets per second of packet time the attack sends while it runs.
    fn rate(self) -> f64 {
        match self {
            Scenario::Portscan => 200.0,
            Scenario::Sweep => 60.0,
            Scenario::Synflood => 400.0,
            Scenario::Bruteforce => 150.0,
            Scenario::Beacon | Scenario::Mixed => 1.5,
        }
    }
}

/// How a run is shaped.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Protocol names sessions are drawn from.
    pub protocols: Vec<String>,
    /// Share of normal packets turned into giants or runts.
    pub anomaly_ratio: f64,
    /// Packets per second of packet time.
    pub rate: f64,
    /// Packets in the run (`None`: until stopped).
    pub count: Option<u64>,
    /// The attack to inject, if any.
    pub scenario: Option<Scenario>,
    /// Share of the run's packets the attack aims at.
    pub attack_share: f64,
    /// Packet time of the first packet's session start.
    pub start: DateTime<Utc>,
}

/// A packet due at a packet time, with its truth.
#[derive(Debug, Clone)]
struct Due {
    time: f64,
    packet: Packet,
    truth: Truth,
}

/// One flow of packets: a session or an attack, emitting in time order.
struct Flow {
    packets: std::vec::IntoIter<Due>,
}

/// An attack's running state.
struct Attack {
    kind: Scenario,
    /// The current episode: from `start` until `end`.
    start: f64,
    end: f64,
    /// Episodes repeat this often (runs without a count).
    period: Option<f64>,
    next: f64,
    step: u64,
    attacker: Ipv4Addr,
    target: Ipv4Addr,
}

/// A seeded packet generator.
pub struct Generator {
    rng: StdRng,
    plan: Plan,
    clock0: f64,
    next_session: f64,
    session_gap: f64,
    clients: Vec<Ipv4Addr>,
    web: Vec<Ipv4Addr>,
    services: Vec<Ipv4Addr>,
    /// Each client's favourite web servers (most of its browsing goes there).
    favourites: Vec<[usize; FAVOURITES]>,
    flows: Vec<Flow>,
    heads: BinaryHeap<Reverse<(OrderedTime, usize)>>,
    attacks: Vec<Attack>,
}

/// A time that orders (never NaN here).
#[derive(Debug, Clone, Copy, PartialEq)]
struct OrderedTime(f64);

impl Eq for OrderedTime {}

impl Ord for OrderedTime {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl PartialOrd for OrderedTime {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Mean packets of a session, for the session rate.
const MEAN_SESSION_PACKETS: f64 = 9.0;

impl Generator {
    /// A generator for `plan`, seeded with `seed`.
    pub fn new(plan: Plan, seed: u64) -> Generator {
        let mut rng = StdRng::seed_from_u64(seed);
        let rate = plan.rate.max(0.01);
        let duration = plan.count.map(|n| n as f64 / rate);
        let now = timestamp(plan.start);
        // A fixed-count run is the last seconds of traffic before now.
        let clock0 = now - duration.unwrap_or(0.0);
        let web = (0..WEB_SERVERS)
            .map(|_| {
                Ipv4Addr::new(
                    rng.random_range(23..=199),
                    rng.random(),
                    rng.random(),
                    rng.random_range(1..=254),
                )
            })
            .collect();
        let favourites = (0..CLIENTS)
            .map(|_| std::array::from_fn(|_| rng.random_range(0..WEB_SERVERS)))
            .collect();
        let mut g = Generator {
            favourites,
            clients: (0..CLIENTS)
                .map(|i| Ipv4Addr::new(10, 0, 0, 10 + i))
                .collect(),
            web,
            services: (0..SERVICE_SERVERS)
                .map(|i| Ipv4Addr::new(10, 0, 1, 10 + i))
                .collect(),
            session_gap: MEAN_SESSION_PACKETS / rate,
            next_session: clock0,
            clock0,
            rng,
            flows: Vec::new(),
            heads: BinaryHeap::new(),
            attacks: Vec::new(),
            plan,
        };
        g.attacks = g.schedule_attacks(duration);
        g
    }

    /// The next packet and its truth.
    pub fn next_packet(&mut self) -> (Packet, Truth) {
        loop {
            let head = self.heads.peek().map(|Reverse((t, _))| t.0);
            let attack_due = self
                .attacks
                .iter()
                .map(|a| a.next)
                .fold(f64::INFINITY, f64::min);
            if self.next_session <= head.unwrap_or(f64::INFINITY).min(attack_due) {
                self.start_session();
                continue;
            }
            if attack_due <= head.unwrap_or(f64::INFINITY) {
                self.attack_step();
                continue;
            }
            let Some(Reverse((_, i))) = self.heads.pop() else {
                continue;
            };
            let Some(due) = self.flows[i].packets.next() else {
                continue;
            };
            if let Some(next) = self.flows[i].packets.as_slice().first() {
                self.heads.push(Reverse((OrderedTime(next.time), i)));
            }
            return self.finish(due);
        }
    }

    /// Stamps a packet and turns some normal ones into giants or runts.
    fn finish(&mut self, mut due: Due) -> (Packet, Truth) {
        if due.truth == Truth::Normal && self.rng.random_bool(self.plan.anomaly_ratio) {
            due.packet.packet_size = if self.rng.random_bool(0.5) {
                self.rng.random_range(GIANT_SIZES)
            } else {
                self.rng.random_range(RUNT_SIZES)
            };
            due.truth = Truth::Size;
        }
        due.packet.timestamp = Some(datetime(due.time));
        (due.packet, due.truth)
    }

    fn add_flow(&mut self, packets: Vec<Due>) {
        if let Some(first) = packets.first() {
            let i = match self.flows.iter().position(|f| f.packets.len() == 0) {
                Some(free) => free,
                None => {
                    self.flows.push(Flow {
                        packets: Vec::new().into_iter(),
                    });
                    self.flows.len() - 1
                }
            };
            self.heads.push(Reverse((OrderedTime(first.time), i)));
            self.flows[i].packets = packets.into_iter();
        }
    }

    /// Starts the session due now and draws when the next one starts.
    fn start_session(&mut self) {
        let t = self.next_session;
        let gap: f64 = self.rng.random::<f64>().max(1e-12);
        self.next_session += -gap.ln() * self.session_gap;
        let who = self.rng.random_range(0..self.clients.len());
        let client = self.clients[who];
        let site = if self.rng.random_bool(NEW_SITE_SHARE) {
            self.rng.random_range(0..self.web.len())
        } else {
            self.favourites[who][self.rng.random_range(0..FAVOURITES)]
        };
        let protocol = self.plan.protocols[self.rng.random_range(0..self.plan.protocols.len())]
            .to_ascii_uppercase();
        let packets = match protocol.as_str() {
            "ICMP" | "ICMPV6" => self.ping(t, client, &protocol),
            "UDP" | "DNS" => self.exchange(t, client, &protocol, &[53]),
            "HTTP" | "HTTPS" | "TCP" | "SSH" => {
                self.tcp_session(t, client, self.web[site], &protocol)
            }
            _ => self.exchange(t, client, &protocol, &[22, 25, 3306, 8080]),
        };
        self.add_flow(packets);
    }

    fn packet(src: Ipv4Addr, dst: Ipv4Addr, size: u16, protocol: &str) -> Packet {
        Packet {
            seq: None,
            source_ip: IpAddr::V4(src),
            dest_ip: IpAddr::V4(dst),
            packet_size: size,
            protocol: protocol.to_string(),
            src_port: None,
            dst_port: None,
            timestamp: None,
            tcp_flags: None,
            icmp_type: None,
        }
    }

    /// A TCP connection: handshake, a few request/response rounds, teardown.
    fn tcp_session(
        &mut self,
        t0: f64,
        client: Ipv4Addr,
        site: Ipv4Addr,
        protocol: &str,
    ) -> Vec<Due> {
        let (server, port) = match protocol {
            "HTTP" => (site, 80),
            "HTTPS" => (site, 443),
            "SSH" => (
                self.services[self.rng.random_range(0..self.services.len())],
                22,
            ),
            _ => (
                self.services[self.rng.random_range(0..self.services.len())],
                [22, 25, 3306, 8080][self.rng.random_range(0..4)],
            ),
        };
        let sport = self.rng.random_range(EPHEMERAL);
        let rtt = self.rng.random_range(0.002..0.040);
        let mut s = Session::new(t0, client, server, sport, port, protocol);
        s.tcp(true, 64, tcp::SYN);
        s.after(rtt);
        s.tcp(false, 64, tcp::SYN | tcp::ACK);
        s.after(0.0005);
        s.tcp(true, 64, tcp::ACK);
        for _ in 0..self.rng.random_range(1..=3) {
            s.after(self.rng.random_range(0.001..0.3));
            let request = self.rng.random_range(100..=700);
            s.tcp(true, request, tcp::PSH | tcp::ACK);
            s.after(rtt);
            let answers = self.rng.random_range(1..=4);
            for k in 0..answers {
                let size = self.rng.random_range(300..=1500);
                let flags = if k + 1 == answers {
                    tcp::PSH | tcp::ACK
                } else {
                    tcp::ACK
                };
                s.tcp(false, size, flags);
                s.after(0.0008);
            }
            s.tcp(true, 64, tcp::ACK);
        }
        s.after(self.rng.random_range(0.001..0.5));
        s.tcp(true, 64, tcp::FIN | tcp::ACK);
        s.after(rtt);
        s.tcp(false, 64, tcp::FIN | tcp::ACK);
        s.after(0.0005);
        s.tcp(true, 64, tcp::ACK);
        s.packets
    }

    /// A request and its answer over UDP (or another datagram protocol).
    fn exchange(&mut self, t0: f64, client: Ipv4Addr, protocol: &str, ports: &[u16]) -> Vec<Due> {
        let port = ports[self.rng.random_range(0..ports.len())];
        let server = match port {
            53 => Ipv4Addr::new(10, 0, 0, 2 + self.rng.random_range(0..2)),
            123 => Ipv4Addr::new(10, 0, 0, 4),
            _ => self.services[self.rng.random_range(0..self.services.len())],
        };
        let sport = self.rng.random_range(EPHEMERAL);
        let mut s = Session::new(t0, client, server, sport, port, protocol);
        let (ask, answer) = match port {
            53 => (
                self.rng.random_range(60..=100),
                self.rng.random_range(80..=500),
            ),
            123 => (76, 76),
            _ => (
                self.rng.random_range(64..=600),
                self.rng.random_range(64..=1200),
            ),
        };
        s.datagram(true, ask);
        s.after(self.rng.random_range(0.001..0.030));
        s.datagram(false, answer);
        s.packets
    }

    /// A few echo requests and replies, a second apart.
    fn ping(&mut self, t0: f64, client: Ipv4Addr, protocol: &str) -> Vec<Due> {
        let target = if self.rng.random_bool(0.5) {
            self.services[self.rng.random_range(0..self.services.len())]
        } else {
            self.web[self.rng.random_range(0..self.web.len())]
        };
        let mut s = Session::new(t0, client, target, 0, 0, protocol);
        for _ in 0..self.rng.random_range(1..=3) {
            s.icmp(true, 84, 8);
            s.after(self.rng.random_range(0.002..0.05));
            s.icmp(false, 84, 0);
            s.after(1.0);
        }
        s.packets
    }

    /// When each attack of the scenario runs: once the network has been
    /// going for a while (60% into the run, and at least [`QUIET_START`]; a
    /// beacon from 5%), long enough for its packets to be about
    /// `attack_share` of the run (the share split evenly for `mixed`), ending
    /// by 98%; without a count, an episode starts [`QUIET_START`] in and
    /// repeats every 120 s.
    fn schedule_attacks(&mut self, duration: Option<f64>) -> Vec<Attack> {
        let Some(scenario) = self.plan.scenario else {
            return Vec::new();
        };
        let parts = scenario.parts();
        let share = self.plan.attack_share / parts.len() as f64;
        parts
            .into_iter()
            .enumerate()
            .map(|(i, kind)| {
                let (start, end, period) = match duration {
                    Some(d) => {
                        let packets = share * self.plan.rate * d / (1.0 - self.plan.attack_share);
                        let start = self.clock0
                            + match kind {
                                Scenario::Beacon => (d * BEACON_FROM).max(BEACON_QUIET),
                                _ => (d * (ATTACK_FROM + 0.02 * i as f64)).max(QUIET_START),
                            };
                        let end = (start + packets / kind.rate()).min(self.clock0 + 0.98 * d);
                        (start, end, None)
                    }
                    None => {
                        let start = self.clock0 + QUIET_START + 5.0 * i as f64;
                        (start, start + episode_length(kind), Some(EPISODE_PERIOD))
                    }
                };
                Attack {
                    kind,
                    start,
                    end,
                    period,
                    next: start,
                    step: 0,
                    attacker: Ipv4Addr::new(10, 0, 3, 66 + i as u8),
                    target: match kind {
                        Scenario::Synflood => self.web[0],
                        Scenario::Beacon => Ipv4Addr::new(198, 51, 100, 7),
                        Scenario::Portscan => Ipv4Addr::new(10, 0, 1, 10 + i as u8),
                        _ => self.services[0],
                    },
                }
            })
            .collect()
    }

    /// Emits the next piece of the attack that is due first.
    fn attack_step(&mut self) {
        let Some(i) = (0..self.attacks.len())
            .min_by(|&a, &b| self.attacks[a].next.total_cmp(&self.attacks[b].next))
        else {
            return;
        };
        let (kind, t, step) = (
            self.attacks[i].kind,
            self.attacks[i].next,
            self.attacks[i].step,
        );
        let (attacker, target) = (self.attacks[i].attacker, self.attacks[i].target);
        let (packets, gap) = match kind {
            Scenario::Portscan => (self.probe(t, attacker, target, step), 0.01),
            Scenario::Sweep => (self.sweep(t, attacker, step), 1.0 / 40.0),
            Scenario::Synflood => (self.flood(t, target), 1.0 / 300.0),
            Scenario::Bruteforce => (self.login(t, attacker, target), 0.1),
            Scenario::Beacon | Scenario::Mixed => {
                let jitter = self.rng.random_range(-0.04..0.04);
                (self.beacon(t, attacker, target, step), 2.0 + jitter)
            }
        };
        self.add_flow(packets);
        let a = &mut self.attacks[i];
        a.step += 1;
        a.next = t + gap;
        if a.next >= a.end {
            match a.period {
                Some(period) => {
                    a.start += period;
                    a.end += period;
                    a.next = a.start;
                }
                None => a.next = f64::INFINITY,
            }
        }
    }

    /// One SYN probe of a port scan and the target's answer.
    fn probe(&mut self, t: f64, attacker: Ipv4Addr, target: Ipv4Addr, step: u64) -> Vec<Due> {
        let port = (step % 1024) as u16 + 1;
        let protocol = crate::capture::frame::tcp_protocol_name(41_337, port);
        let mut s =
            Session::new(t, attacker, target, 41_337, port, protocol).attack(Scenario::Portscan);
        s.tcp(true, 64, tcp::SYN);
        s.after(0.0003);
        if self.rng.random_bool(0.08) {
            s.tcp(false, 64, tcp::SYN | tcp::ACK);
            s.after(0.0003);
            s.tcp(true, 64, tcp::RST);
        } else {
            s.tcp(false, 64, tcp::RST | tcp::ACK);
        }
        s.packets
    }

    /// One echo request of a host sweep, answered by one host in four.
    fn sweep(&mut self, t: f64, attacker: Ipv4Addr, step: u64) -> Vec<Due> {
        let target = Ipv4Addr::new(10, 0, 2, (step % 254) as u8 + 1);
        let mut s = Session::new(t, attacker, target, 0, 0, "ICMP").attack(Scenario::Sweep);
        s.icmp(true, 28, 8);
        if step % 4 == 0 {
            s.after(0.001);
            s.icmp(false, 28, 0);
        }
        s.packets
    }

    /// One spoofed SYN of a flood, answered now and then.
    fn flood(&mut self, t: f64, target: Ipv4Addr) -> Vec<Due> {
        let spoofed = Ipv4Addr::new(
            self.rng.random_range(1..=223),
            self.rng.random(),
            self.rng.random(),
            self.rng.random_range(1..=254),
        );
        let sport = self.rng.random_range(1024..=65535);
        let mut s = Session::new(t, spoofed, target, sport, 80, "HTTP").attack(Scenario::Synflood);
        s.tcp(true, 64, tcp::SYN);
        if self.rng.random_bool(0.3) {
            s.after(0.0002);
            s.tcp(false, 64, tcp::SYN | tcp::ACK);
        }
        s.packets
    }

    /// One failed SSH login: handshake, banners, key exchange, refusal, teardown.
    fn login(&mut self, t: f64, attacker: Ipv4Addr, target: Ipv4Addr) -> Vec<Due> {
        let sport = self.rng.random_range(EPHEMERAL);
        let mut s =
            Session::new(t, attacker, target, sport, 22, "TCP").attack(Scenario::Bruteforce);
        s.tcp(true, 64, tcp::SYN);
        s.after(0.0004);
        s.tcp(false, 64, tcp::SYN | tcp::ACK);
        s.after(0.0002);
        s.tcp(true, 64, tcp::ACK);
        for (client, size) in [
            (false, 93),
            (true, 93),
            (true, 1080),
            (false, 1024),
            (true, 108),
            (false, 560),
            (true, 100),
            (false, 84),
            (true, 180),
            (false, 84),
        ] {
            s.after(0.004);
            s.tcp(client, size, tcp::PSH | tcp::ACK);
        }
        s.after(0.002);
        s.tcp(true, 64, tcp::FIN | tcp::ACK);
        s.after(0.0004);
        s.tcp(false, 64, tcp::FIN | tcp::ACK);
        s.packets
    }

    /// One heartbeat of a C&C beacon over its one long connection.
    fn beacon(&mut self, t: f64, infected: Ipv4Addr, server: Ipv4Addr, step: u64) -> Vec<Due> {
        let mut s = Session::new(t, infected, server, 50_505, 8443, "TCP").attack(Scenario::Beacon);
        if step == 0 {
            s.tcp(true, 64, tcp::SYN);
            s.after(0.08);
            s.tcp(false, 64, tcp::SYN | tcp::ACK);
            s.after(0.0005);
            s.tcp(true, 64, tcp::ACK);
            s.after(0.01);
        }
        s.tcp(true, 112, tcp::PSH | tcp::ACK);
        s.after(0.08);
        s.tcp(false, 92, tcp::PSH | tcp::ACK);
        s.after(0.0005);
        s.tcp(true, 64, tcp::ACK);
        s.packets
    }
}

/// Seconds of normal traffic before an attack starts at the earliest.
const QUIET_START: f64 = 60.0;

/// Packet-time seconds a fixed-count run with a scenario must cover: its
/// attack starts after 60 seconds of ordinary traffic, at 60% of the run.
pub const SCENARIO_MIN_SECONDS: f64 = QUIET_START / ATTACK_FROM;

impl Plan {
    /// A plan with the client's defaults: the default protocols, 10% size
    /// anomalies, [`DEFAULT_RATE`], [`DEFAULT_ATTACK_SHARE`], ending now.
    pub fn new(count: Option<u64>, scenario: Option<Scenario>) -> Plan {
        Plan {
            protocols: ["TCP", "UDP", "ICMP", "HTTP", "HTTPS"]
                .map(String::from)
                .to_vec(),
            anomaly_ratio: 0.1,
            rate: DEFAULT_RATE,
            count,
            scenario,
            attack_share: DEFAULT_ATTACK_SHARE,
            start: Utc::now(),
        }
    }

    /// Checks that the run can hold its scenario: a fixed count must cover
    /// [`SCENARIO_MIN_SECONDS`] of packet time at the plan's rate.
    pub fn check(&self) -> Result<(), String> {
        let (Some(scenario), Some(count)) = (self.scenario, self.count) else {
            return Ok(());
        };
        let rate = self.rate.max(0.01);
        let seconds = count as f64 / rate;
        if seconds + 1e-9 < SCENARIO_MIN_SECONDS {
            let need = (SCENARIO_MIN_SECONDS * rate).ceil() as u64;
            return Err(format!(
                "--scenario {} needs at least {need} packets at {rate} packets/s of packet time \
                 ({SCENARIO_MIN_SECONDS:.0} s: the attack starts after {QUIET_START:.0} s of \
                 ordinary traffic, 60% into the run); --count {count} covers {seconds:.1} s: \
                 raise --count or lower --rate",
                scenario.name()
            ));
        }
        Ok(())
    }
}
/// Share of a fixed-count run before an attack starts.
const ATTACK_FROM: f64 = 0.6;
/// A beacon is slow (a heartbeat every two seconds) and is only told from
/// ordinary traffic by its regularity, which takes a few beats to show: it
/// starts this share into a fixed-count run, and at least [`BEACON_QUIET`]
/// seconds in.
const BEACON_FROM: f64 = 0.05;
const BEACON_QUIET: f64 = 10.0;

/// Without a count, an attack episode starts this often, seconds.
const EPISODE_PERIOD: f64 = 120.0;

/// How long one attack episode lasts without a count, seconds.
fn episode_length(kind: Scenario) -> f64 {
    match kind {
        Scenario::Beacon | Scenario::Mixed => 90.0,
        _ => 10.0,
    }
}

/// Packets of one flow being written, in time order.
struct Session {
    t: f64,
    client: Ipv4Addr,
    server: Ipv4Addr,
    client_port: u16,
    server_port: u16,
    protocol: String,
    truth: Truth,
    packets: Vec<Due>,
}

impl Session {
    fn new(
        t: f64,
        client: Ipv4Addr,
        server: Ipv4Addr,
        client_port: u16,
        server_port: u16,
        protocol: &str,
    ) -> Session {
        Session {
            t,
            client,
            server,
            client_port,
            server_port,
            protocol: protocol.to_string(),
            truth: Truth::Normal,
            packets: Vec::new(),
        }
    }

    fn attack(mut self, kind: Scenario) -> Session {
        self.truth = Truth::Attack(kind);
        self
    }

    fn after(&mut self, dt: f64) {
        self.t += dt;
    }

    fn push(&mut self, from_client: bool, size: u16) -> &mut Packet {
        let (src, dst) = if from_client {
            (self.client, self.server)
        } else {
            (self.server, self.client)
        };
        let size = size.clamp(*NORMAL_SIZES.start(), *NORMAL_SIZES.end());
        let packet = Generator::packet(src, dst, size, &self.protocol);
        self.packets.push(Due {
            time: self.t,
            packet,
            truth: self.truth,
        });
        &mut self.packets.last_mut().expect("just pushed").packet
    }

    fn ports(&self, from_client: bool) -> (Option<u16>, Option<u16>) {
        if from_client {
            (Some(self.client_port), Some(self.server_port))
        } else {
            (Some(self.server_port), Some(self.client_port))
        }
    }

    fn tcp(&mut self, from_client: bool, size: u16, flags: u8) {
        debug_assert!(size >= 64, "control packets are 64 bytes");
        let (sp, dp) = self.ports(from_client);
        let p = self.push(from_client, size);
        (p.src_port, p.dst_port, p.tcp_flags) = (sp, dp, Some(flags));
    }

    fn datagram(&mut self, from_client: bool, size: u16) {
        let (sp, dp) = self.ports(from_client);
        let p = self.push(from_client, size);
        (p.src_port, p.dst_port) = (sp, dp);
    }

    fn icmp(&mut self, from_client: bool, size: u16, kind: u8) {
        let p = self.push(from_client, size);
        p.icmp_type = Some(kind);
    }
}

/// Seconds since the Unix epoch.
fn timestamp(t: DateTime<Utc>) -> f64 {
    t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) * 1e-9
}

fn datetime(secs: f64) -> DateTime<Utc> {
    let whole = secs.floor();
    DateTime::<Utc>::from_timestamp(whole as i64, ((secs - whole) * 1e9) as u32).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(scenario: Option<Scenario>, ratio: f64) -> Plan {
        Plan {
            anomaly_ratio: ratio,
            start: DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap(),
            ..Plan::new(Some(20_000), scenario)
        }
    }

    #[test]
    fn normal_traffic_is_sessions_in_time_order_with_the_size_anomaly_ratio() {
        let mut g = Generator::new(plan(None, 0.1), 7);
        let n = 20_000;
        let (mut sizes, mut last) = (0, f64::MIN);
        let mut protocols = std::collections::HashSet::new();
        let mut syns = 0;
        for _ in 0..n {
            let (p, truth) = g.next_packet();
            let t = timestamp(p.timestamp.unwrap());
            assert!(t >= last - 1e-6, "packet time goes forward");
            last = t;
            protocols.insert(p.protocol.clone());
            match truth {
                Truth::Size => {
                    sizes += 1;
                    assert!(
                        RUNT_SIZES.contains(&p.packet_size) || GIANT_SIZES.contains(&p.packet_size)
                    );
                }
                Truth::Normal => assert!(NORMAL_SIZES.contains(&p.packet_size)),
                Truth::Attack(_) | Truth::Labelled => panic!("no scenario"),
            }
            match p.protocol.as_str() {
                "HTTP" => assert!(p.dst_port == Some(80) || p.src_port == Some(80)),
                "HTTPS" => assert!(p.dst_port == Some(443) || p.src_port == Some(443)),
                "ICMP" => assert!(p.icmp_type.is_some() && p.dst_port.is_none()),
                _ => {}
            }
            if p.tcp_flags == Some(tcp::SYN) {
                syns += 1;
            }
        }
        let ratio = sizes as f64 / n as f64;
        assert!((ratio - 0.1).abs() < 0.01, "ratio {ratio}");
        assert_eq!(protocols.len(), 5);
        assert!(syns > 100, "TCP sessions open with SYNs: {syns}");
        // A fixed-count run is the last seconds before its start time, at the rate.
        let span = 1_800_000_000.0
            - timestamp(
                Generator::new(plan(None, 0.1), 7)
                    .next_packet()
                    .0
                    .timestamp
                    .unwrap(),
            );
        assert!((span - n as f64 / DEFAULT_RATE).abs() < 5.0, "{span}");
    }

    #[test]
    fn each_scenario_injects_about_its_share_from_its_own_hosts() {
        for scenario in [
            Scenario::Portscan,
            Scenario::Sweep,
            Scenario::Synflood,
            Scenario::Bruteforce,
            Scenario::Beacon,
            Scenario::Mixed,
        ] {
            let mut g = Generator::new(plan(Some(scenario), 0.0), 3);
            let attack = (0..20_000)
                .filter(|_| matches!(g.next_packet().1, Truth::Attack(_)))
                .count();
            let share = attack as f64 / 20_000.0;
            let low = if scenario == Scenario::Beacon {
                0.004
            } else {
                0.02
            };
            assert!((low..0.08).contains(&share), "{scenario:?}: {share}");
        }
    }

    #[test]
    fn a_scenario_needs_a_run_long_enough_for_its_attack() {
        let mut p = plan(Some(Scenario::Portscan), 0.1);
        assert!(p.check().is_ok(), "20,000 packets at 200/s cover 100 s");
        p.count = Some(5000);
        let e = p.check().unwrap_err();
        assert!(
            e.contains("needs at least 20000 packets") && e.contains("25.0 s"),
            "{e}"
        );
        p.scenario = None;
        assert!(p.check().is_ok(), "no scenario, no minimum");
        p.scenario = Some(Scenario::Beacon);
        p.count = None;
        assert!(
            p.check().is_ok(),
            "a run without a count repeats its episodes"
        );
    }

    #[test]
    fn same_seed_same_traffic() {
        let mut a = Generator::new(plan(Some(Scenario::Mixed), 0.1), 1);
        let mut b = Generator::new(plan(Some(Scenario::Mixed), 0.1), 1);
        for _ in 0..2000 {
            assert_eq!(a.next_packet(), b.next_packet());
        }
    }

    #[test]
    fn ratio_zero_and_one() {
        let mut none = Generator::new(plan(None, 0.0), 1);
        assert!((0..1000).all(|_| none.next_packet().1 == Truth::Normal));
        let mut all = Generator::new(plan(None, 1.0), 1);
        assert!((0..1000).all(|_| all.next_packet().1 == Truth::Size));
    }
}
