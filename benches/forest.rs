//! Speed of the Isolation Forest on http.csv.gz against scikit-learn, same run.
//!
//! `cargo bench --bench forest` prints: tree-growing time for t=100, ψ=256
//! (median of 21 seeds), single-threaded scoring rate over every row (best of
//! 5), the multi-threaded rate, and scikit-learn 1.9.1's single-threaded
//! `score_samples` rate on the same rows, with the ratio. The data folder is
//! `../shared/datasets` beside the repo, or `$NETSENTINEL_DATASETS`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use netsentinel::detect::{IsolationForest, Params};
use netsentinel::eval::dataset;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let dir = std::env::var_os("NETSENTINEL_DATASETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets"));
    let file = dir.join("http.csv.gz");
    if !file.is_file() {
        println!(
            "SKIPPED: {} not found (set NETSENTINEL_DATASETS)",
            file.display()
        );
        return;
    }
    let data = match dataset::load(&file, "label") {
        Ok(d) => d,
        Err(e) => {
            eprintln!("cannot load {}: {e}", file.display());
            std::process::exit(1);
        }
    };
    let rows = data.labels.len();
    println!(
        "file: {} ({} rows, {} features)",
        file.display(),
        rows,
        data.feature_names.len()
    );

    let mut fit_ms = Vec::new();
    let mut forest = None;
    for seed in 0..21 {
        let params = Params::new(100, 256, 0.1, seed).expect("valid parameters");
        let t = Instant::now();
        let f = IsolationForest::fit_trees(&data.features, data.feature_names.clone(), params)
            .expect("http.csv.gz is valid training data");
        fit_ms.push(t.elapsed().as_secs_f64() * 1e3);
        forest.get_or_insert(f);
    }
    let forest = forest.expect("at least one fit");
    println!(
        "fit 100 trees, psi=256:            median {:.2} ms, min {:.2} ms  (bar: < 10 ms)",
        median(fit_ms.clone()),
        fit_ms.iter().cloned().fold(f64::INFINITY, f64::min)
    );

    let mut best = f64::INFINITY;
    let mut checksum = 0.0;
    for _ in 0..5 {
        let t = Instant::now();
        let scores = forest.score(&data.features).expect("same width");
        best = best.min(t.elapsed().as_secs_f64());
        checksum = scores.iter().sum::<f64>();
    }
    let ours = rows as f64 / best;
    println!(
        "score all rows, 1 thread:          {:.1} ms, {:.0} rows/s (checksum {checksum:.6})",
        best * 1e3,
        ours
    );
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let t = Instant::now();
    let _ = forest.score_parallel(&data.features, threads);
    let par = t.elapsed().as_secs_f64();
    println!(
        "score all rows, {threads} threads:         {:.1} ms, {:.0} rows/s",
        par * 1e3,
        rows as f64 / par
    );

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/sklearn_baseline.py");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    match Command::new(&python).arg(&script).arg(&file).output() {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            match serde_json::from_str::<serde_json::Value>(text.trim()) {
                Ok(v) => {
                    let theirs = v["rows_per_s"].as_f64().unwrap_or(f64::NAN);
                    println!(
                        "scikit-learn {} score_samples, n_jobs=1: {:.1} ms, {:.0} rows/s (fit {:.1} ms)",
                        v["version"].as_str().unwrap_or("?"),
                        v["score_s"].as_f64().unwrap_or(f64::NAN) * 1e3,
                        theirs,
                        v["fit_s"].as_f64().unwrap_or(f64::NAN) * 1e3
                    );
                    println!(
                        "ratio ours/scikit-learn, 1 thread: {:.1}x  (bar: >= 5x)",
                        ours / theirs
                    );
                }
                Err(e) => println!("scikit-learn baseline printed no JSON ({e}): {text}"),
            }
        }
        Ok(out) => println!(
            "scikit-learn baseline failed (pip install scikit-learn==1.9.1): {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ),
        Err(e) => println!("scikit-learn baseline not run: cannot start {python}: {e}"),
    }
}
