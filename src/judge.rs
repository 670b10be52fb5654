//! The judging path every packet takes, in the server's worker and in
//! `netsentinel eval-pcap` alike: context features ([`crate::context`]) →
//! score with the model in use → the row joins an in-memory training window →
//! at fixed packet counts ([`crate::schedule::packets_until_due`]) a new model is
//! trained from that window, and when the first model arrives the packets that
//! came before it are scored after all ("late").
//!
//! No I/O and no clock here: the same packets in the same order give the same
//! verdicts, bit for bit, at any replay speed. Models are numbered by whoever
//! stores them; until then a [`ModelHandle`] has no id.

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};

use crate::config::DetectorConfig;
use crate::context::{ContextConfig, Observation, Tracker, Usage};
use crate::detect::DetectError;
use crate::detector::Detector;
use crate::features::PacketFields;
use crate::protocol::Packet;
use crate::schedule::RetrainSchedule;

/// A model the judge uses: its detector and, once stored, its id.
#[derive(Debug)]
pub struct ModelHandle {
    /// The detector.
    pub detector: Arc<Detector>,
    id: OnceLock<i64>,
}

impl ModelHandle {
    /// A handle on a model not stored yet.
    pub fn new(detector: Arc<Detector>) -> ModelHandle {
        ModelHandle {
            detector,
            id: OnceLock::new(),
        }
    }

    /// A handle on a stored model.
    pub fn stored(detector: Arc<Detector>, id: i64) -> ModelHandle {
        let h = ModelHandle::new(detector);
        let _ = h.id.set(id);
        h
    }

    /// The stored model's id, once it has one.
    pub fn id(&self) -> Option<i64> {
        self.id.get().copied()
    }

    /// Records the id the store gave it (the first one wins).
    pub fn set_id(&self, id: i64) {
        let _ = self.id.set(id);
    }
}

/// One packet to judge.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The sender that reported it.
    pub sender: &'a str,
    /// The packet.
    pub packet: &'a Packet,
    /// Packet time, seconds since the Unix epoch.
    pub time: f64,
    /// The caller's name for it, given back with a late verdict.
    pub tag: u64,
}

/// A packet's verdict.
#[derive(Debug, Clone)]
pub struct Judged {
    /// Its score; `None` when no model existed yet.
    pub score: Option<f64>,
    /// Above the threshold.
    pub anomaly: bool,
    /// The model that judged it.
    pub model: Option<Arc<ModelHandle>>,
    /// Its full feature row, kept for flagged packets (to explain them later).
    pub features: Option<Vec<f32>>,
}

impl Judged {
    /// The verdict of a packet judged before any model existed.
    pub fn unscored() -> Judged {
        Judged {
            score: None,
            anomaly: false,
            model: None,
            features: None,
        }
    }
}

/// What the store says of a packet replayed from it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stored {
    /// It has a score.
    pub scored: bool,
    /// It was flagged.
    pub flagged: bool,
}

/// A verdict for a packet judged earlier without a model.
#[derive(Debug, Clone)]
pub struct Late {
    /// The tag it came with.
    pub tag: u64,
    /// Its verdict now.
    pub judged: Judged,
}

/// What one call to [`Judge::judge`] produced.
#[derive(Debug, Default)]
pub struct Outcome {
    /// One verdict per input, in order.
    pub verdicts: Vec<Judged>,
    /// Verdicts for earlier unscored packets (possibly some of this call's).
    pub late: Vec<Late>,
    /// Models trained during the call, oldest first.
    pub trained: Vec<Arc<ModelHandle>>,
}

/// A row of the training window.
#[derive(Debug, Clone)]
struct WindowPacket {
    size: u16,
    protocol: Arc<str>,
    dst_port: Option<u16>,
    /// Set while the packet waits for its first score.
    pending: Option<u64>,
    /// Flagged when it was judged.
    flagged: bool,
}

/// The newest `capacity` feature rows, oldest first.
struct Window {
    capacity: usize,
    packets: VecDeque<WindowPacket>,
    context: VecDeque<f64>,
    width: usize,
}

impl Window {
    fn push(&mut self, p: WindowPacket, context: &[f64]) {
        if self.packets.len() == self.capacity {
            self.packets.pop_front();
            self.context.drain(..self.width);
        }
        self.packets.push_back(p);
        self.context.extend(context);
    }

    /// A copy of the rows to train on (all, or without the flagged ones when
    /// `cfg.exclude_flagged`), with the share of them the threshold flags.
    fn training_set(&self, cfg: &DetectorConfig) -> TrainingSet {
        let clean = cfg.exclude_flagged;
        let mut packets = Vec::with_capacity(self.packets.len());
        let mut context = Vec::with_capacity(self.context.len());
        let mut flagged = 0usize;
        for (i, p) in self.packets.iter().enumerate() {
            flagged += usize::from(p.flagged);
            if clean && p.flagged {
                continue;
            }
            packets.push((p.size, Arc::clone(&p.protocol), p.dst_port));
            context.extend(self.context.range(i * self.width..(i + 1) * self.width));
        }
        let share = if clean {
            clean_share(
                cfg.contamination,
                flagged as f64 / self.packets.len().max(1) as f64,
            )
        } else {
            cfg.contamination
        };
        TrainingSet {
            packets,
            context,
            share,
        }
    }
}

/// The rows a model is trained on, owned (a copy of the window), so the
/// training can run on another thread while judging goes on.
struct TrainingSet {
    packets: Vec<(u16, Arc<str>, Option<u16>)>,
    context: Vec<f64>,
    share: f64,
}

impl TrainingSet {
    fn fit(&self, cfg: &DetectorConfig) -> Result<Detector, DetectError> {
        let fields: Vec<PacketFields<'_>> = self
            .packets
            .iter()
            .map(|(size, protocol, port)| PacketFields {
                packet_size: *size,
                protocol,
                dst_port: *port,
            })
            .collect();
        Detector::train(&fields, &self.context, cfg, self.share)
    }
}

/// A model being trained: where it comes into use.
struct Training {
    /// The packet count (in all) at which it judges the next packet.
    adopt_at: u64,
    /// The training thread, or the result of training at once.
    result: TrainingResult,
}

enum TrainingResult {
    Thread(std::thread::JoinHandle<Result<Detector, DetectError>>),
    Done(Box<Result<Detector, DetectError>>),
}

/// Windows of at least this many rows are trained on while judging goes on
/// (training takes tens of milliseconds), the model coming into use
/// [`ADOPT_AFTER`] packets later; smaller ones are trained at once.
const BACKGROUND_FROM: usize = 2048;
/// Packets judged by the old model while the new one trains: a fixed count,
/// so which model judges which packet never depends on timing.
pub const ADOPT_AFTER: u64 = 1024;

/// The least share of the clean training rows the threshold flags, as a
/// share of `contamination`: when the flagged packets already make up the
/// contamination, the threshold still sits a little inside the clean rows,
/// so a few anomalies missed earlier (and now among the clean rows) cannot
/// lift it over everything.
const LEAST_SHARE_OF_CONTAMINATION: f64 = 0.05;

/// The share of the clean rows a new model's threshold flags when `flagged`
/// of the window was flagged already: the contamination is the share of
/// traffic expected anomalous; what the window's flagged packets do not
/// account for is looked for among the rest.
pub fn clean_share(contamination: f64, flagged: f64) -> f64 {
    let rest = ((contamination - flagged) / (1.0 - flagged).max(f64::EPSILON)).max(0.0);
    rest.max(contamination * LEAST_SHARE_OF_CONTAMINATION)
}

/// The judging state of one process.
pub struct Judge {
    cfg: DetectorConfig,
    tracker: Tracker,
    window: Window,
    model: Option<Arc<ModelHandle>>,
    schedule: RetrainSchedule,
    protocols: Vec<Arc<str>>,
    /// After a training failed: no new try before this many packets in all.
    retry_at: u64,
    /// A model in training, and when it comes into use.
    training: Option<Training>,
    /// Train on another thread (the server) or at once (offline evaluation);
    /// verdicts are the same either way.
    background: bool,
}

/// Protocol names interned at most (beyond, each packet keeps its own copy).
const MAX_INTERNED: usize = 1024;

impl Judge {
    /// A judge with no history, no model, and `stored_total` packets counted.
    pub fn new(cfg: &DetectorConfig, stored_total: u64) -> Judge {
        let tracker = Tracker::new(&ContextConfig {
            half_lives: cfg.half_lives.clone(),
            max_streams: cfg.max_streams,
        });
        let width = tracker.width();
        Judge {
            cfg: cfg.clone(),
            tracker,
            window: Window {
                capacity: cfg.train_window.max(2),
                packets: VecDeque::new(),
                context: VecDeque::new(),
                width,
            },
            model: None,
            schedule: RetrainSchedule::new(stored_total),
            protocols: Vec::new(),
            retry_at: 0,
            training: None,
            background: false,
        }
    }

    /// Trains large models on another thread while judging goes on (the
    /// server's worker); the verdicts are those of [`Judge::new`]'s.
    pub fn in_background(mut self) -> Judge {
        self.background = true;
        self
    }

    /// The model in use.
    pub fn model(&self) -> Option<&Arc<ModelHandle>> {
        self.model.as_ref()
    }

    /// The context tables' size.
    pub fn usage(&self) -> Usage {
        self.tracker.usage()
    }

    /// Packets judged in all (including those counted at start).
    pub fn stored_total(&self) -> u64 {
        self.schedule.stored_total()
    }

    /// Packets waiting for their first score.
    pub fn pending(&self) -> usize {
        self.window
            .packets
            .iter()
            .filter(|p| p.pending.is_some())
            .count()
    }

    /// Judges `inputs` in order; see [`Outcome`].
    pub fn judge(&mut self, inputs: &[Input<'_>]) -> Result<Outcome, DetectError> {
        let width = self.tracker.width();
        let mut context = vec![0.0; inputs.len() * width];
        for (i, input) in inputs.iter().enumerate() {
            self.tracker.observe(
                &observation(input),
                &mut context[i * width..(i + 1) * width],
            );
        }
        let mut out = Outcome {
            verdicts: Vec::with_capacity(inputs.len()),
            ..Outcome::default()
        };
        let mut at = 0;
        loop {
            let until = self.until_due();
            if until == Some(0) {
                self.step(&mut out);
                continue;
            }
            if at == inputs.len() {
                return Ok(out);
            }
            let end = until.map_or(inputs.len(), |u| inputs.len().min(at + u as usize));
            self.judge_chunk(
                &inputs[at..end],
                &context[at * width..end * width],
                &mut out,
            );
            self.schedule.stored((end - at) as u64);
            at = end;
        }
    }

    /// Packets until the next training starts or a trained model comes
    /// into use (0: now; `None`: never).
    fn until_due(&self) -> Option<u64> {
        let total = self.schedule.stored_total();
        if let Some(t) = &self.training {
            return Some(t.adopt_at.saturating_sub(total));
        }
        if total < self.retry_at {
            return Some(self.retry_at - total);
        }
        let rows = self
            .model
            .as_ref()
            .map(|m| m.detector.training_rows() as u64);
        self.schedule.until_due(&self.cfg, rows)
    }

    /// Does what is due: puts a trained model in use, or starts a training.
    fn step(&mut self, out: &mut Outcome) {
        match self.training.take() {
            Some(t) => {
                let result = match t.result {
                    TrainingResult::Done(r) => *r,
                    TrainingResult::Thread(h) => h.join().unwrap_or_else(|_| {
                        Err(DetectError::InvalidModel(
                            "the training thread panicked".into(),
                        ))
                    }),
                };
                self.use_trained(result, out);
            }
            None => self.train(out),
        }
    }

    /// Takes in packets already judged elsewhere (the stored history, at
    /// start): their context is counted and their rows join the window, but
    /// no model is trained on the way; each packet's [`Stored`] says whether
    /// it was scored (else it still waits for its first score) and flagged.
    /// Then trains if a model is due.
    pub fn replay(
        &mut self,
        inputs: &[Input<'_>],
        stored: &[Stored],
    ) -> Result<Outcome, DetectError> {
        let width = self.tracker.width();
        let mut row = vec![0.0; width];
        for (input, s) in inputs.iter().zip(stored) {
            self.tracker.observe(&observation(input), &mut row);
            let pending = (!s.scored).then_some(input.tag);
            self.remember(input.packet, &row, pending, s.flagged);
        }
        self.schedule.stored(inputs.len() as u64);
        let mut out = Outcome::default();
        if self.until_due() == Some(0) {
            self.step(&mut out);
            self.finish_training(&mut out);
        }
        Ok(out)
    }

    /// Takes in packets for their context and the window only: no scores,
    /// no training, nothing pending (training from stored history); `flagged`
    /// says which were flagged when stored.
    pub fn replay_only(&mut self, inputs: &[Input<'_>], flagged: &[bool]) {
        let width = self.tracker.width();
        let mut row = vec![0.0; width];
        for (input, &f) in inputs.iter().zip(flagged) {
            self.tracker.observe(&observation(input), &mut row);
            self.remember(input.packet, &row, None, f);
        }
        self.schedule.stored(inputs.len() as u64);
    }

    /// Trains a model on the window now, whatever the schedule says
    /// (`netsentinel retrain`, the dashboard's Retrain); `None` when the
    /// window holds too little to train on.
    pub fn train_now(&mut self) -> Result<Arc<ModelHandle>, DetectError> {
        self.training = None;
        let detector = self.window.training_set(&self.cfg).fit(&self.cfg)?;
        Ok(self.put_in_use(detector))
    }

    /// Waits for a model in training and puts it in use now.
    pub fn finish_training(&mut self, out: &mut Outcome) {
        if self.training.is_some() {
            self.step(out);
        }
    }

    fn put_in_use(&mut self, detector: Detector) -> Arc<ModelHandle> {
        let model = Arc::new(ModelHandle::new(Arc::new(detector)));
        self.model = Some(Arc::clone(&model));
        self.schedule.model_changed();
        model
    }

    /// Puts a model trained elsewhere (a stored one, `netsentinel retrain`)
    /// in use; packets still waiting for a score get it now.
    pub fn adopt(&mut self, model: Arc<ModelHandle>) -> Outcome {
        let mut out = Outcome::default();
        self.training = None;
        self.model = Some(model);
        self.schedule.model_changed();
        self.score_pending(&mut out);
        out
    }

    fn judge_chunk(&mut self, inputs: &[Input<'_>], context: &[f64], out: &mut Outcome) {
        let width = self.tracker.width();
        let verdicts: Vec<Judged> = match &self.model {
            None => vec![Judged::unscored(); inputs.len()],
            Some(m) => {
                let fields: Vec<PacketFields<'_>> = inputs
                    .iter()
                    .map(|i| PacketFields::from(i.packet))
                    .collect();
                judged_by(m, &fields, context, width)
            }
        };
        for (i, (input, v)) in inputs.iter().zip(&verdicts).enumerate() {
            let pending = v.score.is_none().then_some(input.tag);
            self.remember(
                input.packet,
                &context[i * width..(i + 1) * width],
                pending,
                v.anomaly,
            );
        }
        out.verdicts.extend(verdicts);
    }

    fn remember(&mut self, p: &Packet, context: &[f64], pending: Option<u64>, flagged: bool) {
        let protocol = self.intern(&p.protocol);
        self.window.push(
            WindowPacket {
                size: p.packet_size,
                protocol,
                dst_port: p.dst_port,
                pending,
                flagged,
            },
            context,
        );
    }

    fn intern(&mut self, name: &str) -> Arc<str> {
        if let Some(p) = self.protocols.iter().find(|p| &***p == name) {
            return Arc::clone(p);
        }
        let p: Arc<str> = Arc::from(name);
        if self.protocols.len() < MAX_INTERNED {
            self.protocols.push(Arc::clone(&p));
        }
        p
    }

    /// Starts a training on the window. The first model, and any trained on
    /// a small window, is trained and put in use at once (scoring what
    /// waited); a later one trains while the old one judges the next
    /// [`ADOPT_AFTER`] packets (on another thread when `background`).
    fn train(&mut self, out: &mut Outcome) {
        let set = self.window.training_set(&self.cfg);
        let total = self.schedule.stored_total();
        if self.model.is_none() || set.packets.len() < BACKGROUND_FROM {
            let result = set.fit(&self.cfg);
            self.use_trained(result, out);
            return;
        }
        let result = if self.background {
            let cfg = self.cfg.clone();
            let spawned = std::thread::Builder::new()
                .name("training".into())
                .spawn(move || set.fit(&cfg));
            match spawned {
                Ok(h) => TrainingResult::Thread(h),
                Err(e) => TrainingResult::Done(Box::new(Err(DetectError::InvalidModel(format!(
                    "cannot start the training thread: {e}"
                ))))),
            }
        } else {
            TrainingResult::Done(Box::new(set.fit(&self.cfg)))
        };
        self.training = Some(Training {
            adopt_at: total + ADOPT_AFTER,
            result,
        });
    }

    /// Puts a freshly trained model in use and scores what waited; a failure
    /// (a window too small to train on) is logged and tried again after
    /// `min_train_packets` more packets, judging going on meanwhile.
    fn use_trained(&mut self, result: Result<Detector, DetectError>, out: &mut Outcome) {
        match result {
            Ok(detector) => {
                let model = self.put_in_use(detector);
                out.trained.push(model);
                self.score_pending(out);
            }
            Err(e) => {
                self.retry_at = self.schedule.stored_total() + self.cfg.min_train_packets.max(1);
                log::warn!(
                    "cannot train on the {} packets of the training window ({e}); trying again \
                     after {} more packets",
                    self.window.packets.len(),
                    self.cfg.min_train_packets
                );
            }
        }
    }

    /// Scores every window row still waiting for its first score.
    fn score_pending(&mut self, out: &mut Outcome) {
        let Some(m) = self.model.clone() else { return };
        let width = self.window.width;
        let at: Vec<usize> = (0..self.window.packets.len())
            .filter(|&i| self.window.packets[i].pending.is_some())
            .collect();
        if at.is_empty() {
            return;
        }
        let owned: Vec<WindowPacket> = at.iter().map(|&i| self.window.packets[i].clone()).collect();
        let fields: Vec<PacketFields<'_>> = owned
            .iter()
            .map(|p| PacketFields {
                packet_size: p.size,
                protocol: &p.protocol,
                dst_port: p.dst_port,
            })
            .collect();
        let mut values = Vec::with_capacity(at.len() * width);
        for &i in &at {
            values.extend(self.window.context.range(i * width..(i + 1) * width));
        }
        let judged = judged_by(&m, &fields, &values, width);
        for ((&i, judged), p) in at.iter().zip(judged).zip(&owned) {
            self.window.packets[i].pending = None;
            self.window.packets[i].flagged = judged.anomaly;
            out.late.push(Late {
                tag: p.pending.expect("filtered on pending"),
                judged,
            });
        }
    }
}

/// The verdicts of model `m` on `fields` with their `context` rows (each
/// `width` wide); a flagged packet keeps its feature row, to be explained.
fn judged_by(
    m: &Arc<ModelHandle>,
    fields: &[PacketFields<'_>],
    context: &[f64],
    width: usize,
) -> Vec<Judged> {
    let scores = m.detector.score(fields, context);
    scores
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let anomaly = m.detector.is_anomaly(s);
            let features = anomaly.then(|| {
                let row = m
                    .detector
                    .row(&fields[i], &context[i * width..(i + 1) * width]);
                row.iter().map(|v| *v as f32).collect()
            });
            Judged {
                score: Some(s),
                anomaly,
                model: Some(Arc::clone(m)),
                features,
            }
        })
        .collect()
}

fn observation<'a>(input: &Input<'a>) -> Observation<'a> {
    Observation::of(input.sender, input.packet, input.time)
}

/// A packet's time in seconds since the Unix epoch: its own timestamp, else `now`.
pub fn packet_time(p: &Packet, now: chrono::DateTime<chrono::Utc>) -> f64 {
    let t = p.timestamp.unwrap_or(now);
    t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) * 1e-9
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::generate::{Generator, Plan, Scenario};

    fn traffic(n: u64) -> Vec<Packet> {
        let mut g = Generator::new(Plan::new(Some(n), Some(Scenario::Portscan)), 5);
        (0..n).map(|_| g.next_packet().0).collect()
    }

    /// `packets` as inputs from one sender, tagged from `first`.
    fn inputs(packets: &[Packet], first: usize) -> Vec<Input<'_>> {
        let now = chrono::Utc::now();
        packets
            .iter()
            .enumerate()
            .map(|(i, p)| Input {
                sender: "s",
                packet: p,
                time: packet_time(p, now),
                tag: (first + i) as u64,
            })
            .collect()
    }

    /// Every packet's final (score, flag) after judging in batches of `batch`.
    fn verdicts(packets: &[Packet], batch: usize, background: bool) -> Vec<(Option<f64>, bool)> {
        let cfg = DetectorConfig {
            train_window: 3000,
            ..DetectorConfig::default()
        };
        let mut judge = Judge::new(&cfg, 0);
        if background {
            judge = judge.in_background();
        }
        let mut out = vec![(None, false); packets.len()];
        for (c, chunk) in packets.chunks(batch).enumerate() {
            let o = judge.judge(&inputs(chunk, c * batch)).unwrap();
            for (i, v) in o.verdicts.iter().enumerate() {
                out[c * batch + i] = (v.score, v.anomaly);
            }
            for l in o.late {
                out[l.tag as usize] = (l.judged.score, l.judged.anomaly);
            }
        }
        out
    }

    #[test]
    fn verdicts_do_not_depend_on_batches_or_on_training_in_the_background() {
        let packets = traffic(20_000);
        let one = verdicts(&packets, 1, false);
        assert!(
            one.iter().all(|(s, _)| s.is_some()),
            "every packet scored at last"
        );
        assert_eq!(one, verdicts(&packets, 997, false));
        assert_eq!(one, verdicts(&packets, 4096, true));
    }

    #[test]
    fn the_first_model_comes_at_min_train_packets_and_scores_what_came_before() {
        let packets = traffic(20_000);
        let cfg = DetectorConfig::default();
        let mut judge = Judge::new(&cfg, 0);
        let inputs = inputs(&packets[..60], 0);
        let o = judge.judge(&inputs[..49]).unwrap();
        assert!(o.verdicts.iter().all(|v| v.score.is_none()) && o.trained.is_empty());
        let o = judge.judge(&inputs[49..]).unwrap();
        assert_eq!(o.trained.len(), 1);
        assert_eq!(o.trained[0].detector.training_rows(), 50);
        assert_eq!(o.late.len(), 50, "the 49 before and the 50th itself");
        assert!(o.late.iter().all(|l| l.judged.score.is_some()));
        assert!(
            o.verdicts[0].score.is_none(),
            "the 50th was judged before its model"
        );
        assert!(o.verdicts[1..].iter().all(|v| v.score.is_some()));
    }
}
