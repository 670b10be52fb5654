//! The interactive menu of `netsentinel client`, as the seed had it: shown when
//! no mode flag is given and stdin is a terminal.

use std::io::{BufRead, Write};
use std::time::Duration;

use super::{Mode, Pacing};

/// The user's choice, or `None` for quit, asked on the terminal.
pub fn ask(name: &str, server: &str) -> std::io::Result<Option<(Mode, Pacing)>> {
    ask_with(
        &mut std::io::stdin().lock(),
        &mut std::io::stderr(),
        name,
        server,
    )
}

/// [`ask`] over any input and output.
pub fn ask_with(
    mut input: &mut impl BufRead,
    mut out: &mut impl Write,
    name: &str,
    server: &str,
) -> std::io::Result<Option<(Mode, Pacing)>> {
    writeln!(out, "NetSentinel client {name} → server {server}")?;
    loop {
        writeln!(out, "  1) send a fixed number of packets")?;
        writeln!(out, "  2) send continuous traffic until Ctrl-C")?;
        writeln!(out, "  q) quit")?;
        let mode = match prompt(&mut input, &mut out, "choice", "1")?.as_str() {
            "1" => {
                let count = ask_number(&mut input, &mut out, "how many packets?", "100", |v| {
                    v >= 1.0
                })?;
                Mode::Count(count as u64)
            }
            "2" => Mode::Continuous,
            "q" | "Q" | "quit" => return Ok(None),
            other => {
                writeln!(out, "{other:?} is not a choice: type 1, 2 or q")?;
                continue;
            }
        };
        let delay = ask_number(
            &mut input,
            &mut out,
            "delay between packets in seconds?",
            "1",
            |v| v >= 0.0,
        )?;
        return Ok(Some((mode, pacing(delay))));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn run(answers: &str) -> Option<(Mode, Pacing)> {
        let mut out = Vec::new();
        ask_with(&mut answers.as_bytes(), &mut out, "c", "h:1").unwrap()
    }

    #[test]
    fn menu_asks_like_the_seed_and_checks_answers() {
        match run("1\n20\n0.5\n") {
            Some((Mode::Count(20), Pacing::Delay(d))) => assert_eq!(d, Duration::from_millis(500)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            run("x\n2\n\n"),
            Some((Mode::Continuous, Pacing::Delay(_)))
        ));
        assert!(matches!(
            run("1\n-3\n10\n0\n"),
            Some((Mode::Count(10), Pacing::Fastest))
        ));
        assert!(run("q\n").is_none());
        assert!(run("").is_none(), "end of input quits");
    }
}
