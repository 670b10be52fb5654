//! When a new model is due: the retrain policy as pure functions of how many
//! packets were stored, and the running count the judge keeps. No clock: the
//! same packets give the same training points at any pace.

use crate::config::DetectorConfig;

/// The retrain policy: is a new model due, given the packets stored in all
/// (`stored_total`), the rows the model in use was trained on (`None`: no
/// model yet) and the packets stored since it?
///
/// The first model once `min_train_packets` are stored; a model trained on
/// less than a full `train_window` is replaced each time the stored packets
/// double from when it came into use (so models trained on the first few
/// dozen packets do not judge for long); then every `retrain_every` packets
/// (0: never).
pub fn retrain_due(
    cfg: &DetectorConfig,
    stored_total: u64,
    model_rows: Option<u64>,
    since_model: u64,
) -> bool {
    packets_until_due(cfg, stored_total, model_rows, since_model) == Some(0)
}

/// How many more packets until [`retrain_due`] holds (0: due now; `None`:
/// never), for a model trained on `model_rows` rows (`None`: no model yet).
pub fn packets_until_due(
    cfg: &DetectorConfig,
    stored_total: u64,
    model_rows: Option<u64>,
    since_model: u64,
) -> Option<u64> {
    match model_rows {
        None => Some(cfg.min_train_packets.saturating_sub(stored_total)),
        Some(rows) if rows < cfg.train_window as u64 => {
            let at_model = stored_total.saturating_sub(since_model).max(1);
            Some(at_model.saturating_sub(since_model))
        }
        Some(_) if cfg.retrain_every == 0 => None,
        Some(_) => Some(cfg.retrain_every.saturating_sub(since_model)),
    }
}

/// The judge's running count of judged packets, for [`packets_until_due`].
#[derive(Debug, Clone, PartialEq)]
pub struct RetrainSchedule {
    stored_total: u64,
    since_model: u64,
}

impl RetrainSchedule {
    /// A schedule for a history of `stored_total` packets.
    pub fn new(stored_total: u64) -> RetrainSchedule {
        RetrainSchedule {
            stored_total,
            since_model: 0,
        }
    }

    /// `n` more packets were judged.
    pub fn stored(&mut self, n: u64) {
        self.stored_total += n;
        self.since_model += n;
    }

    /// A new model came into use: the count towards the next one restarts.
    pub fn model_changed(&mut self) {
        self.since_model = 0;
    }

    /// Packets judged in all.
    pub fn stored_total(&self) -> u64 {
        self.stored_total
    }

    /// Packets until the next model is due (see [`packets_until_due`]).
    pub fn until_due(&self, cfg: &DetectorConfig, model_rows: Option<u64>) -> Option<u64> {
        packets_until_due(cfg, self.stored_total, model_rows, self.since_model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(packets_until_due(&c, 10, None, 10), Some(40));
    }

    #[test]
    fn a_small_model_is_replaced_each_time_the_store_doubles() {
        let c = cfg(50, 1000, 100_000);
        assert!(!retrain_due(&c, 99, Some(50), 49));
        assert!(retrain_due(&c, 100, Some(50), 50));
        assert_eq!(packets_until_due(&c, 60, Some(50), 10), Some(40));
        assert!(
            !retrain_due(&c, 5000, Some(1000), 10),
            "full window: retrain_every rules"
        );
    }

    #[test]
    fn full_models_every_retrain_every_and_zero_means_never() {
        assert!(retrain_due(&cfg(50, 1000, 100), 10_000, Some(1000), 100));
        assert!(!retrain_due(&cfg(50, 1000, 100), 10_000, Some(1000), 99));
        assert!(!retrain_due(
            &cfg(50, 1000, 0),
            10_000_000,
            Some(1000),
            10_000_000
        ));
        assert_eq!(packets_until_due(&cfg(50, 1000, 0), 9, Some(1000), 9), None);
    }

    #[test]
    fn the_schedule_counts_and_restarts_on_a_new_model() {
        let c = cfg(10, 100, 30);
        let mut s = RetrainSchedule::new(0);
        s.stored(9);
        assert_eq!(s.until_due(&c, None), Some(1));
        s.stored(1);
        assert_eq!(s.until_due(&c, None), Some(0));
        s.model_changed();
        assert_eq!(s.until_due(&c, Some(10)), Some(10), "doubling: due at 20");
        s.stored(100);
        s.model_changed();
        assert_eq!(s.until_due(&c, Some(100)), Some(30));
        assert_eq!(s.stored_total(), 110);
    }
}
