//! The Isolation Forest (Liu, Ting & Zhou, ICDM 2008), written for NetSentinel.
//!
//! Layout:
//! - [`params`]: unchecked hyperparameters → validated [`Params`], one error per rule;
//! - [`matrix`]: the row-major feature matrix every fit and score takes;
//! - [`tree`]: growing one isolation tree into flat node arrays;
//! - [`forest`]: the fitted model: scores, threshold, explanations, serde form.
//!
//! This module knows nothing of packets, sockets or databases: features arrive
//! as numbers and leave as scores.

pub mod forest;
pub mod matrix;
pub mod params;
pub mod tree;

pub use forest::{Explanation, IsolationForest};
pub use matrix::Matrix;
pub use params::{ParamError, Params};

/// Why a fit, a score or a model load failed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DetectError {
    /// Training data with no rows.
    #[error("cannot train on an empty data set: it has no rows")]
    NoRows,
    /// A training window of (nearly) identical packets: a model trained on it
    /// would judge every packet alike (flood it with one packet, then retrain:
    /// nothing is flagged any more).
    #[error(
        "the {rows} packets to train on hold only {distinct} distinct (size, protocol, port) \
         rows; at least {need} are needed (detector.min_distinct_rows); the model in use stays"
    )]
    TooUniform {
        /// Distinct rows found.
        distinct: usize,
        /// Rows in all.
        rows: usize,
        /// Distinct rows needed.
        need: usize,
    },
    /// Training data with no feature columns.
    #[error("cannot train on data with no feature columns")]
    NoFeatures,
    /// A NaN or infinite value in training data.
    #[error("row {row}, feature {feature} holds {value}: every value must be a finite number")]
    NonFinite {
        /// Zero-based row.
        row: usize,
        /// Zero-based feature column.
        feature: usize,
        /// The offending value.
        value: f64,
    },
    /// The matrix data does not divide into whole rows.
    #[error("{len} values do not make whole rows of {cols} features")]
    Ragged {
        /// Values given.
        len: usize,
        /// Columns expected.
        cols: usize,
    },
    /// Rows to score have another width than the model was trained on.
    #[error("the model was trained on {expected} features but got rows of {got}")]
    FeatureCount {
        /// Features in the model.
        expected: usize,
        /// Features given.
        got: usize,
    },
    /// A hyperparameter out of range.
    #[error(transparent)]
    Param(#[from] ParamError),
    /// A serialized model that does not describe a valid forest.
    #[error("invalid stored model: {0}")]
    InvalidModel(String),
}

/// Euler–Mascheroni constant, for the harmonic-number approximation.
const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// The harmonic number H(k) = 1 + 1/2 + … + 1/k: summed exactly for small k,
/// by its asymptotic expansion (error below 1e-12) above.
fn harmonic(k: usize) -> f64 {
    if k < 64 {
        (1..=k).map(|i| 1.0 / i as f64).sum()
    } else {
        let k = k as f64;
        let k2 = k * k;
        k.ln() + EULER_GAMMA + 1.0 / (2.0 * k) - 1.0 / (12.0 * k2) + 1.0 / (120.0 * k2 * k2)
    }
}

/// c(n): the average path length of an unsuccessful search in a binary search
/// tree of n points, c(n) = 2H(n−1) − 2(n−1)/n, with c(0) = c(1) = 0. It
/// normalises path lengths and estimates the unbuilt part of a tree below a
/// leaf that still holds n points.
pub fn average_path_length(n: usize) -> f64 {
    if n <= 1 {
        0.0
    } else {
        let nf = n as f64;
        2.0 * harmonic(n - 1) - 2.0 * (nf - 1.0) / nf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_of_n_matches_hand_computed_values() {
        assert_eq!(average_path_length(0), 0.0);
        assert_eq!(average_path_length(1), 0.0);
        assert!((average_path_length(2) - 1.0).abs() < 1e-12);
        // 2 * (1 + 1/2) - 2 * 2/3
        assert!((average_path_length(3) - (3.0 - 4.0 / 3.0)).abs() < 1e-12);
        // 2 * (1 + 1/2 + 1/3) - 2 * 3/4
        assert!((average_path_length(4) - (11.0 / 3.0 - 1.5)).abs() < 1e-12);
        // c(256) from the exact harmonic sum.
        let exact: f64 = 2.0 * (1..=255).map(|i| 1.0 / i as f64).sum::<f64>() - 2.0 * 255.0 / 256.0;
        assert!((average_path_length(256) - exact).abs() < 1e-10);
        assert!((average_path_length(256) - 10.248_689_925_634_56).abs() < 1e-9);
    }

    #[test]
    fn harmonic_expansion_meets_exact_sum_at_the_switch() {
        for k in [64usize, 100, 1000] {
            let exact: f64 = (1..=k).map(|i| 1.0 / i as f64).sum();
            assert!((harmonic(k) - exact).abs() < 1e-12, "k={k}");
        }
    }
}
