//! Damped incremental statistics (Kitsune's "incStat"): a weight, a mean and
//! a spread that forget the past at a fixed half-life of packet time.
//!
//! Each observation adds weight 1; between observations every weight decays by
//! 2^(−Δt / half-life). The mean and variance are kept in Welford's form
//! (mean and sum of squared deviations) so they stay accurate in `f32`.

/// A decayed weight, mean and spread of one value.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Damped {
    /// Decayed number of observations.
    pub w: f32,
    /// Weighted mean.
    pub mean: f32,
    /// Weighted sum of squared deviations from the mean.
    pub m2: f32,
}

impl Damped {
    /// Forgets by `factor` (the decay since the last update, in (0, 1]).
    #[inline]
    pub fn decay(&mut self, factor: f32) {
        self.w *= factor;
        self.m2 *= factor;
    }

    /// Adds one observation of `x`.
    #[inline]
    pub fn add(&mut self, x: f32) {
        self.w += 1.0;
        let delta = x - self.mean;
        self.mean += delta / self.w;
        self.m2 += delta * (x - self.mean);
    }

    /// The weighted standard deviation (0 with fewer than one observation).
    #[inline]
    pub fn std(&self) -> f32 {
        if self.w > 0.0 {
            (self.m2 / self.w).max(0.0).sqrt()
        } else {
            0.0
        }
    }
}

/// The decay factor after `dt` seconds at a half-life whose inverse is `inv_half_life`.
#[inline]
pub fn decay_factor(dt: f64, inv_half_life: f64) -> f32 {
    (-dt * inv_half_life).exp2() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_decay_it_is_the_plain_mean_and_spread() {
        let mut d = Damped::default();
        for x in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0] {
            d.add(x);
        }
        assert_eq!(d.w, 8.0);
        assert!((d.mean - 5.0).abs() < 1e-6);
        assert!((d.std() - 2.0).abs() < 1e-6);
    }

    #[test]
    fn one_half_life_halves_the_weight_and_keeps_the_mean() {
        let mut d = Damped::default();
        d.add(10.0);
        d.add(10.0);
        d.decay(decay_factor(1.0, 1.0));
        assert!((d.w - 1.0).abs() < 1e-6);
        assert!((d.mean - 10.0).abs() < 1e-6);
        // A steady rate r settles at a weight of r·h/ln 2.
        let mut steady = Damped::default();
        for _ in 0..10_000 {
            steady.decay(decay_factor(0.01, 1.0));
            steady.add(1.0);
        }
        assert!(
            (steady.w - 100.0 / std::f32::consts::LN_2).abs() < 0.5,
            "{}",
            steady.w
        );
    }
}
