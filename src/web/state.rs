//! What the dashboard's handlers may reach, and nothing more: the database
//! pool, the counters, the model slot, the ingest gauges (slots and FIFO
//! depth, behind [`IngestGauges`]) and its own settings. The server builds one
//! [`WebState`]; tests build their own without a server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::{DetectorConfig, StorageConfig};
use crate::detector::Detector;
use crate::shutdown::Shutdown;
use crate::stats::Stats;
use crate::store::{models, Pool, StoreError};
use crate::trainer::ModelSlot;

/// Models kept decoded for explanations.
const MODEL_CACHE: usize = 8;

/// The ingest figures the dashboard shows, read live.
pub trait IngestGauges: Send + Sync {
    /// Connections being served.
    fn served(&self) -> usize;
    /// Connections waiting for a slot.
    fn waiting(&self) -> usize;
    /// Packets in the FIFO.
    fn queue_depth(&self) -> usize;
    /// The FIFO's capacity.
    fn queue_capacity(&self) -> usize;
}

/// The dashboard's own settings.
#[derive(Debug, Clone, Default)]
pub struct WebSettings {
    /// Tokens and host names: who may read and write ([`super::guard`]).
    pub access: super::guard::Access,
    /// `dashboard.retrain_interval_s`: the least time between two retrains.
    pub retrain_interval: Duration,
    /// `[detector]`, for Retrain and the stats page.
    pub detector: DetectorConfig,
    /// `[storage]`: retention, shown with the partitions.
    pub storage: StorageConfig,
}

/// Packets-per-second over the last minute, from samples of the stored count.
#[derive(Default)]
pub struct RateMeter {
    samples: Mutex<std::collections::VecDeque<(Instant, u64)>>,
}

impl RateMeter {
    /// Adds a sample (at most one a second is kept).
    pub fn sample(&self, stored: u64) {
        let mut s = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if s.back()
            .is_none_or(|(t, _)| now.duration_since(*t) >= Duration::from_millis(900))
        {
            s.push_back((now, stored));
        }
        while s.len() > 2
            && s.front()
                .is_some_and(|(t, _)| now.duration_since(*t) > Duration::from_secs(60))
        {
            s.pop_front();
        }
    }

    /// Packets per second between the oldest kept sample and `stored` now.
    pub fn rate(&self, stored: u64) -> f64 {
        let s = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        match s.front() {
            Some((t, first)) => {
                let secs = t.elapsed().as_secs_f64();
                if secs < 0.5 {
                    0.0
                } else {
                    stored.saturating_sub(*first) as f64 / secs
                }
            }
            None => 0.0,
        }
    }
}

/// Everything the handlers need.
pub struct WebState {
    /// The database pool.
    pub pool: Pool,
    /// The model in use.
    pub models: Arc<ModelSlot>,
    /// Counters.
    pub stats: Arc<Stats>,
    /// Slots and FIFO.
    pub ingest: Arc<dyn IngestGauges>,
    /// Settings.
    pub settings: WebSettings,
    /// Shutdown flag: the dashboard stops with the server.
    pub shutdown: Shutdown,
    /// Serve assets from this folder instead of the embedded copies.
    pub static_dir: Option<std::path::PathBuf>,
    /// Packets/s meter.
    pub rate: RateMeter,
    http: Mutex<tiny_http::ConnectionStats>,
    /// When the last retrain asked through the API finished.
    pub last_retrain: Mutex<Option<Instant>>,
    decoded: Mutex<HashMap<i64, Arc<Detector>>>,
}

impl WebState {
    /// State over these parts, with a shutdown flag of its own and the embedded assets.
    pub fn new(
        pool: Pool,
        models: Arc<ModelSlot>,
        stats: Arc<Stats>,
        ingest: Arc<dyn IngestGauges>,
        settings: WebSettings,
    ) -> WebState {
        WebState {
            pool,
            models,
            stats,
            ingest,
            settings,
            shutdown: Shutdown::new(),
            static_dir: None,
            rate: RateMeter::default(),
            http: Mutex::new(tiny_http::ConnectionStats::default()),
            last_retrain: Mutex::new(None),
            decoded: Mutex::new(HashMap::new()),
        }
    }

    /// Stops with this shutdown flag.
    pub fn with_shutdown(mut self, shutdown: Shutdown) -> WebState {
        self.shutdown = shutdown;
        self
    }

    /// Serves the page from `dir` (when given) instead of the embedded copies.
    pub fn with_static_dir(mut self, dir: Option<std::path::PathBuf>) -> WebState {
        self.static_dir = dir;
        self
    }

    /// Records what the HTTP connection limits did (for `/metrics`).
    pub fn set_http_figures(&self, figures: tiny_http::ConnectionStats) {
        *self.http.lock().unwrap_or_else(|p| p.into_inner()) = figures;
    }

    /// What the HTTP connection limits did, as last recorded.
    pub fn http_figures(&self) -> tiny_http::ConnectionStats {
        *self.http.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on a pooled connection.
    pub fn with_db<T>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut c = self.pool.get()?;
        f(&mut c)
    }

    /// The detector of model `id`, decoded once and cached.
    pub fn detector(&self, id: i64) -> Result<Option<Arc<Detector>>, StoreError> {
        if let Some(m) = self.models.current().filter(|m| m.info.id == id) {
            // The model in use is already decoded.
            return Ok(Some(Arc::clone(&m.detector)));
        }
        if let Some(d) = self
            .decoded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
        {
            return Ok(Some(Arc::clone(d)));
        }
        let mut c = self.pool.get()?;
        let Some((_, detector)) = models::load(&mut *c, id, &self.settings.detector.half_lives)?
        else {
            return Ok(None);
        };
        let detector = Arc::new(detector);
        let mut cache = self.decoded.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MODEL_CACHE {
            cache.clear();
        }
        cache.insert(id, Arc::clone(&detector));
        Ok(Some(detector))
    }
}
