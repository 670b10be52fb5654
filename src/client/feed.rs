//! Where a client's records come from: the generator, a capture file or a
//! live interface, as one stream of [`Next`] items, each with the truth the
//! client keeps (never sent) and, for capture files, the packet's offset in
//! capture time.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use crate::protocol::Packet;

use super::generate::{Generator, Plan, Truth};
use super::{ClientError, ClientOptions, Mode};
use crate::capture::live::{CaptureCounts, LiveCapture, LiveError, LiveNext};
use crate::capture::{Capture, PcapFileError};

/// How long a live feed waits for a frame before the client looks around
/// (Ctrl-C, the status line).
const LIVE_WAIT: Duration = Duration::from_millis(100);

/// The next thing a feed yields.
pub enum Next {
    /// A record to send.
    Packet {
        /// The record.
        packet: Packet,
        /// What it really is, when known.
        truth: Option<Truth>,
        /// Capture time since the first frame (captures only).
        offset: Option<Duration>,
    },
    /// A capture frame without a record (counted, not sent).
    Skipped,
    /// Nothing yet (live capture): ask again.
    Idle,
}

/// The records of one run.
pub enum Feed {
    /// Generated traffic, up to `limit` packets (`None`: until stopped).
    Generated {
        /// The generator (boxed: its RNG state is large).
        generator: Box<Generator>,
        /// How many at most.
        limit: Option<u64>,
        /// How many so far.
        made: u64,
    },
    /// A capture read into memory, with its labels.
    Capture {
        /// The frames.
        capture: Capture,
        /// Each frame's truth, when labels were given.
        labels: Option<Vec<bool>>,
        /// The next frame.
        at: usize,
    },
    /// Frames captured live from an interface (ends by itself on Ctrl-C,
    /// `--count` or `--duration`, after handing over what it buffered).
    Live(LiveCapture),
}

impl Feed {
    /// The feed `opts` asks for; a capture and its labels are read (and
    /// checked against each other) here, before anything connects.
    pub fn open(opts: &ClientOptions, stop: &Arc<AtomicBool>) -> Result<Feed, ClientError> {
        let limit = match &opts.mode {
            Mode::Count(n) => Some(*n),
            Mode::Continuous => None,
            Mode::Live(live) => {
                return Ok(Feed::Live(LiveCapture::start(live, Arc::clone(stop))?));
            }
            Mode::Pcap { file, labels, .. } => {
                let capture = crate::capture::read_capture(file)?;
                let labels = match labels {
                    Some(path) => Some(read_matching_labels(path, file, &capture)?),
                    None => None,
                };
                return Ok(Feed::Capture {
                    capture,
                    labels,
                    at: 0,
                });
            }
        };
        let rate = match opts.pacing {
            super::Pacing::Rate(r) => r,
            super::Pacing::Delay(d) if !d.is_zero() => 1.0 / d.as_secs_f64(),
            _ => super::generate::DEFAULT_RATE,
        };
        let plan = Plan {
            protocols: opts.protocols.clone(),
            anomaly_ratio: opts.anomaly_ratio,
            rate,
            count: limit,
            scenario: opts.scenario,
            attack_share: opts.attack_share,
            start: chrono::Utc::now(),
        };
        plan.check().map_err(ClientError::Usage)?;
        Ok(Feed::Generated {
            generator: Box::new(Generator::new(plan, opts.seed)),
            limit,
            made: 0,
        })
    }

    /// How many items the feed holds, when known.
    pub fn len(&self) -> Option<u64> {
        match self {
            Feed::Generated { limit, .. } => *limit,
            Feed::Capture { capture, .. } => Some(capture.frames.len() as u64),
            Feed::Live(_) => None,
        }
    }

    /// True when the feed yields nothing at all.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// True when every record comes with its truth (generated, or labelled).
    pub fn truth_known(&self) -> bool {
        match self {
            Feed::Generated { .. } => true,
            Feed::Capture { labels, .. } => labels.is_some(),
            Feed::Live(_) => false,
        }
    }

    /// False for a live capture, which sees Ctrl-C itself and ends after
    /// handing over what it already captured; other feeds stop at once.
    pub fn stops_at_once(&self) -> bool {
        !matches!(self, Feed::Live(_))
    }

    /// The live capture's counters so far.
    pub fn capture_counts(&self) -> Option<CaptureCounts> {
        match self {
            Feed::Live(live) => Some(live.counts()),
            _ => None,
        }
    }

    /// Ends the feed: a live capture's final counters and the failure that
    /// ended it early, if any.
    pub fn finish(self) -> (Option<CaptureCounts>, Option<LiveError>) {
        match self {
            Feed::Live(live) => {
                let (counts, failure) = live.finish();
                (Some(counts), failure)
            }
            _ => (None, None),
        }
    }

    /// The capture's problem part-way (the frames before it were yielded).
    pub fn input_error(&self) -> Option<PcapFileError> {
        match self {
            Feed::Capture { capture, .. } => capture.error.clone(),
            Feed::Generated { .. } | Feed::Live(_) => None,
        }
    }

    /// The next item; `None` when the feed is done.
    pub fn next_item(&mut self) -> Option<Next> {
        match self {
            Feed::Generated {
                generator,
                limit,
                made,
            } => {
                if limit.is_some_and(|n| *made >= n) {
                    return None;
                }
                *made += 1;
                let (packet, truth) = generator.next_packet();
                Some(Next::Packet {
                    packet,
                    truth: Some(truth),
                    offset: None,
                })
            }
            Feed::Capture {
                capture,
                labels,
                at,
            } => {
                let first = capture.frames.first().map(|f| f.time).unwrap_or_default();
                let frame = capture.frames.get(*at)?;
                *at += 1;
                let Some(packet) = &frame.packet else {
                    return Some(Next::Skipped);
                };
                Some(Next::Packet {
                    packet: packet.clone(),
                    truth: labels
                        .as_ref()
                        .and_then(|l| l.get(frame.index).copied())
                        .map(|anomaly| {
                            if anomaly {
                                Truth::Labelled
                            } else {
                                Truth::Normal
                            }
                        }),
                    offset: Some(frame.time.saturating_sub(first)),
                })
            }
            Feed::Live(live) => match live.next(LIVE_WAIT) {
                LiveNext::Record(packet) => Some(Next::Packet {
                    packet: *packet,
                    truth: None,
                    offset: None,
                }),
                LiveNext::Idle => Some(Next::Idle),
                LiveNext::Done => None,
            },
        }
    }
}

/// Reads a labels file and matches it to the frames of `capture` (one label
/// per frame, or one per IP packet).
fn read_matching_labels(
    path: &std::path::Path,
    file: &std::path::Path,
    capture: &Capture,
) -> Result<Vec<bool>, ClientError> {
    let labels = crate::capture::read_labels(path)?;
    let (truth, form) = crate::capture::frame_truth(&labels, capture, path, file)?;
    log::debug!("{}: labels counted {:?}", path.display(), form);
    Ok(truth)
}
