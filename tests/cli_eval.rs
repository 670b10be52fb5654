//! `netsentinel eval` and configuration errors, through the real binary:
//! exit codes, messages that name the file/line/key, and the JSON shape.

use std::path::Path;
use std::process::{Command, Output};

fn netsentinel(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netsentinel"))
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .output()
        .expect("binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the run exited 2 with every one of `needles` in its message.
fn exits_2_saying(o: &Output, needles: &[&str]) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(needles.iter().all(|n| e.contains(n)), "{e}");
}

/// A small labelled set: a 2-D cluster and a few far points.
fn write_dataset(dir: &Path) -> std::path::PathBuf {
    let mut text = String::from("x,y,label\n");
    for i in 0..300 {
        let a = (i % 17) as f64 / 17.0;
        let b = (i % 13) as f64 / 13.0;
        text.push_str(&format!("{a},{b},0\n"));
    }
    for i in 0..6 {
        text.push_str(&format!("{},{},1\n", 20 + i, -15 - i));
    }
    let p = dir.join("small.csv");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn eval_json_has_the_documented_shape_and_finds_the_outliers() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_dataset(dir.path());
    let out = netsentinel(
        &[
            "eval",
            file.to_str().unwrap(),
            "--seeds",
            "0,1,2",
            "--contamination",
            "0.02",
            "--json",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["rows"], 306);
    assert_eq!(v["features"], 2);
    assert_eq!(v["anomalies"], 6);
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    for (run, seed) in runs.iter().zip([0, 1, 2]) {
        assert_eq!(run["seed"], seed);
        for key in [
            "auc",
            "ap",
            "precision",
            "recall",
            "f1",
            "fit_ms",
            "score_ms",
            "rows_per_s",
        ] {
            assert!(run[key].is_number(), "run lacks {key}: {run}");
        }
    }
    assert!(v["mean"].get("seed").is_none());
    assert!(v["mean"]["auc"].as_f64().unwrap() > 0.99, "{v}");
    assert!(v["mean"]["recall"].as_f64().unwrap() > 0.99, "{v}");
}

#[test]
fn eval_text_prints_a_row_per_seed_and_the_mean() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_dataset(dir.path());
    let out = netsentinel(
        &["eval", file.to_str().unwrap(), "--seeds", "4,5"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("auc") && text.contains("rows/s"), "{text}");
    assert!(
        text.lines().any(|l| l.trim_start().starts_with("4 ")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.trim_start().starts_with("mean")),
        "{text}"
    );
}

#[test]
fn bad_csv_exits_2_naming_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.csv");
    std::fs::write(&p, "a,b,label\n1,2,0\n1,oops,1\n").unwrap();
    let out = netsentinel(&["eval", p.to_str().unwrap()], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(
        e.contains("bad.csv:3") && e.contains("column 2") && e.contains("oops"),
        "{e}"
    );
}

#[test]
fn single_class_file_exits_2_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("normal.csv");
    std::fs::write(&p, "a,label\n1,0\n2,0\n3,0\n").unwrap();
    let out = netsentinel(&["eval", p.to_str().unwrap()], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("both normal"), "{}", stderr(&out));
}

#[test]
fn out_of_range_flag_exits_2_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_dataset(dir.path());
    let out = netsentinel(
        &["eval", file.to_str().unwrap(), "--contamination", "0.7"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(
        e.contains("--contamination") && e.contains("(0, 0.5]"),
        "{e}"
    );
}

#[test]
fn bad_config_file_exits_2_naming_file_key_value_and_rule() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_dataset(dir.path());
    // Picked up from the working directory when --config is absent.
    std::fs::write(
        dir.path().join("netsentinel.toml"),
        "[server]\nmax_clients = 0\n",
    )
    .unwrap();
    let out = netsentinel(&["eval", file.to_str().unwrap()], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(
        e.contains("netsentinel.toml")
            && e.contains("server.max_clients")
            && e.contains("= 0")
            && e.contains("1..="),
        "{e}"
    );
    // An explicit --config wins over the file in the working directory.
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[detector]\ntrees = 10\n").unwrap();
    let out = netsentinel(
        &[
            "--config",
            good.to_str().unwrap(),
            "eval",
            file.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn env_override_is_validated_too() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_dataset(dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_netsentinel"))
        .args(["eval", file.to_str().unwrap()])
        .current_dir(dir.path())
        .env("NETSENTINEL_DETECTOR_TREES", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("NETSENTINEL_DETECTOR_TREES"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn help_explains_eval() {
    let dir = tempfile::tempdir().unwrap();
    let out = netsentinel(&["eval", "--help"], dir.path());
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--label",
        "--trees",
        "--sample-size",
        "--seeds",
        "--contamination",
        "--json",
    ] {
        assert!(text.contains(flag), "help lacks {flag}");
    }
}

#[test]
fn keys_that_contradict_each_other_exit_2_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &[&str]); 3] = [
        (
            &["server", "--set", "detector.min_train_packets=20000"],
            &["detector.min_train_packets", "detector.train_window"],
        ),
        (
            &["server", "--set", "database.pool_size=1"],
            &["database.pool_size"],
        ),
        (
            &["server", "--port", "7311", "--dashboard-port", "7311"],
            &["server.port", "dashboard.port"],
        ),
    ];
    for (args, keys) in cases {
        let out = netsentinel(args, dir.path());
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        for key in keys {
            assert!(stderr(&out).contains(key), "{args:?}: {}", stderr(&out));
        }
    }
    // The same rule holds when the conflict comes from a file.
    std::fs::write(
        dir.path().join("netsentinel.toml"),
        "[detector]\nmin_train_packets = 500\ntrain_window = 100\n",
    )
    .unwrap();
    let out = netsentinel(&["retrain"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("detector.train_window"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn config_defaults_print_the_shipped_file_and_the_effective_one_hides_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let out = netsentinel(&["config", "--defaults"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/netsentinel.toml")).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), shipped);
    let out = netsentinel(
        &[
            "config",
            "--set",
            "dashboard.token=hunter2",
            "--set",
            "server.port=7000",
        ],
        dir.path(),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("port = 7000") && !text.contains("hunter2"),
        "{text}"
    );
}

mod common;

/// A labelled capture: 600 ordinary TCP packets between a few hosts, then
/// one host sending SYNs to 300 ports (labelled 1 in the per-IP-packet file).
fn write_scan_capture(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    use common::pcap::{ethernet, ipv4_header, pcap_header, pcap_record, tcp_header, ETHERNET};
    let mut file = pcap_header(ETHERNET);
    let mut labels = String::new();
    let frame = |src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, flags: u8, len: usize| {
        let mut ip = ipv4_header(src, dst, 6, 20 + len);
        ip.extend(tcp_header(sport, dport, flags));
        ethernet(0x0800, &ip)
    };
    let mut t = 1_800_000_000u64 * 1_000_000;
    for i in 0..600u16 {
        let client = [10, 0, 0, 10 + (i % 5) as u8];
        let (sport, flags, len) = (50_000 + i % 7, 0x18, 200 + usize::from(i % 9) * 100);
        let f = if i % 2 == 0 {
            frame(client, [10, 0, 1, 1], sport, 443, flags, len)
        } else {
            frame([10, 0, 1, 1], client, 443, sport, 0x10, len)
        };
        t += 20_000;
        pcap_record(
            &mut file,
            (t / 1_000_000) as u32,
            (t % 1_000_000) as u32,
            &f,
        );
        labels.push_str("0\n");
    }
    for port in 1..=300u16 {
        let f = frame([10, 0, 3, 66], [10, 0, 1, 1], 41_337, port, 0x02, 0);
        t += 5_000;
        pcap_record(
            &mut file,
            (t / 1_000_000) as u32,
            (t % 1_000_000) as u32,
            &f,
        );
        labels.push_str("1\n");
    }
    let cap = dir.join("scan.pcap");
    std::fs::write(&cap, file).unwrap();
    let lab = dir.join("scan.pcap.labels");
    std::fs::write(&lab, labels).unwrap();
    (cap, lab)
}

#[test]
fn eval_pcap_judges_a_capture_with_and_without_context() {
    let dir = tempfile::tempdir().unwrap();
    let (cap, lab) = write_scan_capture(dir.path());
    let out = netsentinel(
        &[
            "eval-pcap",
            cap.to_str().unwrap(),
            "--labels",
            lab.to_str().unwrap(),
            "--json",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &v["captures"][0];
    assert_eq!(c["frames"], 900);
    assert_eq!(c["label_form"], "per_frame");
    for side in ["context", "per_packet"] {
        assert_eq!(c[side]["packets"], 900, "{c}");
        assert_eq!(c[side]["anomalies"], 300, "{c}");
        assert_eq!(
            c[side]["scored"], 900,
            "every packet scored, the first ones late: {c}"
        );
    }
    let auc = |side: &str| c[side]["auc"].as_f64().unwrap();
    assert!(
        auc("context") > 0.9,
        "the scan stands out with context: {c}"
    );
    assert!(auc("context") > auc("per_packet") + 0.1, "{c}");
    assert!(c["context"]["recall"].as_f64().unwrap() > 0.8, "{c}");
    // The table form, and the labels found beside the capture.
    let out = netsentinel(&["eval-pcap", cap.to_str().unwrap()], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("scan.pcap") && text.contains("per-packet") && text.contains("auc"),
        "{text}"
    );
}

#[test]
fn eval_pcap_refuses_labels_that_fit_neither_form_and_missing_labels() {
    let dir = tempfile::tempdir().unwrap();
    let (cap, lab) = write_scan_capture(dir.path());
    std::fs::write(&lab, "0\n1\n").unwrap();
    let cap = cap.to_str().unwrap();
    let out = netsentinel(&["eval-pcap", cap], dir.path());
    exits_2_saying(&out, &["2 labels, but", "900 frames"]);
    std::fs::remove_file(&lab).unwrap();
    let out = netsentinel(&["eval-pcap", cap], dir.path());
    exits_2_saying(&out, &["no labels file"]);
    let out = netsentinel(
        &["eval-pcap", "/nonexistent.pcap", "--labels", "x"],
        dir.path(),
    );
    exits_2_saying(&out, &["/nonexistent.pcap"]);
}
