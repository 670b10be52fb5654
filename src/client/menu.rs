//! The interactive menu of `netsentinel client`, as the seed had it: shown when
//! no mode flag is given and stdin is a terminal.

use std::io::{BufRead, Write};
use std::time::Duration;

use super::{Mode, Pacing};
use crate::capture::live::LiveOptions;

/// The user's choice, or `None` for quit, asked on the terminal;
/// `interfaces` are the ones live capture may use.
pub fn ask(
    name: &str,
    server: &str,
    interfaces: &[String],
) -> std::io::Result<Option<(Mode, Pacing)>> {
    ask_with(
        &mut std::io::stdin().lock(),
        &mut std::io::stderr(),
        name,
        server,
        interfaces,
    )
}

/// [`ask`] over any input and output.
pub fn ask_with(
    mut input: &mut impl BufRead,
    mut out: &mut impl Write,
    name: &str,
    server: &str,
    interfaces: &[String],
) -> std::io::Result<Option<(Mode, Pacing)>> {
    writeln!(out, "NetSentinel client {name} → server {server}")?;
    loop {
        writeln!(out, "  1) send a fixed number of packets")?;
        writeln!(out, "  2) send continuous traffic until Ctrl-C")?;
        writeln!(out, "  3) capture from an interface until Ctrl-C")?;
        writeln!(out, "  q) quit")?;
        let mode = match prompt(&mut input, &mut out, "choice", "1")?.as_str() {
            "1" => {
                let count = ask_number(&mut input, &mut out, "how many packets?", "100", |v| {
                    v >= 1.0
                })?;
                Mode::Count(count as u64)
            }
            "2" => Mode::Continuous,
            "3" => match ask_capture(&mut input, &mut out, interfaces)? {
                Some(live) => return Ok(Some((Mode::Live(live), Pacing::Fastest))),
                None => return Ok(None),
            },
            "q" | "Q" | "quit" => return Ok(None),
            other => {
                writeln!(out, "{other:?} is not a choice: type 1, 2, 3 or q")?;
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

/// Which interface (one of `interfaces`) and which filter; `None` to quit.
fn ask_capture(
    input: &mut impl BufRead,
    out: &mut impl Write,
    interfaces: &[String],
) -> std::io::Result<Option<LiveOptions>> {
    let Some(first) = interfaces.first() else {
        writeln!(
            out,
            "no interface can be captured here (is libpcap installed?)"
        )?;
        return Ok(None);
    };
    writeln!(out, "interfaces: {}", interfaces.join(", "))?;
    let interface = loop {
        let answer = prompt(input, out, "interface?", first)?;
        if answer == "q" {
            return Ok(None);
        }
        if interfaces.contains(&answer) {
            break answer;
        }
        writeln!(out, "{answer:?} is not one of them")?;
    };
    let filter = prompt(input, out, "BPF filter (tcpdump syntax, - for none)?", "-")?;
    let mut live = LiveOptions::on(&interface);
    live.filter = (filter != "-" && filter != "q").then_some(filter);
    Ok(Some(live))
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
        let interfaces = ["lo".to_string(), "eth0".to_string()];
        ask_with(&mut answers.as_bytes(), &mut out, "c", "h:1", &interfaces).unwrap()
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
        match run("3\nwlan9\neth0\ntcp port 80\n") {
            Some((Mode::Live(live), Pacing::Fastest)) => {
                assert_eq!(live.interface, "eth0");
                assert_eq!(live.filter.as_deref(), Some("tcp port 80"));
            }
            other => panic!("{other:?}"),
        }
        match run("3\n\n\n") {
            Some((Mode::Live(live), _)) => {
                assert_eq!(live.interface, "lo");
                assert_eq!(live.filter, None);
            }
            other => panic!("{other:?}"),
        }
        assert!(run("q\n").is_none());
        assert!(run("").is_none(), "end of input quits");
    }
}
