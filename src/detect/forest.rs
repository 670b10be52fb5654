//! The fitted Isolation Forest: scoring, threshold, explanation and its stored form.
//!
//! All trees live in one `Vec<Node>` (see [`super::tree`]). Scoring takes rows
//! in blocks that fit in cache and, for each block, walks tree after tree, sixteen
//! rows abreast, a fixed number of steps per tree: the walk has no data-dependent
//! branch, so the CPU overlaps the sixteen walks. Every row adds its trees' path
//! lengths in tree order, so scores are bit-identical whatever the thread count.

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::tree::{self, Node};
use super::{average_path_length, DetectError, Matrix, Params};

/// Rows scored together: 2,048 rows of a few features stay in L1/L2 while every
/// tree passes over them.
const BLOCK_ROWS: usize = 2048;
/// Rows walked abreast through one tree.
const LANES: usize = 16;

/// A fitted Isolation Forest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "StoredForest", try_from = "StoredForest")]
pub struct IsolationForest {
    params: Params,
    feature_names: Vec<String>,
    /// ψ actually used: `min(sample_size, training rows)`.
    sample_size_used: usize,
    training_rows: usize,
    /// c(ψ), the normaliser of path lengths.
    c_psi: f64,
    nodes: Vec<Node>,
    leaf_value: Vec<f64>,
    node_size: Vec<u32>,
    roots: Vec<u32>,
    heights: Vec<u32>,
    threshold: f64,
}

/// Why a row scored as it did: each feature's share of the splits on its paths.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The row's anomaly score s(x).
    pub score: f64,
    /// Mean path length E[h(x)] over the trees.
    pub mean_path_length: f64,
    /// Feature shares, largest first; they sum to 1 unless no tree split at all.
    pub features: Vec<FeatureShare>,
}

/// One feature's part in isolating a row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureShare {
    /// Feature name.
    pub feature: String,
    /// Weighted share of the splits on the row's paths, in [0, 1].
    pub share: f64,
}

/// Derives tree `i`'s seed from the forest seed (SplitMix64), so each tree's
/// randomness is fixed whatever order or thread grows it.
fn tree_seed(seed: u64, i: usize) -> u64 {
    let mut z = seed
        ^ (i as u64)
            .wrapping_add(1)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl IsolationForest {
    /// Fits the forest on `data` and sets the threshold from the training scores:
    /// the (1 − contamination) quantile, scikit-learn's `offset_` convention.
    pub fn fit(
        data: &Matrix,
        feature_names: Vec<String>,
        params: Params,
    ) -> Result<IsolationForest, DetectError> {
        let mut forest = Self::fit_trees(data, feature_names, params)?;
        let scores = forest.score(data)?;
        forest.set_threshold_from_training_scores(&scores);
        Ok(forest)
    }

    /// Grows the trees only. The threshold stays at 1.0 (nothing is flagged)
    /// until [`IsolationForest::set_threshold_from_training_scores`] is called;
    /// this lets a caller that scores the training rows anyway avoid doing it twice.
    pub fn fit_trees(
        data: &Matrix,
        feature_names: Vec<String>,
        params: Params,
    ) -> Result<IsolationForest, DetectError> {
        data.check_trainable()?;
        let rows = data.rows();
        let cols = data.cols();
        if feature_names.len() != cols {
            return Err(DetectError::FeatureCount {
                expected: feature_names.len(),
                got: cols,
            });
        }
        if rows < 2 {
            return Err(DetectError::NoRows);
        }
        let psi = params.sample_size().min(rows);
        let height_limit = (psi as f64).log2().ceil() as u32;

        let mut forest = IsolationForest {
            params,
            feature_names,
            sample_size_used: psi,
            training_rows: rows,
            c_psi: average_path_length(psi),
            nodes: Vec::new(),
            leaf_value: Vec::new(),
            node_size: Vec::new(),
            roots: Vec::with_capacity(params.trees()),
            heights: Vec::with_capacity(params.trees()),
            threshold: 1.0,
        };
        let mut sample = Vec::with_capacity(psi * cols);
        for t in 0..params.trees() {
            let mut rng = StdRng::seed_from_u64(tree_seed(params.seed(), t));
            sample.clear();
            if rows <= psi {
                sample.extend_from_slice(data.as_slice());
            } else {
                for i in rand::seq::index::sample(&mut rng, rows, psi) {
                    sample.extend_from_slice(data.row(i));
                }
            }
            let grown = tree::grow(&sample, cols, height_limit, &mut rng);
            forest.push_tree(grown);
        }
        Ok(forest)
    }

    fn push_tree(&mut self, grown: tree::Tree) {
        let offset = self.nodes.len() as u32;
        self.roots.push(offset);
        self.heights.push(grown.height);
        self.nodes.extend(grown.nodes.into_iter().map(|n| Node {
            next: n.next + offset,
            ..n
        }));
        self.leaf_value.extend(grown.leaf_value);
        self.node_size.extend(grown.size);
    }

    /// Sets the threshold to the (1 − contamination) quantile of `scores`, which
    /// must be the scores of the training rows (linear interpolation, as numpy).
    pub fn set_threshold_from_training_scores(&mut self, scores: &[f64]) {
        self.threshold = quantile(scores, 1.0 - self.params.contamination());
    }

    /// Anomaly scores s(x) = 2^(−E[h(x)]/c(ψ)) of every row, on this thread.
    /// Near 1: isolated quickly, anomalous; well below 0.5: normal.
    pub fn score(&self, data: &Matrix) -> Result<Vec<f64>, DetectError> {
        self.check_width(data.cols())?;
        let mut out = vec![0.0; data.rows()];
        self.score_into(data.as_slice(), &mut out);
        Ok(out)
    }

    /// [`IsolationForest::score`] split over `threads` threads; the result is
    /// bit-identical to the single-threaded one.
    pub fn score_parallel(&self, data: &Matrix, threads: usize) -> Result<Vec<f64>, DetectError> {
        self.check_width(data.cols())?;
        let threads = threads.max(1);
        let rows = data.rows();
        let mut out = vec![0.0; rows];
        if threads == 1 || rows < 2 * BLOCK_ROWS {
            self.score_into(data.as_slice(), &mut out);
            return Ok(out);
        }
        let per = rows.div_ceil(threads);
        let cols = data.cols();
        std::thread::scope(|s| {
            for (chunk, values) in out.chunks_mut(per).zip(data.as_slice().chunks(per * cols)) {
                s.spawn(move || self.score_into(values, chunk));
            }
        });
        Ok(out)
    }

    /// The score of one row.
    pub fn score_row(&self, row: &[f64]) -> Result<f64, DetectError> {
        self.check_width(row.len())?;
        let mut out = [0.0];
        self.score_into(row, &mut out);
        Ok(out[0])
    }

    /// True when `score` is above the threshold.
    pub fn is_anomaly(&self, score: f64) -> bool {
        score > self.threshold
    }

    fn check_width(&self, cols: usize) -> Result<(), DetectError> {
        if cols == self.feature_names.len() {
            Ok(())
        } else {
            Err(DetectError::FeatureCount {
                expected: self.feature_names.len(),
                got: cols,
            })
        }
    }

    /// Scores the rows in `values` (row-major) into `out`, block by block.
    fn score_into(&self, values: &[f64], out: &mut [f64]) {
        let cols = self.feature_names.len();
        for (block, acc) in values
            .chunks(BLOCK_ROWS * cols)
            .zip(out.chunks_mut(BLOCK_ROWS))
        {
            acc.fill(0.0);
            for (&root, &height) in self.roots.iter().zip(&self.heights) {
                self.add_path_lengths(root, height, block, cols, acc);
            }
            let scale = -1.0 / (self.roots.len() as f64 * self.c_psi);
            for a in acc.iter_mut() {
                *a = (*a * scale).exp2();
            }
        }
    }

    /// Adds one tree's path length h(x) for each row of `block` to `acc`.
    #[inline]
    fn add_path_lengths(
        &self,
        root: u32,
        height: u32,
        block: &[f64],
        cols: usize,
        acc: &mut [f64],
    ) {
        let nodes = &self.nodes[..];
        let mut lanes = block.chunks_exact(LANES * cols);
        let mut accs = acc.chunks_exact_mut(LANES);
        for (rows, acc8) in (&mut lanes).zip(&mut accs) {
            let mut at = [root; LANES];
            for _ in 0..height {
                for (l, a) in at.iter_mut().enumerate() {
                    debug_assert!((*a as usize) < nodes.len() && l * cols < rows.len());
                    // SAFETY: the two invariants every constructor of a forest
                    // upholds (`fit_trees` by growing, `try_from` by checking):
                    // each node's `next` and `next + 1` (internal) or `next`
                    // (leaf) index `nodes`, and each `feature` is below `cols`.
                    // `rows` holds exactly LANES rows of `cols` values and l < LANES.
                    // Bounds checks here cost a third of the scoring time.
                    unsafe {
                        let n = nodes.get_unchecked(*a as usize);
                        let x = *rows.get_unchecked(l * cols + n.feature as usize);
                        *a = n.next + u32::from(x > n.split);
                    }
                }
            }
            for (a, &leaf) in acc8.iter_mut().zip(&at) {
                *a += self.leaf_value[leaf as usize];
            }
        }
        for (row, a) in lanes
            .remainder()
            .chunks_exact(cols)
            .zip(accs.into_remainder())
        {
            let mut at = root;
            for _ in 0..height {
                at = nodes[at as usize].step(row);
            }
            *a += self.leaf_value[at as usize];
        }
    }

    /// Explains a row's score. Each split on the row's path in a tree credits
    /// its feature with how much of the node's training rows it cut away from
    /// the row, log2(rows in node / rows in the child taken), so the split that
    /// set the row apart counts most; each tree's credits are weighted by
    /// 1/h(x), so the short paths that isolated the row weigh most. Shares are
    /// normalised to sum to 1.
    pub fn explain(&self, row: &[f64]) -> Result<Explanation, DetectError> {
        self.check_width(row.len())?;
        let mut weight = vec![0.0; row.len()];
        let mut credit = vec![0.0f64; row.len()];
        let mut total_path = 0.0;
        for &root in &self.roots {
            credit.fill(0.0);
            let mut at = root;
            while !self.nodes[at as usize].is_leaf(at) {
                let node = self.nodes[at as usize];
                let child = node.step(row);
                let (n, m) = (self.node_size[at as usize], self.node_size[child as usize]);
                credit[node.feature as usize] += (f64::from(n.max(1)) / f64::from(m.max(1))).log2();
                at = child;
            }
            let h = self.leaf_value[at as usize];
            total_path += h;
            let w = 1.0 / h.max(1.0);
            for (acc, &c) in weight.iter_mut().zip(&credit) {
                *acc += w * c;
            }
        }
        let sum: f64 = weight.iter().sum();
        let mut features: Vec<FeatureShare> = self
            .feature_names
            .iter()
            .zip(&weight)
            .map(|(name, &w)| FeatureShare {
                feature: name.clone(),
                share: if sum > 0.0 { w / sum } else { 0.0 },
            })
            .collect();
        features.sort_by(|a, b| b.share.total_cmp(&a.share));
        let mean = total_path / self.roots.len() as f64;
        Ok(Explanation {
            score: (-mean / self.c_psi).exp2(),
            mean_path_length: mean,
            features,
        })
    }

    /// The hyperparameters it was fitted with.
    pub fn params(&self) -> &Params {
        &self.params
    }
    /// Feature names, in column order.
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }
    /// Rows it was trained on.
    pub fn training_rows(&self) -> usize {
        self.training_rows
    }
    /// Score above which a row is an anomaly.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }
    /// Number of trees.
    pub fn trees(&self) -> usize {
        self.roots.len()
    }
    /// Total nodes over all trees.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
}

/// The `q` quantile of `values` with linear interpolation between order
/// statistics (numpy's default). `values` must not be empty.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    quantile_sorted(&sorted, q)
}

/// [`quantile`] of values already sorted ascending.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// The stored form: each tree as columns with indices relative to the tree,
/// leaves marked by `left == 0` (no child can be node 0, the root). Loading
/// checks every index and value, since a stored model comes from outside.
#[derive(Serialize, Deserialize)]
struct StoredForest {
    format: u32,
    params: Params,
    feature_names: Vec<String>,
    sample_size_used: usize,
    training_rows: usize,
    threshold: f64,
    trees: Vec<StoredTree>,
}

#[derive(Serialize, Deserialize)]
struct StoredTree {
    feature: Vec<u32>,
    split: Vec<f64>,
    left: Vec<u32>,
    leaf_path: Vec<f64>,
    size: Vec<u32>,
}

const STORED_FORMAT: u32 = 1;

impl From<IsolationForest> for StoredForest {
    fn from(f: IsolationForest) -> StoredForest {
        let mut trees = Vec::with_capacity(f.roots.len());
        for (t, &root) in f.roots.iter().enumerate() {
            let end = f.roots.get(t + 1).copied().unwrap_or(f.nodes.len() as u32);
            let mut tree = StoredTree {
                feature: Vec::new(),
                split: Vec::new(),
                left: Vec::new(),
                leaf_path: Vec::new(),
                size: Vec::new(),
            };
            for at in root..end {
                let n = f.nodes[at as usize];
                let leaf = n.is_leaf(at);
                tree.feature.push(n.feature);
                tree.split.push(if leaf { 0.0 } else { n.split });
                tree.left.push(if leaf { 0 } else { n.next - root });
                tree.leaf_path.push(f.leaf_value[at as usize]);
                tree.size.push(f.node_size[at as usize]);
            }
            trees.push(tree);
        }
        StoredForest {
            format: STORED_FORMAT,
            params: f.params,
            feature_names: f.feature_names,
            sample_size_used: f.sample_size_used,
            training_rows: f.training_rows,
            threshold: f.threshold,
            trees,
        }
    }
}

impl TryFrom<StoredForest> for IsolationForest {
    type Error = DetectError;

    fn try_from(s: StoredForest) -> Result<IsolationForest, DetectError> {
        let bad = |msg: String| DetectError::InvalidModel(msg);
        if s.format != STORED_FORMAT {
            return Err(bad(format!(
                "format {} is not the supported format {STORED_FORMAT}",
                s.format
            )));
        }
        s.params.validate()?;
        let cols = s.feature_names.len();
        if cols == 0 {
            return Err(DetectError::NoFeatures);
        }
        if s.trees.is_empty() || s.sample_size_used < 2 || !s.threshold.is_finite() {
            return Err(bad(
                "a model needs at least one tree, a sample size of 2 or more and a finite threshold"
                    .into(),
            ));
        }
        let mut forest = IsolationForest {
            params: s.params,
            feature_names: s.feature_names,
            sample_size_used: s.sample_size_used,
            training_rows: s.training_rows,
            c_psi: average_path_length(s.sample_size_used),
            nodes: Vec::new(),
            leaf_value: Vec::new(),
            node_size: Vec::new(),
            roots: Vec::new(),
            heights: Vec::new(),
            threshold: s.threshold,
        };
        for (t, st) in s.trees.into_iter().enumerate() {
            let n = st.feature.len();
            if n == 0
                || st.split.len() != n
                || st.left.len() != n
                || st.leaf_path.len() != n
                || st.size.len() != n
            {
                return Err(bad(format!("tree {t} has columns of different lengths")));
            }
            let mut grown = tree::Tree {
                nodes: Vec::with_capacity(n),
                leaf_value: st.leaf_path,
                size: st.size,
                height: 0,
            };
            let mut depth = vec![0u32; n];
            for i in 0..n {
                let (feature, split, left) = (st.feature[i], st.split[i], st.left[i]);
                let value = grown.leaf_value[i];
                if left == 0 {
                    if !(value.is_finite() && value >= 0.0) {
                        return Err(bad(format!("tree {t} node {i}: leaf path {value}")));
                    }
                    grown.nodes.push(Node::leaf(i as u32));
                    continue;
                }
                // Children come after their parent, so depths are known in order
                // and no cycle is possible.
                if left as usize <= i || left as usize + 1 >= n {
                    return Err(bad(format!(
                        "tree {t} node {i}: child index {left} out of range"
                    )));
                }
                if feature as usize >= cols || !split.is_finite() {
                    return Err(bad(format!(
                        "tree {t} node {i}: feature {feature} or split {split} invalid"
                    )));
                }
                for child in [left as usize, left as usize + 1] {
                    depth[child] = depth[child].max(depth[i] + 1);
                }
                grown.height = grown.height.max(depth[i] + 1);
                grown.nodes.push(Node {
                    split,
                    feature,
                    next: left,
                });
            }
            forest.push_tree(grown);
        }
        Ok(forest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("f{i}")).collect()
    }

    /// 1,000 inliers from a tight 2-D cluster plus 10 far outliers, seeded.
    fn cluster_with_outliers(seed: u64) -> (Matrix, usize) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut rows = Vec::new();
        for _ in 0..1000 {
            rows.push(vec![
                rng.random_range(-1.0..1.0),
                rng.random_range(-1.0..1.0),
            ]);
        }
        for i in 0..10 {
            let sign = if i % 2 == 0 { 1.0 } else { -1.0 };
            rows.push(vec![
                sign * rng.random_range(8.0..12.0),
                rng.random_range(8.0..12.0),
            ]);
        }
        (Matrix::from_rows(&rows).unwrap(), 1000)
    }

    #[test]
    fn outliers_score_high_and_inliers_low() {
        let (data, inliers) = cluster_with_outliers(7);
        let forest = IsolationForest::fit(&data, names(2), Params::default()).unwrap();
        let scores = forest.score(&data).unwrap();
        for (i, s) in scores.iter().enumerate().skip(inliers) {
            assert!(*s > 0.6, "outlier {i} scored {s}");
        }
        let mean_inlier: f64 = scores[..inliers].iter().sum::<f64>() / inliers as f64;
        assert!(mean_inlier < 0.5, "mean inlier score {mean_inlier}");
        // Every inlier in the core of the cluster (the uniform square's rim
        // is sparse and may score a little higher) is below 0.5.
        for (i, score) in scores.iter().enumerate().take(inliers) {
            let row = data.row(i);
            if row[0].abs() < 0.6 && row[1].abs() < 0.6 {
                assert!(*score < 0.5, "inlier {i} at {row:?} scored {score}");
            }
        }
        // The cluster's centre is as normal as it gets.
        assert!(forest.score_row(&[0.0, 0.0]).unwrap() < 0.5);
        assert!(forest.score_row(&[50.0, -50.0]).unwrap() > 0.6);
    }

    #[test]
    fn same_seed_same_scores_bit_for_bit_whatever_the_threads() {
        let (data, _) = cluster_with_outliers(3);
        // Enough rows for several blocks and threads.
        let big = Matrix::from_rows(
            &(0..20_000)
                .map(|i| data.row(i % data.rows()).to_vec())
                .collect::<Vec<_>>(),
        )
        .unwrap();
        let p = Params::new(50, 128, 0.05, 99).unwrap();
        let a = IsolationForest::fit(&data, names(2), p).unwrap();
        let b = IsolationForest::fit(&data, names(2), p).unwrap();
        assert_eq!(a, b);
        let one = a.score(&big).unwrap();
        for threads in [2, 3, 7] {
            let many = a.score_parallel(&big, threads).unwrap();
            assert!(one
                .iter()
                .zip(&many)
                .all(|(x, y)| x.to_bits() == y.to_bits()));
        }
        let other = IsolationForest::fit(&data, names(2), Params::new(50, 128, 0.05, 100).unwrap())
            .unwrap();
        assert_ne!(one, other.score(&big).unwrap());
    }

    #[test]
    fn batch_and_single_row_scores_agree() {
        let (data, _) = cluster_with_outliers(5);
        let forest = IsolationForest::fit(&data, names(2), Params::default()).unwrap();
        let batch = forest.score(&data).unwrap();
        for i in [0, 7, 500, 1009] {
            assert_eq!(
                batch[i].to_bits(),
                forest.score_row(data.row(i)).unwrap().to_bits()
            );
            let e = forest.explain(data.row(i)).unwrap();
            assert!((e.score - batch[i]).abs() < 1e-12);
        }
    }

    #[test]
    fn threshold_is_the_upper_contamination_quantile_of_training_scores() {
        let (data, _) = cluster_with_outliers(11);
        let p = Params::new(100, 256, 0.1, 1).unwrap();
        let forest = IsolationForest::fit(&data, names(2), p).unwrap();
        let scores = forest.score(&data).unwrap();
        assert_eq!(forest.threshold(), quantile(&scores, 0.9));
        let flagged = scores.iter().filter(|s| forest.is_anomaly(**s)).count();
        // (1 - c) quantile: about c of the training rows lie strictly above it.
        assert!((100..=101).contains(&flagged), "flagged {flagged}");
    }

    #[test]
    fn quantile_interpolates_like_numpy() {
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.5);
        assert_eq!(quantile(&[4.0, 1.0, 3.0, 2.0], 0.9), 3.7);
        assert_eq!(quantile(&[5.0], 0.9), 5.0);
        assert_eq!(quantile(&[1.0, 2.0], 1.0), 2.0);
    }

    #[test]
    fn serde_round_trip_gives_identical_scores() {
        let (data, _) = cluster_with_outliers(13);
        let forest = IsolationForest::fit(&data, names(2), Params::default()).unwrap();
        let json = serde_json::to_string(&forest).unwrap();
        let back: IsolationForest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, forest);
        assert_eq!(back.threshold().to_bits(), forest.threshold().to_bits());
        let a = forest.score(&data).unwrap();
        let b = back.score(&data).unwrap();
        assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
        assert_eq!(back.feature_names(), forest.feature_names());
        assert_eq!(back.params(), forest.params());
    }

    #[test]
    fn corrupt_stored_model_is_an_error_not_a_panic() {
        let (data, _) = cluster_with_outliers(13);
        let forest =
            IsolationForest::fit(&data, names(2), Params::new(3, 16, 0.1, 0).unwrap()).unwrap();
        let good: serde_json::Value = serde_json::to_value(&forest).unwrap();
        let mutations: [(&str, serde_json::Value); 5] = [
            ("/trees/0/left/0", serde_json::json!(9_999)),
            ("/trees/0/feature/0", serde_json::json!(7)),
            ("/trees/0/split", serde_json::json!([])),
            ("/params/trees", serde_json::json!(0)),
            ("/format", serde_json::json!(99)),
        ];
        for (path, value) in mutations {
            let mut bad = good.clone();
            *bad.pointer_mut(path).unwrap() = value;
            let err = serde_json::from_value::<IsolationForest>(bad);
            assert!(err.is_err(), "{path} accepted");
        }
    }

    #[test]
    fn bad_training_input_is_a_clear_error() {
        let p = Params::default();
        let empty = Matrix::new(2, vec![]).unwrap();
        assert_eq!(
            IsolationForest::fit(&empty, names(2), p).unwrap_err(),
            DetectError::NoRows
        );
        assert_eq!(Matrix::new(0, vec![]).unwrap_err(), DetectError::NoFeatures);
        let nan = Matrix::new(2, vec![1.0, 2.0, f64::NAN, 3.0]).unwrap();
        let err = IsolationForest::fit(&nan, names(2), p).unwrap_err();
        assert!(
            matches!(
                err,
                DetectError::NonFinite {
                    row: 1,
                    feature: 0,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("row 1"));
        let inf = Matrix::new(2, vec![1.0, 2.0, 3.0, f64::INFINITY]).unwrap();
        assert!(matches!(
            IsolationForest::fit(&inf, names(2), p),
            Err(DetectError::NonFinite {
                row: 1,
                feature: 1,
                ..
            })
        ));
        let one = Matrix::new(2, vec![1.0, 2.0]).unwrap();
        assert_eq!(
            IsolationForest::fit(&one, names(2), p).unwrap_err(),
            DetectError::NoRows
        );
        let two = Matrix::new(2, vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        assert!(matches!(
            IsolationForest::fit(&two, names(3), p),
            Err(DetectError::FeatureCount { .. })
        ));
        let forest = IsolationForest::fit(&two, names(2), p).unwrap();
        assert!(matches!(
            forest.score_row(&[1.0]),
            Err(DetectError::FeatureCount { .. })
        ));
    }

    #[test]
    fn constant_and_extreme_data_do_not_panic() {
        let p = Params::default();
        let constant = Matrix::new(1, vec![3.0; 500]).unwrap();
        let forest = IsolationForest::fit(&constant, names(1), p).unwrap();
        let s = forest.score(&constant).unwrap();
        assert!(s.iter().all(|v| (*v - 0.5).abs() < 1e-12));
        assert!(!forest.is_anomaly(s[0]));
        let extreme = Matrix::new(1, vec![-f64::MAX, f64::MAX, 0.0, 1.0]).unwrap();
        let forest = IsolationForest::fit(&extreme, names(1), p).unwrap();
        assert!(forest
            .score(&extreme)
            .unwrap()
            .iter()
            .all(|v| v.is_finite()));
        // Scoring is total: NaN input gets a score, never a panic.
        assert!(forest.score_row(&[f64::NAN]).unwrap().is_finite());
    }

    #[test]
    fn explanation_points_at_the_feature_that_isolates() {
        // Feature 0 is pure noise in a narrow band; feature 1 separates the outlier.
        let mut rng = StdRng::seed_from_u64(1);
        let mut rows: Vec<Vec<f64>> = (0..500)
            .map(|_| vec![rng.random_range(0.0..1.0), rng.random_range(0.0..1.0)])
            .collect();
        rows.push(vec![0.5, 40.0]);
        let data = Matrix::from_rows(&rows).unwrap();
        let forest = IsolationForest::fit(&data, names(2), Params::default()).unwrap();
        let e = forest.explain(&[0.5, 40.0]).unwrap();
        assert_eq!(e.features[0].feature, "f1");
        assert!(e.features[0].share > 0.6, "{e:?}");
        let total: f64 = e.features.iter().map(|f| f.share).sum();
        assert!((total - 1.0).abs() < 1e-9);
    }

    #[test]
    fn forest_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<IsolationForest>();
    }
}
