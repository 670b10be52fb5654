//! Models outside the worker's own schedule: the slot holding the model in
//! use (which the dashboard reads), training from the stored history
//! (`netsentinel retrain` and the dashboard's Retrain, deterministic for a
//! given history), loading stored models, and the trainer thread that picks up
//! models stored by other processes. The worker trains its own models inline
//! at fixed packet counts ([`crate::judge`], [`crate::schedule`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use postgres::GenericClient;

use crate::config::DetectorConfig;
use crate::detector::Detector;
use crate::judge::{packet_time, Input, Judge};
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

/// Trains on the stored history and stores the model: the newest
/// `train_window` packets are replayed in the order they came in through a
/// fresh judge (their context features computed as the worker does), and a
/// model is trained on them. The same stored history gives the same model.
pub fn train_and_store(
    c: &mut impl GenericClient,
    cfg: &DetectorConfig,
) -> Result<LiveModel, TrainError> {
    let started = Instant::now();
    let history = models::history(c, cfg.train_window)?;
    if (history.len() as u64) < cfg.min_train_packets {
        return Err(TrainError::NotEnoughPackets {
            have: history.len(),
            need: cfg.min_train_packets,
        });
    }
    let mut judge = Judge::new(cfg, 0);
    let inputs: Vec<Input<'_>> = history
        .iter()
        .map(|h| Input {
            sender: &h.client,
            packet: &h.packet,
            time: packet_time(&h.packet, chrono::Utc::now()),
            tag: h.id as u64,
        })
        .collect();
    let flagged: Vec<bool> = history.iter().map(|h| h.flagged).collect();
    judge.replay_only(&inputs, &flagged);
    let model = judge.train_now()?;
    let info = models::save(c, &model.detector, cfg)?;
    log::info!(
        "trained model {} on the newest {} stored packets in {} ms",
        info.id,
        history.len(),
        started.elapsed().as_millis()
    );
    Ok(LiveModel {
        info,
        detector: Arc::clone(&model.detector),
    })
}

/// `netsentinel retrain`: connects to `url` (creating and migrating the
/// database if needed), trains on the newest stored packets and stores the
/// model; a running server picks it up.
pub fn retrain_stored(url: &str, cfg: &DetectorConfig) -> Result<LiveModel, TrainError> {
    let mut client = crate::store::connect(url)?;
    train_and_store(&mut client, cfg)
}

/// Loads the newest stored model, if any; a model that cannot be used here
/// (unreadable, or trained with other context half-lives) is logged and
/// skipped: a new one will be trained.
pub fn load_newest(
    c: &mut impl GenericClient,
    half_lives: &[f64],
) -> Result<Option<LiveModel>, StoreError> {
    let Some(id) = models::newest_id(c)? else {
        return Ok(None);
    };
    match models::load(c, id, half_lives) {
        Ok(Some((info, detector))) => Ok(Some(LiveModel {
            info,
            detector: Arc::new(detector),
        })),
        Ok(None) => Ok(None),
        Err(StoreError::Data(msg)) => {
            log::warn!("not using stored model: {msg}; a new one will be trained");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The trainer thread's loop: look every few seconds for models stored by
/// others (`netsentinel retrain`, another server) and put a newer one in the
/// slot, where the worker adopts it; stop at shutdown.
pub fn run(pool: Pool, cfg: DetectorConfig, slot: Arc<ModelSlot>, shutdown: Shutdown) {
    let mut last_poll = Instant::now();
    while !shutdown.is_triggered() {
        std::thread::sleep(Duration::from_millis(200));
        if last_poll.elapsed() >= POLL_NEW_MODELS {
            last_poll = Instant::now();
            pick_up_newer(&pool, &cfg, &slot);
        }
    }
}

/// Trains now on the stored history, stores the model and puts it in the
/// slot (the dashboard's Retrain); one training at a time.
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

fn pick_up_newer(pool: &Pool, cfg: &DetectorConfig, slot: &ModelSlot) {
    let current = slot.current().map(|m| m.info.id);
    let result =
        pool.get()
            .map_err(StoreError::from)
            .and_then(|mut c| match models::newest_id(&mut *c)? {
                Some(id) if Some(id) > current => load_newest(&mut *c, &cfg.half_lives),
                _ => Ok(None),
            });
    match result {
        Ok(Some(model)) => slot.publish(model),
        Ok(None) => {}
        Err(e) => log::debug!("cannot look for new models: {e}"),
    }
}
