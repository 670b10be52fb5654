//! Hyperparameters of the Isolation Forest and their validation.
//!
//! [`Params`] can only be built through [`Params::new`], which checks every rule,
//! so a fit never meets a value that would make it divide by zero or loop.

use serde::{Deserialize, Serialize};

/// A hyperparameter outside what the algorithm can use.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamError {
    /// No trees.
    #[error("trees must be at least 1, got {0}")]
    Trees(usize),
    /// Sub-sample too small to split.
    #[error("sample_size must be at least 2, got {0}")]
    SampleSize(usize),
    /// Contamination outside (0, 0.5].
    #[error("contamination must be in (0, 0.5], got {0}")]
    Contamination(f64),
}

/// Validated hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Params {
    trees: usize,
    sample_size: usize,
    contamination: f64,
    seed: u64,
}

impl Params {
    /// Checks and builds the parameters: `trees` ≥ 1, `sample_size` (ψ) ≥ 2,
    /// `contamination` in (0, 0.5].
    pub fn new(
        trees: usize,
        sample_size: usize,
        contamination: f64,
        seed: u64,
    ) -> Result<Params, ParamError> {
        if trees == 0 {
            return Err(ParamError::Trees(trees));
        }
        if sample_size < 2 {
            return Err(ParamError::SampleSize(sample_size));
        }
        if !(contamination > 0.0 && contamination <= 0.5) {
            return Err(ParamError::Contamination(contamination));
        }
        Ok(Params {
            trees,
            sample_size,
            contamination,
            seed,
        })
    }

    /// Number of trees, t.
    pub fn trees(&self) -> usize {
        self.trees
    }
    /// Rows drawn for each tree, ψ.
    pub fn sample_size(&self) -> usize {
        self.sample_size
    }
    /// Expected share of anomalies.
    pub fn contamination(&self) -> f64 {
        self.contamination
    }
    /// Seed of every random choice.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Re-validates after deserialisation, where the fields came from outside.
    pub(crate) fn validate(&self) -> Result<(), ParamError> {
        Params::new(self.trees, self.sample_size, self.contamination, self.seed).map(|_| ())
    }
}

impl Default for Params {
    /// The paper's defaults: t = 100, ψ = 256; contamination 0.1, seed 42.
    fn default() -> Self {
        Params {
            trees: 100,
            sample_size: 256,
            contamination: 0.1,
            seed: 42,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rule_has_its_own_error() {
        assert_eq!(Params::new(0, 256, 0.1, 0), Err(ParamError::Trees(0)));
        assert_eq!(Params::new(1, 1, 0.1, 0), Err(ParamError::SampleSize(1)));
        assert_eq!(
            Params::new(1, 2, 0.0, 0),
            Err(ParamError::Contamination(0.0))
        );
        assert_eq!(
            Params::new(1, 2, 0.6, 0),
            Err(ParamError::Contamination(0.6))
        );
        assert!(matches!(
            Params::new(1, 2, f64::NAN, 0),
            Err(ParamError::Contamination(_))
        ));
        assert!(Params::new(1, 2, 0.5, 0).is_ok());
    }
}
