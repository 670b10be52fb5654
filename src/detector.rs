//! The packet detector: the feature encoder ([`crate::features`]) and the
//! Isolation Forest ([`crate::detect`]) trained together, scored together, and
//! stored together as one JSON document (the `models` table).

use serde::{Deserialize, Serialize};

use crate::config::DetectorConfig;
use crate::detect::{DetectError, Explanation, IsolationForest, Matrix, Params};
use crate::features::{FeatureEncoder, PacketFields, FEATURE_NAMES};

/// A packet as training data: the fields the features come from.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingPacket {
    /// IP packet length.
    pub packet_size: u16,
    /// Protocol name.
    pub protocol: String,
    /// Destination port.
    pub dst_port: Option<u16>,
}

impl TrainingPacket {
    fn fields(&self) -> PacketFields<'_> {
        PacketFields {
            packet_size: self.packet_size,
            protocol: &self.protocol,
            dst_port: self.dst_port,
        }
    }
}

/// Features plus forest: everything needed to judge a packet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Detector {
    encoder: FeatureEncoder,
    forest: IsolationForest,
}

impl Detector {
    /// Trains on `packets` with the configured hyperparameters.
    pub fn train(
        packets: &[TrainingPacket],
        cfg: &DetectorConfig,
    ) -> Result<Detector, DetectError> {
        let params = Params::new(cfg.trees, cfg.sample_size, cfg.contamination, cfg.seed)?;
        let encoder = FeatureEncoder::fit(packets.iter().map(TrainingPacket::fields));
        let mut values = Vec::with_capacity(packets.len() * FEATURE_NAMES.len());
        for p in packets {
            values.extend_from_slice(&encoder.encode(&p.fields()));
        }
        let matrix = Matrix::new(FEATURE_NAMES.len(), values)?;
        let names = FEATURE_NAMES.iter().map(|s| s.to_string()).collect();
        let forest = IsolationForest::fit(&matrix, names, params)?;
        Ok(Detector { encoder, forest })
    }

    /// Loads a stored detector, checking the forest as it goes.
    pub fn from_json(text: &str) -> Result<Detector, DetectError> {
        let mut d: Detector =
            serde_json::from_str(text).map_err(|e| DetectError::InvalidModel(e.to_string()))?;
        if d.forest.feature_names().len() != FEATURE_NAMES.len() {
            return Err(DetectError::InvalidModel(format!(
                "model has features {:?}, this version computes {FEATURE_NAMES:?}",
                d.forest.feature_names()
            )));
        }
        d.encoder.prepare();
        Ok(d)
    }

    /// The stored form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a fitted detector always serialises")
    }

    /// Scores a batch of packets; returns one score per packet.
    pub fn score<'a>(&self, packets: impl ExactSizeIterator<Item = PacketFields<'a>>) -> Vec<f64> {
        let mut values = Vec::with_capacity(packets.len() * FEATURE_NAMES.len());
        for p in packets {
            values.extend_from_slice(&self.encoder.encode(&p));
        }
        let matrix = Matrix::new(FEATURE_NAMES.len(), values).expect("three values per packet");
        self.forest
            .score(&matrix)
            .expect("rows have the model's width")
    }

    /// Why a packet scored as it did.
    pub fn explain(&self, p: &PacketFields<'_>) -> Explanation {
        self.forest
            .explain(&self.encoder.encode(p))
            .expect("rows have the model's width")
    }

    /// True when `score` is above the threshold.
    pub fn is_anomaly(&self, score: f64) -> bool {
        self.forest.is_anomaly(score)
    }

    /// The forest (threshold, params, training rows).
    pub fn forest(&self) -> &IsolationForest {
        &self.forest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// Seeded traffic like the generator's: every 10th packet is a runt (1-40
    /// bytes) or a giant (9,000-65,535 bytes), the rest 64-1,500 bytes.
    fn traffic() -> Vec<TrainingPacket> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let protocols = ["TCP", "UDP", "HTTP", "HTTPS", "ICMP"];
        (0..2000u32)
            .map(|i| {
                let protocol = protocols[rng.random_range(0..5)].to_string();
                let anomalous = i % 10 == 0;
                let packet_size = if anomalous {
                    if rng.random_bool(0.5) {
                        rng.random_range(1..=40)
                    } else {
                        rng.random_range(9000..=65535)
                    }
                } else {
                    rng.random_range(64..=1500)
                };
                let dst_port = match protocol.as_str() {
                    "HTTP" => Some(80),
                    "HTTPS" => Some(443),
                    "ICMP" => None,
                    _ => Some([22, 53, 3306][rng.random_range(0..3)]),
                };
                TrainingPacket {
                    packet_size,
                    protocol,
                    dst_port,
                }
            })
            .collect()
    }

    #[test]
    fn trained_detector_flags_extreme_sizes_and_round_trips() {
        let cfg = Config::default().detector;
        let data = traffic();
        let d = Detector::train(&data, &cfg).unwrap();
        let scores = d.score(data.iter().map(TrainingPacket::fields));
        let (mut tp, mut fp, mut fn_) = (0, 0, 0);
        for (i, s) in scores.iter().enumerate() {
            match (i % 10 == 0, d.is_anomaly(*s)) {
                (true, true) => tp += 1,
                (false, true) => fp += 1,
                (true, false) => fn_ += 1,
                _ => {}
            }
        }
        assert!(
            tp >= 180 && fp <= 20 && fn_ <= 20,
            "tp {tp} fp {fp} fn {fn_}"
        );
        let back = Detector::from_json(&d.to_json()).unwrap();
        let again = back.score(data.iter().map(TrainingPacket::fields));
        assert_eq!(scores, again);
    }

    #[test]
    fn garbage_model_is_an_error() {
        assert!(Detector::from_json("{}").is_err());
        assert!(Detector::from_json("not json").is_err());
    }
}
