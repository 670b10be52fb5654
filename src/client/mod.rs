//! `netsentinel client`: sends generated or replayed traffic to the server and
//! reports how well the detector did against what it injected.
//!
//! - [`generate`]: seeded random traffic with injected anomalies;
//! - [`pcap`]: a capture file as packet records;
//! - [`session`]: pipelined sending, verdict reading, reconnect and resend;
//! - [`report`]: counts against the truth, text and JSON reports.

pub mod generate;
pub mod menu;
pub mod pcap;
pub mod report;
pub mod session;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use generate::Generator;
use report::Report;
use session::{Session, SessionError};

/// Packets in flight (sent, no verdict yet) at most.
pub const DEFAULT_WINDOW: usize = 2_000;
/// How long to keep trying to reach the server before giving up.
pub const RECONNECT_BUDGET: Duration = Duration::from_secs(60);
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
}

/// Why a client run failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The capture or labels file is unusable from the start.
    #[error(transparent)]
    Input(#[from] pcap::PcapFileError),
    /// Labels do not match the capture.
    #[error(
        "{labels}: {got} labels for {frames} frames in {capture}; give one 0/1 per frame, in order"
    )]
    LabelCount {
        /// Labels file.
        labels: PathBuf,
        /// Capture file.
        capture: PathBuf,
        /// Labels read.
        got: usize,
        /// Frames in the capture.
        frames: usize,
    },
}

/// A finished run: the report, and a problem with the input found part-way
/// (a truncated capture) after the packets before it were sent.
pub struct Outcome {
    /// The report.
    pub report: Report,
    /// The input problem, if any.
    pub input_error: Option<pcap::PcapFileError>,
}

/// The first `seq` of this run: the clock in nanoseconds, so a sender name can
/// be reused by later runs and its seqs keep increasing.
fn first_seq() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}

/// Runs the client until the mode is done or `stop` is set (Ctrl-C).
pub fn run(opts: &ClientOptions, stop: Arc<AtomicBool>) -> Result<Outcome, ClientError> {
    // Read the capture first: a bad file should fail before connecting.
    let capture = match &opts.mode {
        Mode::Pcap { file, labels, .. } => {
            let cap = pcap::read_capture(file)?;
            let labels = match labels {
                Some(path) => {
                    let l = pcap::read_labels(path)?;
                    let frames = cap.frames.len();
                    if l.len() != frames && cap.error.is_none() {
                        return Err(ClientError::LabelCount {
                            labels: path.clone(),
                            capture: file.clone(),
                            got: l.len(),
                            frames,
                        });
                    }
                    Some(l)
                }
                None => None,
            };
            Some((cap, labels))
        }
        _ => None,
    };

    let bar = progress_bar(opts, capture.as_ref().map(|(c, _)| c.frames.len() as u64));
    let printer: Box<dyn Fn(String) + Send + Sync> = {
        let bar = bar.clone();
        Box::new(move |line| bar.println(line))
    };
    let mut session = Session::connect(
        &opts.server,
        &opts.name,
        opts.window,
        RECONNECT_BUDGET,
        opts.verbose,
        printer,
        Arc::clone(&stop),
    )?;
    log::info!("client {} connected to {}", opts.name, opts.server);

    let started = Instant::now();
    let mut seq = first_seq();
    let mut skipped = 0u64;
    let mut input_error = None;
    let truth_known;
    let interval = opts.pacing.interval();
    let mut next_due = Instant::now();
    let mut last_status = Instant::now();
    let mut pace = |bar: &ProgressBar, session: &Session| {
        if let Some(step) = interval {
            next_due += step;
            if let Some(wait) = next_due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            } else if Instant::now() - next_due > Duration::from_secs(1) {
                // Far behind (e.g. a reconnect): do not burst to catch up.
                next_due = Instant::now();
            }
        }
        bar.inc(1);
        if matches!(opts.mode, Mode::Continuous)
            && opts.progress
            && last_status.elapsed() >= Duration::from_secs(1)
        {
            last_status = Instant::now();
            let t = session.tally();
            bar.set_message(format!(
                "sent {} acked {} flagged {} in flight {}",
                t.sent,
                t.acked,
                t.flagged,
                session.in_flight()
            ));
        }
    };

    match &capture {
        None => {
            truth_known = true;
            let mut generator = Generator::new(&opts.protocols, opts.anomaly_ratio, opts.seed);
            let limit = match opts.mode {
                Mode::Count(n) => Some(n),
                _ => None,
            };
            let mut sent = 0u64;
            while limit.is_none_or(|n| sent < n) && !stop.load(Ordering::SeqCst) {
                let (record, injected) = generator.next_packet();
                session.send(seq, record.to_line(seq), Some(injected))?;
                seq += 1;
                sent += 1;
                pace(&bar, &session);
            }
        }
        Some((cap, labels)) => {
            truth_known = labels.is_some();
            let speed = match &opts.mode {
                Mode::Pcap { speed, .. } => *speed,
                _ => None,
            };
            let first_time = cap.frames.first().map(|f| f.time).unwrap_or_default();
            for frame in &cap.frames {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Some(record) = &frame.packet else {
                    skipped += 1;
                    bar.inc(1);
                    continue;
                };
                if let Some(x) = speed {
                    let due = started + frame.time.saturating_sub(first_time).div_f64(x);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
                let truth = labels.as_ref().and_then(|l| l.get(frame.index).copied());
                session.send(seq, record.to_line(seq), truth)?;
                seq += 1;
                pace(&bar, &session);
            }
            if let Some(e) = &cap.error {
                input_error = Some(e.clone());
            }
        }
    }
    if stop.load(Ordering::SeqCst) {
        bar.println(format!(
            "stopping: waiting for the verdicts of {} packets in flight",
            session.in_flight()
        ));
    }
    let missing = session.drain(DRAIN_TIMEOUT)?;
    if missing > 0 {
        log::warn!(
            "{missing} packets got no verdict within {} s",
            DRAIN_TIMEOUT.as_secs()
        );
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let tally = session.close();
    Ok(Outcome {
        report: Report::new(&opts.name, tally, truth_known, skipped, seconds),
        input_error,
    })
}

fn progress_bar(opts: &ClientOptions, frames: Option<u64>) -> ProgressBar {
    if !opts.progress {
        return ProgressBar::hidden();
    }
    let length = match &opts.mode {
        Mode::Count(n) => Some(*n),
        Mode::Pcap { .. } => frames,
        Mode::Continuous => None,
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
