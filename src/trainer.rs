//! The model lifecycle: the slot holding the model in use, the retrain policy
//! (when a new model is due, as a pure function of what was stored), the
//! trainer thread that trains when the worker asks and picks up models trained
//! elsewhere (`netsentinel retrain`), and the training routine they share with
//! the dashboard's Retrain button.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use postgres::GenericClient;

use crate::config::DetectorConfig;
use crate::detector::Detector;
use crate::store::models::{self, ModelInfo};
use crate::store::{Pool, StoreError};

use crate::shutdown::Shutdown;

/// How often the trainer looks for a model stored by another process.
const POLL_NEW_MODELS: Duration = Duration::from_secs(2);

/// A model in use: its row and its detector.
pub struct LiveModel {
    /// The `models` row.
    pub info: ModelInfo,
    /// The detector.
    pub detector: Arc<Detector>,
}

/// The model the worker uses now; swapped without stopping ingestion.
#[derive(Default)]
pub struct ModelSlot {
    current: RwLock<Option<Arc<LiveModel>>>,
    training: AtomicBool,
}

impl ModelSlot {
    /// The model in use, if any.
    pub fn current(&self) -> Option<Arc<LiveModel>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Puts `model` in use unless a newer one already is.
    pub fn publish(&self, model: LiveModel) {
        let mut slot = self.current.write().unwrap_or_else(|p| p.into_inner());
        if slot.as_ref().is_none_or(|m| m.info.id < model.info.id) {
            log::info!(
                "model {} in use: trained on {} packets, threshold {:.4}",
                model.info.id,
                model.info.training_rows,
                model.info.threshold
            );
            *slot = Some(Arc::new(model));
        }
    }

    /// True while a training runs in this process.
    pub fn is_training(&self) -> bool {
        self.training.load(Ordering::SeqCst)
    }

    /// Marks a training as running; false if one already was.
    pub fn begin_training(&self) -> bool {
        !self.training.swap(true, Ordering::SeqCst)
    }

    /// Marks the training as done.
    pub fn end_training(&self) {
        self.training.store(false, Ordering::SeqCst);
    }
}

/// The retrain policy: is a new model due, given the packets stored in all
/// (`stored_total`), the model in use and the packets stored since it?
///
/// The first model once `min_train_packets` are stored; a model trained on
/// less than a full `train_window` is replaced each time the stored packets
/// double (so models trained on the first few dozen packets do not judge for
/// long); then every `retrain_every` packets (0: never).
pub fn retrain_due(
    cfg: &DetectorConfig,
    stored_total: u64,
    model: Option<&ModelInfo>,
    since_model: u64,
) -> bool {
    match model {
        None => stored_total >= cfg.min_train_packets,
        Some(m) if (m.training_rows as u64) < cfg.train_window as u64 => {
            stored_total >= 2 * (m.training_rows.max(1) as u64)
        }
        Some(_) => cfg.retrain_every > 0 && since_model >= cfg.retrain_every,
    }
}

/// The worker's running count of stored packets, for [`retrain_due`].
#[derive(Debug, Clone, PartialEq)]
pub struct RetrainSchedule {
    stored_total: u64,
    since_model: u64,
    model_id: Option<i64>,
}

impl RetrainSchedule {
    /// A schedule for a table that already holds `stored_total` packets.
    pub fn new(stored_total: u64) -> RetrainSchedule {
        RetrainSchedule {
            stored_total,
            since_model: 0,
            model_id: None,
        }
    }

    /// `n` more packets were stored.
    pub fn stored(&mut self, n: u64) {
        self.stored_total += n;
        self.since_model += n;
    }

    /// True when a training should be asked for now. `current` is the model in
    /// use (a new one restarts the count); `training` says one is running, in
    /// which case nothing is asked and the count keeps running. Asking for a
    /// retrain of an existing model restarts the count, so the same request is
    /// not repeated every loop.
    pub fn should_request(
        &mut self,
        cfg: &DetectorConfig,
        current: Option<&ModelInfo>,
        training: bool,
    ) -> bool {
        let id = current.map(|m| m.id);
        if id != self.model_id {
            self.model_id = id;
            self.since_model = 0;
        }
        let due = retrain_due(cfg, self.stored_total, current, self.since_model);
        if !due || training {
            return false;
        }
        if current.is_some() {
            self.since_model = 0;
        }
        true
    }
}

/// Why a training did not produce a model.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Too little data yet.
    #[error("only {have} packets are stored; training needs at least {need} (detector.min_train_packets)")]
    NotEnoughPackets {
        /// Packets found.
        have: usize,
        /// Packets needed.
        need: u64,
    },
    /// The forest refused the data.
    #[error("training failed: {0}")]
    Detect(#[from] crate::detect::DetectError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another training is running in this process.
    #[error("a training is already running")]
    AlreadyRunning,
}

/// Trains on the newest `train_window` packets and stores the model.
pub fn train_and_store(
    c: &mut impl GenericClient,
    cfg: &DetectorConfig,
) -> Result<LiveModel, TrainError> {
    let started = Instant::now();
    let packets = models::training_packets(c, cfg.train_window)?;
    if (packets.len() as u64) < cfg.min_train_packets {
        return Err(TrainError::NotEnoughPackets {
            have: packets.len(),
            need: cfg.min_train_packets,
        });
    }
    let detector = Detector::train(&packets, cfg)?;
    let info = models::save(c, &detector)?;
    log::info!(
        "trained model {} on the newest {} packets in {} ms",
        info.id,
        packets.len(),
        started.elapsed().as_millis()
    );
    Ok(LiveModel {
        info,
        detector: Arc::new(detector),
    })
}

/// `netsentinel retrain`: connects to `url` (creating and migrating the
/// database if needed), trains on the newest stored packets and stores the
/// model; a running server picks it up.
pub fn retrain_stored(url: &str, cfg: &DetectorConfig) -> Result<LiveModel, TrainError> {
    let mut client = crate::store::connect(url)?;
    train_and_store(&mut client, cfg)
}

/// Loads the newest stored model, if any; a model that cannot be read is
/// logged and skipped (a new one will be trained).
pub fn load_newest(c: &mut impl GenericClient) -> Result<Option<LiveModel>, StoreError> {
    let Some(id) = models::newest_id(c)? else {
        return Ok(None);
    };
    match models::load(c, id) {
        Ok(Some((info, detector))) => Ok(Some(LiveModel {
            info,
            detector: Arc::new(detector),
        })),
        Ok(None) => Ok(None),
        Err(StoreError::Data(msg)) => {
            log::error!("ignoring stored model: {msg}; a new one will be trained");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The trainer thread's loop: train on request, poll for models stored by
/// others, stop at shutdown.
pub fn run(
    pool: Pool,
    cfg: DetectorConfig,
    slot: Arc<ModelSlot>,
    requests: Receiver<()>,
    shutdown: Shutdown,
) {
    let mut last_poll = Instant::now();
    while !shutdown.is_triggered() {
        match requests.recv_timeout(Duration::from_millis(200)) {
            Ok(()) => train_once(&pool, &cfg, &slot),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if last_poll.elapsed() >= POLL_NEW_MODELS {
            last_poll = Instant::now();
            pick_up_newer(&pool, &slot);
        }
    }
}

/// Trains now, stores and puts the model in use; one training at a time.
pub fn train_now(
    pool: &Pool,
    cfg: &DetectorConfig,
    slot: &ModelSlot,
) -> Result<ModelInfo, TrainError> {
    if !slot.begin_training() {
        return Err(TrainError::AlreadyRunning);
    }
    let result = pool
        .get()
        .map_err(StoreError::from)
        .map_err(TrainError::from)
        .and_then(|mut c| train_and_store(&mut *c, cfg));
    slot.end_training();
    let model = result?;
    let info = model.info.clone();
    slot.publish(model);
    Ok(info)
}

/// One training on the worker's request; problems are logged.
pub fn train_once(pool: &Pool, cfg: &DetectorConfig, slot: &ModelSlot) {
    match train_now(pool, cfg, slot) {
        Ok(_) | Err(TrainError::AlreadyRunning) => {}
        Err(TrainError::NotEnoughPackets { have, need }) => {
            log::debug!("not training yet: {have} of {need} packets")
        }
        Err(e) => log::error!("{e}; will try again later"),
    }
}

fn pick_up_newer(pool: &Pool, slot: &ModelSlot) {
    let current = slot.current().map(|m| m.info.id);
    let result =
        pool.get()
            .map_err(StoreError::from)
            .and_then(|mut c| match models::newest_id(&mut *c)? {
                Some(id) if Some(id) > current => load_newest(&mut *c),
                _ => Ok(None),
            });
    match result {
        Ok(Some(model)) => slot.publish(model),
        Ok(None) => {}
        Err(e) => log::debug!("cannot look for new models: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(id: i64, rows: i64) -> ModelInfo {
        ModelInfo {
            id,
            created_at: chrono::Utc::now(),
            training_rows: rows,
            threshold: 0.6,
            contamination: 0.1,
        }
    }

    fn cfg(min: u64, window: usize, every: u64) -> DetectorConfig {
        DetectorConfig {
            min_train_packets: min,
            train_window: window,
            retrain_every: every,
            ..DetectorConfig::default()
        }
    }

    #[test]
    fn first_model_at_min_train_packets() {
        let c = cfg(50, 1000, 100);
        assert!(!retrain_due(&c, 49, None, 49));
        assert!(retrain_due(&c, 50, None, 50));
    }

    #[test]
    fn a_small_model_is_replaced_each_time_the_store_doubles() {
        let c = cfg(50, 1000, 100_000);
        let m = model(1, 50);
        assert!(!retrain_due(&c, 99, Some(&m), 49));
        assert!(retrain_due(&c, 100, Some(&m), 50));
        let full = model(2, 1000);
        assert!(
            !retrain_due(&c, 5000, Some(&full), 10),
            "full window: retrain_every rules"
        );
    }

    #[test]
    fn full_models_every_retrain_every_and_zero_means_never() {
        let full = model(1, 1000);
        assert!(retrain_due(&cfg(50, 1000, 100), 10_000, Some(&full), 100));
        assert!(!retrain_due(&cfg(50, 1000, 100), 10_000, Some(&full), 99));
        assert!(!retrain_due(
            &cfg(50, 1000, 0),
            10_000_000,
            Some(&full),
            10_000_000
        ));
    }

    #[test]
    fn the_schedule_asks_once_waits_while_training_and_restarts_on_a_new_model() {
        let c = cfg(10, 100, 30);
        let mut s = RetrainSchedule::new(0);
        s.stored(9);
        assert!(!s.should_request(&c, None, false));
        s.stored(1);
        assert!(
            !s.should_request(&c, None, true),
            "not while a training runs"
        );
        assert!(s.should_request(&c, None, false));
        let full = model(1, 100);
        s.stored(29);
        assert!(
            !s.should_request(&c, Some(&full), false),
            "a new model restarts the count"
        );
        s.stored(30);
        assert!(s.should_request(&c, Some(&full), false));
        assert!(
            !s.should_request(&c, Some(&full), false),
            "asked once, not every loop"
        );
    }
}
