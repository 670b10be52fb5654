//! The interactive menu of `netsentinel client`, as the seed had it: shown when
//! no mode flag is given and stdin is a terminal.

use std::io::{BufRead, Write};
use std::time::Duration;

use super::{Mode, Pacing};

/// The user's choice, or `None` for quit.
pub fn ask(name: &str, server: &str) -> std::io::Result<Option<(Mode, Pacing)>> {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut out = std::io::stderr();
    writeln!(out, "NetSentinel client {name} → server {server}")?;
    loop {
        writeln!(out, "  1) send a fixed number of packets")?;
        writeln!(out, "  2) send continuous traffic until Ctrl-C")?;
        writeln!(out, "  q) quit")?;
        match prompt(&mut input, &mut out, "choice", "1")?.as_str() {
            "1" => {
                let count = ask_number(&mut input, &mut out, "how many packets?", "100", |v| {
                    v >= 1.0
                })?;
                let delay = ask_number(
                    &mut input,
                    &mut out,
                    "delay between packets in seconds?",
                    "1",
                    |v| v >= 0.0,
                )?;
                return Ok(Some((Mode::Count(count as u64), pacing(delay))));
            }
            "2" => {
                let delay = ask_number(
                    &mut input,
                    &mut out,
                    "delay between packets in seconds?",
                    "1",
                    |v| v >= 0.0,
                )?;
                return Ok(Some((Mode::Continuous, pacing(delay))));
            }
            "q" | "Q" | "quit" => return Ok(None),
            other => writeln!(out, "{other:?} is not a choice: type 1, 2 or q")?,
        }
    }
}

fn pacing(delay: f64) -> Pacing {
    if delay == 0.0 {
        Pacing::Fastest
    } else {
        Pacing::Delay(Duration::from_secs_f64(delay))
    }
}

fn prompt(
    input: &mut impl BufRead,
    out: &mut impl Write,
    question: &str,
    default: &str,
) -> std::io::Result<String> {
    write!(out, "{question} [{default}]: ")?;
    out.flush()?;
    let mut line = String::new();
    if input.read_line(&mut line)? == 0 {
        return Ok("q".into());
    }
    let answer = line.trim();
    Ok(if answer.is_empty() {
        default.to_string()
    } else {
        answer.to_string()
    })
}

fn ask_number(
    input: &mut impl BufRead,
    out: &mut impl Write,
    question: &str,
    default: &str,
    ok: impl Fn(f64) -> bool,
) -> std::io::Result<f64> {
    loop {
        let answer = prompt(input, out, question, default)?;
        match answer.parse::<f64>() {
            Ok(v) if v.is_finite() && ok(v) => return Ok(v),
            _ => writeln!(out, "{answer:?} is not a valid number here")?,
        }
    }
}
