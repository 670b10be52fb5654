//! `netsentinel client`'s command line and configuration → validated
//! [`ClientOptions`]: the sender name, the server to dial, what to send and
//! how fast (asking in a terminal when no mode flag is given).

use std::io::IsTerminal;
use std::time::Duration;

use super::ClientArgs;
use crate::config::Config;
use crate::protocol::MAX_CLIENT_NAME_CHARS;

use crate::client::{menu, ClientError, ClientOptions, Mode, Pacing};

impl ClientOptions {
    /// The options `args` ask for under `config`; `None` when the user chose
    /// to quit the interactive menu.
    pub fn from_args(
        config: &Config,
        args: &ClientArgs,
    ) -> Result<Option<ClientOptions>, ClientError> {
        let name = args
            .name
            .clone()
            .unwrap_or_else(|| format!("client-{}", std::process::id()));
        if name.trim().is_empty()
            || name.chars().count() > MAX_CLIENT_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(ClientError::Usage(format!(
                "client name {name:?} must be 1-{MAX_CLIENT_NAME_CHARS} characters without control characters"
            )));
        }
        let server = match &args.server {
            Some(s) => s.clone(),
            None if config.server.port == 0 => {
                return Err(ClientError::Usage(
                    "server.port is 0 (the server picks a free port and logs it): give the \
                     server's address with --server HOST:PORT"
                        .into(),
                ))
            }
            None => crate::net::dial_host_port(&config.server.host, config.server.port),
        };
        let Some((mode, pacing)) = mode_and_pacing(args, &name, &server)? else {
            return Ok(None);
        };
        Ok(Some(ClientOptions {
            name,
            server,
            mode,
            pacing,
            anomaly_ratio: args.anomaly_ratio,
            scenario: args.scenario,
            attack_share: args.attack_share,
            seed: args.seed,
            protocols: config.traffic.protocols.clone(),
            verbose: args.verbose,
            progress: true,
            window: args.window as usize,
        }))
    }
}

/// What to send and how fast: from the flags, else asked in a terminal.
fn mode_and_pacing(
    args: &ClientArgs,
    name: &str,
    server: &str,
) -> Result<Option<(Mode, Pacing)>, ClientError> {
    let flag_pacing = match (args.delay, args.rate) {
        (Some(d), _) => Some(Pacing::Delay(Duration::from_secs_f64(d))),
        (None, Some(r)) if r > 0.0 => Some(Pacing::Rate(r)),
        (None, Some(_)) => Some(Pacing::Fastest),
        (None, None) => None,
    };
    let chosen = match (&args.pcap, args.count, args.continuous) {
        (Some(file), _, _) => (
            Mode::Pcap {
                file: file.clone(),
                labels: args.labels.clone(),
                speed: args.speed,
            },
            flag_pacing.unwrap_or(Pacing::Fastest),
        ),
        (None, Some(n), _) => (Mode::Count(n), flag_pacing.unwrap_or(Pacing::Fastest)),
        (None, None, true) => (Mode::Continuous, flag_pacing.unwrap_or(Pacing::Rate(20.0))),
        (None, None, false) => {
            if !std::io::stdin().is_terminal() {
                return Err(ClientError::Usage(
                    "choose what to send: --count N, --continuous or --pcap FILE \
                     (in a terminal, the client asks)"
                        .into(),
                ));
            }
            return menu::ask(name, server).map_err(ClientError::Terminal);
        }
    };
    Ok(Some(chosen))
}
