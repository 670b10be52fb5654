//! The model lifecycle: the slot holding the model in use, the trainer thread
//! that trains when the worker asks (cold start, every `retrain_every`
//! packets) and picks up models trained elsewhere (`netsentinel retrain`), and
//! the training routine they share.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use postgres::GenericClient;

use crate::config::DetectorConfig;
use crate::model::Detector;
use crate::store::models::{self, ModelInfo};
use crate::store::{Pool, StoreError};

use super::shutdown::Shutdown;

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
