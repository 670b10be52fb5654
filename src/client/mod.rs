//! `netsentinel client`: sends generated or replayed traffic to the server and
//! reports how well the detector did against what it injected.
//!
//! - [`feed`]: where records come from (generator, capture file or live
//!   interface), with the truth;
//! - [`generate`]: a seeded simulated network with injected anomalies and
//!   attacks (captures are read by [`crate::capture`]);
//! - [`session`]: pipelined sending, verdict reading, reconnect and resend;
//! - [`report`]: counts against the truth, text and JSON reports.

pub mod feed;
pub mod generate;
pub mod menu;
pub mod report;
pub mod session;
pub mod tls;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use feed::{Feed, Next};
use report::Report;
use session::{Session, SessionError};

/// Packets in flight (sent, no verdict yet) at most.
pub const DEFAULT_WINDOW: usize = 2_000;
/// How long to keep trying to reach the server before giving up.
pub const RECONNECT_BUDGET: Duration = Duration::from_secs(60);

/// How long the first connection may take to find a listening server (and
/// get a slot) before the client says so; `--wait` gives it
/// [`RECONNECT_BUDGET`].
pub const FIRST_CONNECT_BUDGET: Duration = Duration::from_secs(2);
/// How long to wait for the last verdicts after the last packet.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

/// What to send.
#[derive(Debug, Clone)]
pub enum Mode {
    /// A fixed number of generated packets.
    Count(u64),
    /// Generated packets until stopped.
    Continuous,
    /// Replay of a capture file.
    Pcap {
        /// The capture.
        file: PathBuf,
        /// One 0/1 per frame, for scoring the detector.
        labels: Option<PathBuf>,
        /// Replay at this multiple of the captured pacing; `None`: as fast as possible.
        speed: Option<f64>,
    },
    /// Live capture from an interface.
    Live(crate::capture::live::LiveOptions),
}

/// How fast to send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// As fast as the window allows.
    Fastest,
    /// This many packets per second.
    Rate(f64),
    /// This pause between packets.
    Delay(Duration),
}

impl Pacing {
    fn interval(self) -> Option<Duration> {
        match self {
            Pacing::Fastest => None,
            Pacing::Rate(r) => Some(Duration::from_secs_f64(1.0 / r)),
            Pacing::Delay(d) => Some(d),
        }
    }
}

/// Everything a client run needs.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Sender name.
    pub name: String,
    /// Server host:port.
    pub server: String,
    /// What to send.
    pub mode: Mode,
    /// How fast.
    pub pacing: Pacing,
    /// Share of injected anomalies (generated traffic).
    pub anomaly_ratio: f64,
    /// A behavioural attack to inject beside them.
    pub scenario: Option<generate::Scenario>,
    /// Share of packets the attack aims at.
    pub attack_share: f64,
    /// Generator seed.
    pub seed: u64,
    /// Protocols to generate.
    pub protocols: Vec<String>,
    /// Print each flagged packet.
    pub verbose: bool,
    /// Show a progress bar / status line.
    pub progress: bool,
    /// Packets in flight at most.
    pub window: usize,
    /// Keep trying the first connection for [`RECONNECT_BUDGET`] (`--wait`).
    pub wait: bool,
    /// The report goes to stdout as JSON (flagged lines then go to stderr).
    pub json: bool,
    /// The sender's token (`--token`), when the server registers senders.
    pub token: Option<String>,
    /// TLS to the server (`--tls-ca FILE` or `--tls`).
    pub tls: Option<tls::TlsClient>,
}

/// Why a client run failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The command line asks for something impossible.
    #[error("{0}")]
    Usage(String),
    /// The interactive menu could not read an answer.
    #[error("cannot read the answer: {0}")]
    Terminal(std::io::Error),
    /// The signal handler could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    /// The capture broke part-way, after the packets before the problem were sent.
    #[error("{0} (the packets before it were sent)")]
    InputAfterSending(crate::capture::PcapFileError),
    /// Some packets got no verdict.
    #[error("{missing} of {sent} packets got no verdict")]
    Incomplete {
        /// Packets without a verdict.
        missing: u64,
        /// Packets sent.
        sent: u64,
    },
    /// The capture or labels file is unusable from the start.
    #[error(transparent)]
    Input(#[from] crate::capture::PcapFileError),
    /// A labels file that fits neither form of its capture.
    #[error(transparent)]
    Labels(#[from] crate::capture::LabelMismatch),
    /// Live capture could not start, or failed part-way.
    #[error(transparent)]
    Capture(#[from] crate::capture::live::LiveError),
}

/// A finished run: the report, and a problem with the input found part-way
/// (a truncated capture) after the packets before it were sent.
pub struct Outcome {
    /// The report.
    pub report: Report,
    /// The input problem, if any.
    pub input_error: Option<crate::capture::PcapFileError>,
    /// The failure that ended a live capture early, if any.
    pub capture_error: Option<crate::capture::live::LiveError>,
}

/// Runs the client until the mode is done or `stop` is set (Ctrl-C).
pub fn run(opts: &ClientOptions, stop: Arc<AtomicBool>) -> Result<Outcome, ClientError> {
    // Read the capture first: a bad file should fail before connecting.
    let mut feed = Feed::open(opts, &stop)?;
    let bar = progress_bar(opts, feed.len());
    let printer: Box<dyn Fn(String) + Send + Sync> = {
        let bar = bar.clone();
        let json = opts.json;
        // A hidden bar prints nothing: without a terminal the lines go
        // straight out (to stderr when stdout carries the JSON report).
        Box::new(move |line| {
            if !bar.is_hidden() {
                bar.println(line);
            } else if json {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
        })
    };
    let first_budget = if opts.wait {
        RECONNECT_BUDGET
    } else {
        FIRST_CONNECT_BUDGET
    };
    let connected = Session::connect(
        &opts.server,
        &opts.name,
        opts.token.as_deref(),
        opts.tls.clone(),
        opts.window,
        first_budget,
        RECONNECT_BUDGET,
        opts.verbose,
        printer,
        Arc::clone(&stop),
    );
    let mut session = match connected {
        Ok(s) => s,
        Err(SessionError::Stopped { addr }) => {
            // Ctrl-C before the server took us: an empty report, at once.
            bar.finish_and_clear();
            log::warn!("stopped before {addr} took this sender; nothing was sent");
            let (capture, capture_error) = feed.finish();
            let mut report = Report::new(&opts.name, Default::default(), false, 0, 0.0);
            report.capture = capture;
            return Ok(Outcome {
                report,
                input_error: None,
                capture_error,
            });
        }
        Err(e) => return Err(e.into()),
    };
    log::info!("client {} connected to {}", opts.name, opts.server);

    let started = Instant::now();
    let speed = match &opts.mode {
        Mode::Pcap { speed, .. } => *speed,
        _ => None,
    };
    let mut pacer = Pacer::new(opts.pacing.interval());
    let mut status = StatusLine::new(opts);
    let mut seq = session.next_seq();
    let mut skipped = 0u64;
    while !(stop.load(Ordering::SeqCst) && feed.stops_at_once()) {
        let (packet, truth, offset) = match feed.next_item() {
            None => break,
            Some(Next::Skipped) => {
                skipped += 1;
                bar.inc(1);
                continue;
            }
            Some(Next::Idle) => {
                status.update(&bar, &session, &feed);
                continue;
            }
            Some(Next::Packet {
                packet,
                truth,
                offset,
            }) => (packet, truth, offset),
        };
        if let (Some(x), Some(offset)) = (speed, offset) {
            sleep_until(started + offset.div_f64(x));
        }
        match session.send(seq, packet.to_line(seq), truth) {
            Err(SessionError::Stopped { .. }) => break,
            r => r?,
        }
        seq += 1;
        pacer.pace();
        bar.inc(1);
        status.update(&bar, &session, &feed);
    }
    if stop.load(Ordering::SeqCst) {
        bar.println(format!(
            "stopping: waiting for the verdicts of {} packets in flight",
            session.in_flight()
        ));
    }
    let missing = match session.drain(DRAIN_TIMEOUT) {
        Err(SessionError::Stopped { .. }) => session.in_flight(),
        r => r?,
    };
    if missing > 0 {
        log::warn!(
            "{missing} packets got no verdict within {} s",
            DRAIN_TIMEOUT.as_secs()
        );
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let tally = session.close();
    let mut report = Report::new(&opts.name, tally, feed.truth_known(), skipped, seconds);
    let input_error = feed.input_error();
    let (capture, capture_error) = feed.finish();
    report.capture = capture;
    Ok(Outcome {
        report,
        input_error,
        capture_error,
    })
}

fn sleep_until(due: Instant) {
    if let Some(wait) = due.checked_duration_since(Instant::now()) {
        std::thread::sleep(wait);
    }
}

/// Keeps a steady rate: each packet is due one interval after the last.
struct Pacer {
    interval: Option<Duration>,
    next_due: Instant,
}

impl Pacer {
    fn new(interval: Option<Duration>) -> Pacer {
        Pacer {
            interval,
            next_due: Instant::now(),
        }
    }

    /// Waits until the next packet is due.
    fn pace(&mut self) {
        let Some(step) = self.interval else { return };
        self.next_due += step;
        let now = Instant::now();
        if self.next_due > now {
            std::thread::sleep(self.next_due - now);
        } else if now - self.next_due > Duration::from_secs(1) {
            // Far behind (e.g. a reconnect): do not burst to catch up.
            self.next_due = now;
        }
    }
}

/// The once-a-second status message of a continuous run.
struct StatusLine {
    enabled: bool,
    last: Instant,
}

impl StatusLine {
    fn new(opts: &ClientOptions) -> StatusLine {
        StatusLine {
            enabled: matches!(opts.mode, Mode::Continuous | Mode::Live(_)) && opts.progress,
            last: Instant::now(),
        }
    }

    fn update(&mut self, bar: &ProgressBar, session: &Session, feed: &Feed) {
        if !self.enabled || self.last.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.last = Instant::now();
        let t = session.tally();
        let captured = match feed.capture_counts() {
            Some(c) => format!(
                "captured {} dropped {} (client {}, kernel {}, interface {}) ",
                c.captured,
                c.dropped_by_client + c.dropped_by_kernel + c.dropped_by_interface,
                c.dropped_by_client,
                c.dropped_by_kernel,
                c.dropped_by_interface
            ),
            None => String::new(),
        };
        bar.set_message(format!(
            "{captured}sent {} acked {} flagged {} in flight {}",
            t.sent,
            t.acked,
            t.flagged,
            session.in_flight()
        ));
    }
}

/// Runs the client with Ctrl-C/SIGTERM stopping it gracefully, prints the
/// report (one JSON object when `json`), and fails when the capture broke
/// part-way or some packets got no verdict.
pub fn run_and_report(opts: &ClientOptions, json: bool) -> Result<(), ClientError> {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        crate::shutdown::on_signals(
            "stopping: waiting for the verdicts of the packets in flight",
            move || stop.store(true, Ordering::SeqCst),
        )
        .map_err(ClientError::Signals)?;
    }
    let outcome = run(opts, stop)?;
    if json {
        println!("{}", outcome.report.to_json());
    } else {
        print!("{}", outcome.report.to_text());
    }
    if let Some(e) = outcome.input_error {
        return Err(ClientError::InputAfterSending(e));
    }
    if let Some(e) = outcome.capture_error {
        return Err(ClientError::Capture(e));
    }
    if !outcome.report.complete() {
        return Err(ClientError::Incomplete {
            missing: outcome.report.sent.saturating_sub(outcome.report.acked),
            sent: outcome.report.sent,
        });
    }
    Ok(())
}

fn progress_bar(opts: &ClientOptions, frames: Option<u64>) -> ProgressBar {
    if !opts.progress {
        return ProgressBar::hidden();
    }
    let length = match &opts.mode {
        Mode::Count(n) => Some(*n),
        Mode::Pcap { .. } => frames,
        Mode::Continuous | Mode::Live(_) => None,
    };
    let bar = match length {
        Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {per_sec} ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        ),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{prefix} {spinner} {pos} sent, {per_sec} — {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.set_prefix(opts.name.clone());
    if length.is_none() {
        bar.enable_steady_tick(Duration::from_millis(250));
    }
    bar
}
