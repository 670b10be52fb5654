//! Detection quality on generated traffic, offline (issue #11): every
//! `--scenario` beside the seed's size anomalies, judged by the very path the
//! server runs (context features, training at fixed counts, late scores) with
//! no database. Prints, per scenario and seed, precision/recall at the
//! threshold and the recall of each kind of anomaly; then the same with the
//! per-packet features alone (no half-lives) as the baseline, and with flagged
//! packets left out of the training window.
//!
//! `cargo bench --bench detection` (`BENCH_PACKETS`, default 20,000 per run).

use netsentinel::client::generate::{Generator, Plan, Scenario, Truth};
use netsentinel::config::DetectorConfig;
use netsentinel::eval::stream::{figures, judge, Labelled};

fn stream(scenario: Option<Scenario>, ratio: f64, seed: u64, n: u64) -> Vec<Labelled> {
    let plan = Plan {
        anomaly_ratio: ratio,
        ..Plan::new(Some(n), scenario)
    };
    let mut g = Generator::new(plan, seed);
    (0..n)
        .map(|_| {
            let (packet, truth) = g.next_packet();
            Labelled {
                sender: "gen".into(),
                packet,
                kind: (truth != Truth::Normal).then(|| truth.name().to_string()),
            }
        })
        .collect()
}

fn main() {
    let n: u64 = std::env::var("BENCH_PACKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let variants: Vec<(&str, DetectorConfig)> = vec![
        ("context", DetectorConfig::default()),
        (
            "per-packet only",
            DetectorConfig {
                half_lives: vec![],
                ..DetectorConfig::default()
            },
        ),
        (
            "context, flagged left out of training",
            DetectorConfig {
                exclude_flagged: true,
                ..DetectorConfig::default()
            },
        ),
    ];
    let scenarios = [
        None,
        Some(Scenario::Portscan),
        Some(Scenario::Sweep),
        Some(Scenario::Synflood),
        Some(Scenario::Bruteforce),
        Some(Scenario::Beacon),
        Some(Scenario::Mixed),
    ];
    for (name, cfg) in &variants {
        println!("== {name}");
        for scenario in scenarios {
            let ratio = 0.1;
            for seed in 1..=3 {
                let packets = stream(scenario, ratio, seed, n);
                let v = judge(&[], &packets, cfg, 4096).expect("judged");
                let f = figures(&packets, &v);
                let kinds: Vec<String> = f
                    .kinds
                    .iter()
                    .map(|(k, x)| format!("{k} {:.3} ({}/{})", x.recall, x.flagged, x.packets))
                    .collect();
                println!(
                    "{:<10} seed {seed}: P {:.3} R {:.3} AUC {:.4} flagged {} of {} | {}",
                    scenario.map_or("none", |s| s.name()),
                    f.precision,
                    f.recall,
                    f.auc.unwrap_or(f64::NAN),
                    f.flagged,
                    f.packets,
                    kinds.join(", ")
                );
            }
        }
    }
}
