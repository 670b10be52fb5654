//! Detection-quality metrics: ROC AUC (smartcore), average precision, and
//! precision / recall / F1 of a set of flags. Labels are 0/1, 1 = anomaly.

use smartcore::metrics::roc_auc_score;

/// ROC AUC of `scores` against `labels`, computed by smartcore (Mann-Whitney U,
/// ties averaged). Both classes must be present; the caller checks that.
pub fn roc_auc(labels: &[u8], scores: &[f64]) -> f64 {
    let y: Vec<f64> = labels.iter().map(|&l| f64::from(l)).collect();
    roc_auc_score(&y, &scores.to_vec())
}

/// Average precision as scikit-learn defines it: Σ (Rₙ − Rₙ₋₁)·Pₙ over the
/// distinct score thresholds, highest first.
pub fn average_precision(labels: &[u8], scores: &[f64]) -> f64 {
    let positives = labels.iter().filter(|&&l| l == 1).count() as f64;
    if positives == 0.0 {
        return 0.0;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut fp, mut ap, mut last_recall) = (0.0, 0.0, 0.0, 0.0);
    for (k, &i) in order.iter().enumerate() {
        if labels[i] == 1 {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        let group_ends = order
            .get(k + 1)
            .is_none_or(|&next| scores[next] != scores[i]);
        if group_ends {
            let recall = tp / positives;
            ap += (recall - last_recall) * (tp / (tp + fp));
            last_recall = recall;
        }
    }
    ap
}

/// Precision, recall and F1 of `flagged` against `labels`. A ratio whose
/// denominator is 0 is 0 (scikit-learn's `zero_division=0`).
pub fn precision_recall_f1(labels: &[u8], flagged: &[bool]) -> (f64, f64, f64) {
    let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
    for (&l, &f) in labels.iter().zip(flagged) {
        match (l == 1, f) {
            (true, true) => tp += 1,
            (false, true) => fp += 1,
            (true, false) => fn_ += 1,
            (false, false) => {}
        }
    }
    prf_from_counts(tp, fp, fn_)
}

/// Precision, recall and F1 from true-positive, false-positive and false-negative counts.
pub fn prf_from_counts(tp: usize, fp: usize, fn_: usize) -> (f64, f64, f64) {
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let precision = ratio(tp, tp + fp);
    let recall = ratio(tp, tp + fn_);
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    (precision, recall, f1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_perfect_reversed_and_tied_rankings() {
        assert_eq!(roc_auc(&[0, 0, 1, 1], &[0.1, 0.2, 0.8, 0.9]), 1.0);
        assert_eq!(roc_auc(&[1, 1, 0, 0], &[0.1, 0.2, 0.8, 0.9]), 0.0);
        assert_eq!(roc_auc(&[0, 1, 0, 1], &[0.5, 0.5, 0.5, 0.5]), 0.5);
        // scikit-learn: roc_auc_score([0,0,1,1], [0.1,0.4,0.35,0.8]) == 0.75
        assert!((roc_auc(&[0, 0, 1, 1], &[0.1, 0.4, 0.35, 0.8]) - 0.75).abs() < 1e-12);
    }

    #[test]
    fn average_precision_matches_scikit_learn() {
        // scikit-learn: average_precision_score([0,0,1,1], [0.1,0.4,0.35,0.8]) == 0.8333…
        let ap = average_precision(&[0, 0, 1, 1], &[0.1, 0.4, 0.35, 0.8]);
        assert!((ap - 5.0 / 6.0).abs() < 1e-12, "{ap}");
        // Ties form one threshold: all tied → precision = base rate.
        assert!((average_precision(&[0, 1, 0, 1], &[0.5; 4]) - 0.5).abs() < 1e-12);
        assert_eq!(average_precision(&[1, 0], &[0.9, 0.1]), 1.0);
    }

    #[test]
    fn precision_recall_f1_counts() {
        let (p, r, f) = precision_recall_f1(&[1, 1, 0, 0, 1], &[true, false, true, false, true]);
        assert!((p - 2.0 / 3.0).abs() < 1e-12);
        assert!((r - 2.0 / 3.0).abs() < 1e-12);
        assert!((f - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(
            precision_recall_f1(&[1, 0], &[false, false]),
            (0.0, 0.0, 0.0)
        );
    }
}
