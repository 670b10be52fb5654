//! `netsentinel eval`: detection quality and speed of the Isolation Forest on a
//! labelled CSV, per seed and as the mean.
//!
//! Fits on every row (labels unused), scores every row, then compares the
//! scores with the labels. Owns no I/O beyond reading the data file.

pub mod capture;
pub mod dataset;
pub mod metrics;
pub mod stream;

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use crate::detect::{DetectError, IsolationForest, Params};
pub use dataset::{Dataset, DatasetError};

/// What to evaluate and how.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Trees per forest.
    pub trees: usize,
    /// ψ, rows per tree.
    pub sample_size: usize,
    /// Sets the threshold for precision/recall/F1.
    pub contamination: f64,
    /// One run per seed.
    pub seeds: Vec<u64>,
}

impl EvalOptions {
    /// The detector's hyperparameters from the configuration, one run per seed.
    pub fn new(detector: &crate::config::DetectorConfig, seeds: Vec<u64>) -> EvalOptions {
        EvalOptions {
            trees: detector.trees,
            sample_size: detector.sample_size,
            contamination: detector.contamination,
            seeds,
        }
    }
}

/// Reads `file` (label column `label`) and evaluates it, logging what it read.
pub fn run_file(
    file: &std::path::Path,
    label: &str,
    opts: &EvalOptions,
) -> Result<EvalReport, EvalError> {
    log::info!("reading {}", file.display());
    let data = dataset::load(file, label)?;
    log::info!(
        "{} rows, {} features; {} trees, sample size {}, seeds {:?}",
        data.labels.len(),
        data.feature_names.len(),
        opts.trees,
        opts.sample_size,
        opts.seeds
    );
    evaluate(&data, opts)
}

/// Why an evaluation could not run.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The data file is unusable.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// The forest refused the data or parameters.
    #[error("{file}: {source}")]
    Detect {
        /// The data file.
        file: PathBuf,
        /// What the forest said.
        source: DetectError,
    },
    /// ROC AUC needs both classes.
    #[error("{file}: {anomalies} of {rows} rows are labelled 1; ROC AUC needs both normal (0) and anomalous (1) rows")]
    OneClass {
        /// The data file.
        file: PathBuf,
        /// Rows labelled 1.
        anomalies: usize,
        /// All rows.
        rows: usize,
    },
    /// No seed to run.
    #[error("--seeds is empty: give at least one seed, e.g. --seeds 0,1,2")]
    NoSeeds,
    /// A capture file is unusable.
    #[error(transparent)]
    Capture(crate::capture::PcapFileError),
    /// A labels file fits neither form of its capture.
    #[error(transparent)]
    Labels(#[from] crate::capture::LabelMismatch),
    /// No labels file was given or found for a capture.
    #[error(
        "{0}: no labels file: give --labels FILE (one 0/1 line per frame or per IP packet), \
         or put it beside the capture as <capture>.labels"
    )]
    NoLabels(PathBuf),
    /// More labels files than captures.
    #[error("{labels} labels files for {captures} captures: give at most one --labels per capture, in order")]
    TooManyLabels {
        /// Labels files given.
        labels: usize,
        /// Captures given.
        captures: usize,
    },
}

/// Quality and speed figures of one run (or their mean).
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Figures {
    /// ROC AUC.
    pub auc: f64,
    /// Average precision.
    pub ap: f64,
    /// Precision at the contamination threshold.
    pub precision: f64,
    /// Recall at the contamination threshold.
    pub recall: f64,
    /// F1 at the contamination threshold.
    pub f1: f64,
    /// Milliseconds to grow the trees.
    pub fit_ms: f64,
    /// Milliseconds to score every row on one thread.
    pub score_ms: f64,
    /// Rows scored per second.
    pub rows_per_s: f64,
}

/// One seed's run.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// The forest's seed.
    pub seed: u64,
    /// Its figures.
    #[serde(flatten)]
    pub figures: Figures,
}

/// The whole evaluation, in the shape `--json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// The data file.
    pub file: String,
    /// Data rows.
    pub rows: usize,
    /// Feature columns.
    pub features: usize,
    /// Rows labelled 1.
    pub anomalies: usize,
    /// One per seed.
    pub runs: Vec<Run>,
    /// Mean over the runs.
    pub mean: Figures,
}

impl EvalReport {
    /// The report as one JSON object.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report of numbers and names serialises")
    }
}

/// Runs the evaluation on a loaded data set.
pub fn evaluate(data: &Dataset, opts: &EvalOptions) -> Result<EvalReport, EvalError> {
    let rows = data.labels.len();
    let anomalies = data.anomalies();
    if anomalies == 0 || anomalies == rows {
        return Err(EvalError::OneClass {
            file: data.path.clone(),
            anomalies,
            rows,
        });
    }
    if opts.seeds.is_empty() {
        return Err(EvalError::NoSeeds);
    }
    let detect_err = |source| EvalError::Detect {
        file: data.path.clone(),
        source,
    };
    let mut runs = Vec::with_capacity(opts.seeds.len());
    for &seed in &opts.seeds {
        let params = Params::new(opts.trees, opts.sample_size, opts.contamination, seed)
            .map_err(|e| detect_err(e.into()))?;
        let started = Instant::now();
        let mut forest =
            IsolationForest::fit_trees(&data.features, data.feature_names.clone(), params)
                .map_err(detect_err)?;
        let fit = started.elapsed();
        let started = Instant::now();
        let scores = forest.score(&data.features).map_err(detect_err)?;
        let score = started.elapsed();
        // Every row is a training row, so these scores set the threshold too.
        forest.set_threshold_from_training_scores(&scores);
        let flagged: Vec<bool> = scores.iter().map(|&s| forest.is_anomaly(s)).collect();
        let (precision, recall, f1) = metrics::precision_recall_f1(&data.labels, &flagged);
        let figures = Figures {
            auc: metrics::roc_auc(&data.labels, &scores),
            ap: metrics::average_precision(&data.labels, &scores),
            precision,
            recall,
            f1,
            fit_ms: fit.as_secs_f64() * 1e3,
            score_ms: score.as_secs_f64() * 1e3,
            rows_per_s: rows as f64 / score.as_secs_f64().max(1e-9),
        };
        log::debug!("seed {seed}: {figures:?}");
        runs.push(Run { seed, figures });
    }
    let mean = mean_of(&runs);
    Ok(EvalReport {
        file: data.path.display().to_string(),
        rows,
        features: data.feature_names.len(),
        anomalies,
        runs,
        mean,
    })
}

fn mean_of(runs: &[Run]) -> Figures {
    let n = runs.len() as f64;
    let avg = |f: fn(&Figures) -> f64| runs.iter().map(|r| f(&r.figures)).sum::<f64>() / n;
    Figures {
        auc: avg(|f| f.auc),
        ap: avg(|f| f.ap),
        precision: avg(|f| f.precision),
        recall: avg(|f| f.recall),
        f1: avg(|f| f.f1),
        fit_ms: avg(|f| f.fit_ms),
        score_ms: avg(|f| f.score_ms),
        rows_per_s: avg(|f| f.rows_per_s),
    }
}

/// The report as an aligned text table, one line per seed and one for the mean.
pub fn render_text(r: &EvalReport, contamination: f64) -> String {
    let mut out = format!(
        "{}: {} rows, {} features, {} anomalies ({:.2}%)\n\
         precision/recall/F1 at the contamination threshold c = {contamination}\n\n",
        r.file,
        r.rows,
        r.features,
        r.anomalies,
        100.0 * r.anomalies as f64 / r.rows as f64
    );
    out.push_str(&format!(
        "{:>6}  {:>7}  {:>7}  {:>9}  {:>7}  {:>7}  {:>9}  {:>9}  {:>12}\n",
        "seed", "auc", "ap", "precision", "recall", "f1", "fit_ms", "score_ms", "rows/s"
    ));
    let line = |label: String, f: &Figures| {
        format!(
            "{label:>6}  {:>7.4}  {:>7.4}  {:>9.4}  {:>7.4}  {:>7.4}  {:>9.2}  {:>9.1}  {:>12.0}\n",
            f.auc, f.ap, f.precision, f.recall, f.f1, f.fit_ms, f.score_ms, f.rows_per_s
        )
    };
    for run in &r.runs {
        out.push_str(&line(run.seed.to_string(), &run.figures));
    }
    out.push_str(&line("mean".into(), &r.mean));
    out
}
