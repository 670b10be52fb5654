//! The packet detector: the per-packet feature encoder ([`crate::features`])
//! and one Isolation Forest per view of the traffic: the packet alone (the
//! seed's three features), and each context family (one measure of
//! [`crate::context`] at every half-life), trained together, scored together
//! and stored together as one JSON document (the `models` table).
//!
//! Why one forest per view: an Isolation Forest picks split features
//! uniformly, so in one forest over thirty columns a giant packet (odd only in
//! size) or a scan (odd only in new ports) would hardly ever be split on the
//! one column that matters. Isolation Forest scores are on one scale in every
//! view (2^(−path length / c(ψ))), but each view's ordinary packets sit at
//! their own level; so each view's score is shifted by its training median,
//! and a packet's score is 0.5 plus the largest shifted score of any view:
//! anomalous in any view is anomalous, and how far out it is still counts.
//!
//! The threshold is the (1 − contamination) quantile of the training rows'
//! combined scores (scikit-learn's convention). Measured, not assumed: a bar
//! taken from the packet view alone, every view held to it, kept the giants
//! found after an attack had filled the window (size recall 0.98 against
//! 0.86), but on real captures flagged 89% of ordinary browsing, whose bulk
//! transfers are busy in the behaviour views; so the bar is the combined one.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::config::DetectorConfig;
use crate::detect::{DetectError, IsolationForest, Matrix, Params};
use crate::features::{catalogue, FeatureEncoder, FeatureInfo, Group, PacketFields, FEATURE_NAMES};

/// Version of the stored form; a model of another version is not loaded.
const FORMAT: u32 = 2;
/// Percentile points kept per feature for explanations (0, 1, …, 100).
const PERCENTILES: usize = 101;

/// Features plus forests: everything needed to judge a packet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Detector {
    format: u32,
    half_lives: Vec<f64>,
    encoder: FeatureEncoder,
    views: Vec<View>,
    threshold: f64,
    contamination: f64,
    /// The share of the training rows above the threshold (the
    /// contamination, or less when flagged packets were left out).
    share: f64,
    training_rows: usize,
    /// Per feature, in row order: its training percentiles 0..=100 and the 99.9th.
    percentiles: Vec<Vec<f64>>,
    p999: Vec<f64>,
    #[serde(skip)]
    features: Vec<FeatureInfo>,
}

/// One view's forest over its columns of the row.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct View {
    group: Group,
    /// The view's name (its group, or the feature family it covers).
    name: String,
    /// Its columns in the full row.
    columns: Vec<usize>,
    forest: IsolationForest,
    /// The median training score: this view's ordinary level.
    center: f64,
    /// The forest's score of a row of zeros (ordinary traffic in every
    /// context view), worked out once: most rows are such a row.
    #[serde(skip)]
    zero_score: f64,
    /// Scores of rows seen before.
    #[serde(skip)]
    memo: Memo,
}

/// Why a packet scored as it did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The combined score (0.5 + the highest view score above its median).
    pub score: f64,
    /// Above this, a packet is an anomaly.
    pub threshold: f64,
    /// The view that gave the score.
    pub view: Group,
    /// Each view's score above its median, in row order.
    pub views: Vec<ViewScore>,
    /// The features that isolated the packet: those of each view that put
    /// it over the threshold, highest view first (of the highest view when
    /// none did), most isolating first within a view.
    pub features: Vec<FeatureReason>,
}

/// One view's verdict on a packet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ViewScore {
    /// The view's group.
    pub view: Group,
    /// The view's name: `packet`, or the context family it covers.
    pub name: String,
    /// Its Isolation Forest score minus the view's training median.
    pub score: f64,
}

/// One feature's part in a verdict, in words.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureReason {
    /// Column name.
    pub feature: String,
    /// What it measures, with the packet's addresses filled in.
    pub label: String,
    /// Unit of `value`.
    pub unit: &'static str,
    /// The packet's value.
    pub value: f64,
    /// Share of the splits that isolated the packet, in [0, 1].
    pub share: f64,
    /// Where the value sits among the training rows, in percent.
    pub percentile: f64,
    /// The training median.
    pub median: f64,
    /// The training 99.9th percentile.
    pub p999: f64,
    /// The whole reason as one sentence.
    pub sentence: String,
}

/// The packet's own values that fill a feature label.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// Source address, as text.
    pub src: &'a str,
    /// Destination address, as text.
    pub dst: &'a str,
    /// Protocol.
    pub protocol: &'a str,
    /// Destination port.
    pub port: Option<u16>,
    /// True when the source is the client of the conversation (see
    /// [`crate::context::client_is_source`]).
    pub client_is_source: bool,
}

impl Detector {
    /// Trains on `packets` (their per-packet fields) and `context` (their
    /// context rows back to back, each as wide as `cfg.half_lives` makes it),
    /// with the threshold flagging `share` of them.
    pub fn train(
        packets: &[PacketFields<'_>],
        context: &[f64],
        cfg: &DetectorConfig,
        share: f64,
    ) -> Result<Detector, DetectError> {
        let distinct = packets
            .iter()
            .map(|p| (p.packet_size, p.protocol, p.dst_port))
            .collect::<std::collections::HashSet<_>>()
            .len();
        if !packets.is_empty() && distinct < cfg.min_distinct_rows {
            return Err(DetectError::TooUniform {
                distinct,
                rows: packets.len(),
                need: cfg.min_distinct_rows,
            });
        }
        let features = catalogue(&cfg.half_lives);
        let width = features.len() - FEATURE_NAMES.len();
        if context.len() != packets.len() * width {
            return Err(DetectError::Ragged {
                len: context.len(),
                cols: width,
            });
        }
        let encoder = FeatureEncoder::fit(packets.iter().cloned());
        let full = full_rows(&encoder, packets, context, width)?;
        let partition = partition(&features);
        let mut views = Vec::with_capacity(partition.len());
        let mut combined = vec![f64::NEG_INFINITY; packets.len()];
        for (i, (group, name, cols)) in partition.into_iter().enumerate() {
            let names = cols.iter().map(|&c| features[c].name.clone()).collect();
            let seed = cfg
                .seed
                .wrapping_add(0x9E37_79B9_7F4A_7C15u64.wrapping_mul(i as u64));
            let params = Params::new(cfg.trees, cfg.sample_size, cfg.contamination, seed)?;
            let columns = gather(&full, &cols);
            let ceilings: Vec<Option<f64>> = cols.iter().map(|&c| features[c].ceiling).collect();
            let augmented = with_extremes(&columns, &ceilings, seed);
            let forest = IsolationForest::fit_trees(&augmented, names, params)?;
            let zero_score = forest.score_row(&vec![0.0; cols.len()])?;
            let scores = raw_scores(&forest, zero_score, None, &full, &cols);
            let mut sorted = scores.clone();
            sorted.sort_by(f64::total_cmp);
            let q = |p: f64| crate::detect::forest::quantile_sorted(&sorted, p);
            let center = q(0.5);
            for (c, s) in combined.iter_mut().zip(&scores) {
                *c = c.max(standardize(*s, center));
            }
            views.push(View {
                group,
                name,
                columns: cols,
                forest,
                center,
                zero_score,
                memo: Memo::default(),
            });
        }
        let share = share.clamp(0.0, 1.0);
        let threshold = crate::detect::forest::quantile(&combined, 1.0 - share);
        let (percentiles, p999) = feature_percentiles(&full);
        Ok(Detector {
            format: FORMAT,
            half_lives: cfg.half_lives.clone(),
            encoder,
            views,
            threshold,
            contamination: cfg.contamination,
            share,
            training_rows: packets.len(),
            percentiles,
            p999,
            features,
        })
    }

    /// Loads a stored detector, checking it as it goes; `half_lives` are the
    /// ones this process computes context with, and must be the model's.
    pub fn from_json(text: &str, half_lives: &[f64]) -> Result<Detector, DetectError> {
        let mut d: Detector =
            serde_json::from_str(text).map_err(|e| DetectError::InvalidModel(e.to_string()))?;
        let bad = |m: String| Err(DetectError::InvalidModel(m));
        if d.format != FORMAT {
            return bad(format!(
                "format {} is not the supported format {FORMAT}",
                d.format
            ));
        }
        if d.half_lives != half_lives {
            return bad(format!(
                "trained with context half-lives {:?} s, this server computes {:?} s",
                d.half_lives, half_lives
            ));
        }
        d.features = catalogue(&d.half_lives);
        let width = d.features.len();
        let expected = partition(&d.features);
        let views_ok = d.views.len() == expected.len()
            && d.views
                .iter()
                .zip(&expected)
                .all(|(v, (group, name, cols))| {
                    v.group == *group
                        && v.name == *name
                        && v.columns == *cols
                        && v.forest.feature_names().len() == cols.len()
                        && v.center.is_finite()
                });
        if d.views.is_empty() || !views_ok {
            return bad("its views do not match the features of its half-lives".into());
        }
        if d.percentiles.len() != width
            || d.p999.len() != width
            || d.percentiles.iter().any(|p| p.len() != PERCENTILES)
            || !d.threshold.is_finite()
        {
            return bad("its feature percentiles or threshold are malformed".into());
        }
        for v in &mut d.views {
            v.zero_score = v
                .forest
                .score_row(&vec![0.0; v.columns.len()])
                .map_err(|e| DetectError::InvalidModel(e.to_string()))?;
        }
        d.encoder.prepare();
        Ok(d)
    }

    /// The stored form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a fitted detector always serialises")
    }

    /// Combined scores of `packets` with their `context` rows (back to back).
    pub fn score(&self, packets: &[PacketFields<'_>], context: &[f64]) -> Vec<f64> {
        let width = self.features.len() - FEATURE_NAMES.len();
        let full = full_rows(&self.encoder, packets, context, width)
            .expect("context rows have the width of the model's half-lives");
        let mut combined = vec![f64::NEG_INFINITY; packets.len()];
        for v in &self.views {
            let scores = raw_scores(&v.forest, v.zero_score, Some(&v.memo), &full, &v.columns);
            for (c, s) in combined.iter_mut().zip(scores) {
                *c = c.max(standardize(s, v.center));
            }
        }
        combined
    }

    /// The full feature row (per-packet then context) of one packet.
    pub fn row(&self, packet: &PacketFields<'_>, context: &[f64]) -> Vec<f64> {
        let mut row = self.encoder.encode(packet).to_vec();
        row.extend_from_slice(context);
        row
    }

    /// Why the packet with this full `row` scored as it did.
    pub fn explain(&self, row: &[f64], subject: &Subject<'_>) -> Result<Explanation, DetectError> {
        if row.len() != self.features.len() {
            return Err(DetectError::FeatureCount {
                expected: self.features.len(),
                got: row.len(),
            });
        }
        let mut scored = Vec::with_capacity(self.views.len());
        for v in &self.views {
            scored.push((v, standardize(v.forest.score_row(&v.pick(row))?, v.center)));
        }
        let views: Vec<ViewScore> = scored
            .iter()
            .map(|(v, s)| ViewScore {
                view: v.group,
                name: v.name.clone(),
                score: *s,
            })
            .collect();
        // The views that put the packet over the threshold, highest first
        // (just the highest when none did), each with its isolating features.
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        let (top, score) = (scored[0].0, scored[0].1);
        let mut features = Vec::new();
        for (i, (view, s)) in scored.iter().enumerate() {
            if i > 0 && !self.is_anomaly(*s) {
                break;
            }
            let shares = view.forest.explain(&view.pick(row))?;
            let isolating = shares
                .features
                .iter()
                .filter(|f| f.share > 0.0)
                .filter_map(|f| {
                    let at = self.features.iter().position(|x| x.name == f.feature)?;
                    Some((at, f.share))
                });
            for (k, (at, share)) in isolating.enumerate() {
                // The first reason of the highest view always; the rest
                // when their values are unusual.
                if (i == 0 && k == 0) || self.unusual(at, row[at]) {
                    features.push(self.reason(at, row[at], share, subject));
                }
            }
        }
        Ok(Explanation {
            score,
            threshold: self.threshold,
            view: top.group,
            views,
            features,
        })
    }

    /// True when `raw` sits in the outer 1% of feature `at`'s training values
    /// (or beyond them): a value in the middle of what training saw is no
    /// reason, even if some split on it helped isolate the packet.
    fn unusual(&self, at: usize, raw: f64) -> bool {
        let pct = &self.percentiles[at];
        raw > pct[99] || raw < pct[1] || raw > pct[PERCENTILES - 1] || raw < pct[0]
    }

    fn reason(&self, at: usize, raw: f64, share: f64, subject: &Subject<'_>) -> FeatureReason {
        let info = &self.features[at];
        let pct = &self.percentiles[at];
        let percentile = percent_rank(pct, raw);
        let label = info
            .label
            .replace(
                "{client}",
                if subject.client_is_source {
                    subject.src
                } else {
                    subject.dst
                },
            )
            .replace(
                "{server}",
                if subject.client_is_source {
                    subject.dst
                } else {
                    subject.src
                },
            )
            .replace("{src}", subject.src)
            .replace("{dst}", subject.dst)
            .replace("{protocol}", subject.protocol)
            .replace(
                "{port}",
                &subject.port.map_or("none".into(), |p| p.to_string()),
            );
        let (value, median, p999) = (
            info.shown(raw),
            info.shown(pct[50]),
            info.shown(self.p999[at]),
        );
        let unit = if info.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", info.unit)
        };
        let sentence = format!(
            "{label}: {}{unit}; {} (median {}, 99.9th percentile {})",
            info.describe(raw),
            if raw > pct[PERCENTILES - 1] {
                "higher than any packet in training".to_string()
            } else if raw < pct[0] {
                "lower than any packet in training".to_string()
            } else if pct[0] == pct[PERCENTILES - 1] {
                "like every packet in training".to_string()
            } else if raw == pct[PERCENTILES - 1] {
                "as high as the highest in training".to_string()
            } else if raw == pct[0] {
                "as low as the lowest in training".to_string()
            } else {
                format!("{} percentile of training", ordinal(percentile))
            },
            info.describe(pct[50]),
            info.describe(self.p999[at])
        );
        FeatureReason {
            feature: info.name.clone(),
            label,
            unit: info.unit,
            value,
            share,
            percentile,
            median,
            p999,
            sentence,
        }
    }

    /// True when `score` is above the threshold.
    pub fn is_anomaly(&self, score: f64) -> bool {
        score > self.threshold
    }

    /// Score above which a packet is an anomaly.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// The contamination the threshold was set with.
    pub fn contamination(&self) -> f64 {
        self.contamination
    }

    /// The share of its training rows above its threshold.
    pub fn share(&self) -> f64 {
        self.share
    }

    /// Rows it was trained on.
    pub fn training_rows(&self) -> usize {
        self.training_rows
    }

    /// Every feature of a row, in order.
    pub fn features(&self) -> &[FeatureInfo] {
        &self.features
    }

    /// The context half-lives its features were computed with.
    pub fn half_lives(&self) -> &[f64] {
        &self.half_lives
    }

    /// Views (forests).
    pub fn views(&self) -> usize {
        self.views.len()
    }

    /// Trees over all views.
    pub fn trees(&self) -> usize {
        self.views.iter().map(|v| v.forest.trees()).sum()
    }
}

/// A view's score on the combined scale: 0.5 at the view's training median.
fn standardize(s: f64, center: f64) -> f64 {
    0.5 + s - center
}

impl View {
    /// The view's values of a full row.
    fn pick(&self, row: &[f64]) -> Vec<f64> {
        self.columns.iter().map(|&c| row[c]).collect()
    }
}

/// How the features split into views: (group, view name, columns). The
/// per-packet features form one view (the seed's forest); each context
/// family (one measure at every half-life) forms its own.
fn partition(features: &[FeatureInfo]) -> Vec<(Group, String, Vec<usize>)> {
    let mut views: Vec<(Group, String, Vec<usize>)> = Vec::new();
    for (c, f) in features.iter().enumerate() {
        let name = match f.group {
            Group::Packet => f.group.name().to_string(),
            _ => f.family.clone(),
        };
        match views.iter_mut().find(|v| v.1 == name) {
            Some(v) => v.2.push(c),
            None => views.push((f.group, name, vec![c])),
        }
    }
    views
}

/// Share of synthetic extreme rows added to a view's training data.
const EXTREME_SHARE: f64 = 0.02;

/// `data` plus a few synthetic rows (a share [`EXTREME_SHARE`]) that each copy
/// a real row and push one feature with a ceiling to a value between the
/// data's maximum and the ceiling, most of them near the maximum (a uniform
/// draw cubed: measured, recall of slow attacks rises with no cost). Trees grown on them split the space above
/// the data in their first levels, so an unseen high value (a flood, a scan
/// that training never saw) is isolated early instead of scoring like the
/// highest ordinary row. Without ceilings, `data` is returned as it is.
fn with_extremes(data: &Matrix, ceilings: &[Option<f64>], seed: u64) -> Matrix {
    use rand::{Rng, SeedableRng};
    let bounded: Vec<(usize, f64)> = ceilings
        .iter()
        .enumerate()
        .filter_map(|(f, c)| c.map(|c| (f, c)))
        .collect();
    let rows = data.rows();
    let extra = (rows as f64 * EXTREME_SHARE).ceil() as usize;
    if bounded.is_empty() || rows == 0 || extra == 0 {
        return data.clone();
    }
    let cols = data.cols();
    let top: Vec<f64> = (0..cols)
        .map(|f| {
            (0..rows)
                .map(|r| data.row(r)[f])
                .fold(f64::NEG_INFINITY, f64::max)
        })
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x00E7_7E3E);
    let mut values = data.as_slice().to_vec();
    values.reserve(extra * cols);
    for _ in 0..extra {
        let mut row = data.row(rng.random_range(0..rows)).to_vec();
        let (f, ceiling) = bounded[rng.random_range(0..bounded.len())];
        let low = top[f].min(ceiling);
        let u: f64 = rng.random();
        row[f] = low + (ceiling - low) * u.powi(3);
        values.extend_from_slice(&row);
    }
    Matrix::new(cols, values).expect("whole rows")
}

/// Full rows: the encoded per-packet features, then the context row.
fn full_rows(
    encoder: &FeatureEncoder,
    packets: &[PacketFields<'_>],
    context: &[f64],
    width: usize,
) -> Result<Matrix, DetectError> {
    let mut values = Vec::with_capacity(packets.len() * (FEATURE_NAMES.len() + width));
    for (i, p) in packets.iter().enumerate() {
        values.extend_from_slice(&encoder.encode(p));
        values.extend_from_slice(&context[i * width..(i + 1) * width]);
    }
    Matrix::new(FEATURE_NAMES.len() + width, values)
}

/// Columns a view has at most when its rows are told apart by value (a
/// context family has one per half-life, at most eight).
const MAX_VIEW_COLUMNS: usize = 8;

/// Distinct rows a view remembers the scores of, at most; when full, it
/// forgets them all and starts again.
const MEMO_CAPACITY: usize = 1 << 14;

/// A view's scores of rows it has scored before. Ordinary traffic repeats
/// itself (the same sizes, protocols and ports; context rows of zeros), so
/// most rows are looked up instead of walked through a hundred trees. Never
/// stored; a copied detector starts with an empty one.
#[derive(Default)]
struct Memo(Mutex<HashMap<[u64; MAX_VIEW_COLUMNS], f64, ahash::RandomState>>);

impl Clone for Memo {
    fn clone(&self) -> Memo {
        Memo::default()
    }
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Memo")
    }
}

/// The forest's scores of columns `cols` of every row of `full`. Each
/// distinct row is walked through the trees once: rows of zeros get
/// `zero_score` (the forest's score of such a row) at once, rows scored
/// before come from `memo`, and rows repeated in the batch share one walk.
/// The scores are exactly those of scoring every row.
fn raw_scores(
    forest: &IsolationForest,
    zero_score: f64,
    memo: Option<&Memo>,
    full: &Matrix,
    cols: &[usize],
) -> Vec<f64> {
    let mut scores = vec![zero_score; full.rows()];
    let dedupe = cols.len() <= MAX_VIEW_COLUMNS;
    let mut remembered = match (memo, dedupe) {
        (Some(m), true) => Some(m.0.lock().unwrap_or_else(|e| e.into_inner())),
        _ => None,
    };
    let mut seen: HashMap<[u64; MAX_VIEW_COLUMNS], u32, ahash::RandomState> =
        HashMap::with_hasher(ahash::RandomState::with_seeds(1, 2, 3, 4));
    let mut keys: Vec<[u64; MAX_VIEW_COLUMNS]> = Vec::new();
    let mut owners: Vec<(u32, u32)> = Vec::new();
    let mut values = Vec::new();
    for (r, score) in scores.iter_mut().enumerate() {
        let row = full.row(r);
        if cols.iter().all(|&c| row[c] == 0.0) {
            continue;
        }
        let unique = values.len() / cols.len();
        let at = if dedupe {
            let mut key = [0u64; MAX_VIEW_COLUMNS];
            for (k, &c) in key.iter_mut().zip(cols) {
                *k = row[c].to_bits();
            }
            if let Some(&s) = remembered.as_ref().and_then(|m| m.get(&key)) {
                *score = s;
                continue;
            }
            let at = *seen.entry(key).or_insert(unique as u32);
            if at as usize == unique {
                keys.push(key);
            }
            at
        } else {
            unique as u32
        };
        if at as usize == unique {
            values.extend(cols.iter().map(|&c| row[c]));
        }
        owners.push((r as u32, at));
    }
    if owners.is_empty() {
        return scores;
    }
    let rows = Matrix::new(cols.len(), values).expect("whole rows");
    let walked = forest.score(&rows).expect("columns of the forest's width");
    for (r, at) in owners {
        scores[r as usize] = walked[at as usize];
    }
    if let Some(m) = remembered.as_mut() {
        if m.len() + keys.len() > MEMO_CAPACITY {
            m.clear();
        }
        m.extend(keys.into_iter().zip(walked));
    }
    scores
}

/// Columns `cols` of every row.
fn gather(full: &Matrix, cols: &[usize]) -> Matrix {
    let mut values = Vec::with_capacity(full.rows() * cols.len());
    for r in 0..full.rows() {
        let row = full.row(r);
        values.extend(cols.iter().map(|&c| row[c]));
    }
    Matrix::new(cols.len(), values).expect("at least one column per view")
}

/// Per feature: the training percentiles 0..=100 and the 99.9th.
fn feature_percentiles(full: &Matrix) -> (Vec<Vec<f64>>, Vec<f64>) {
    let mut percentiles = Vec::with_capacity(full.cols());
    let mut p999 = Vec::with_capacity(full.cols());
    for c in 0..full.cols() {
        let mut col: Vec<f64> = (0..full.rows()).map(|r| full.row(r)[c]).collect();
        col.sort_by(f64::total_cmp);
        let q = |p: f64| crate::detect::forest::quantile_sorted(&col, p);
        percentiles.push((0..PERCENTILES).map(|i| q(i as f64 / 100.0)).collect());
        p999.push(q(0.999));
    }
    (percentiles, p999)
}

/// Where `v` sits among values with these percentiles 0..=100, in percent.
fn percent_rank(percentiles: &[f64], v: f64) -> f64 {
    if v > percentiles[PERCENTILES - 1] {
        return 100.0;
    }
    if v < percentiles[0] {
        return 0.0;
    }
    // The highest percentile at or below v: ties count as "at" that percentile.
    let at = percentiles.partition_point(|&p| p <= v);
    at.saturating_sub(1) as f64
}

/// A percentile as an ordinal: 1st, 2nd, 3rd, 4th, 11th, 21st, 99th.
fn ordinal(p: f64) -> String {
    let n = p.round() as u64;
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_read_as_ordinals() {
        assert_eq!(ordinal(1.0), "1st");
        assert_eq!(ordinal(2.0), "2nd");
        assert_eq!(ordinal(13.0), "13th");
        assert_eq!(ordinal(23.0), "23rd");
        assert_eq!(ordinal(99.0), "99th");
    }
}
