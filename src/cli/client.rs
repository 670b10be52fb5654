//! `netsentinel client`'s command line and configuration → validated
//! [`ClientOptions`]: the sender name, the server to dial, what to send and
//! how fast (asking in a terminal when no mode flag is given), and for live
//! capture the effective filter that leaves the client's own connection out.

use std::io::IsTerminal;
use std::time::Duration;

use super::ClientArgs;
use crate::config::Config;
use crate::protocol::MAX_CLIENT_NAME_CHARS;

use crate::capture::live::{self, LiveOptions, FULL_SNAPLEN, HEADERS_SNAPLEN};
use crate::client::{menu, ClientError, ClientOptions, Mode, Pacing};

impl ClientOptions {
    /// The options `args` ask for under `config`; `None` when the user chose
    /// to quit the interactive menu.
    pub fn from_args(
        config: &Config,
        args: &ClientArgs,
    ) -> Result<Option<ClientOptions>, ClientError> {
        if args.list_interfaces {
            for line in live::list_interfaces()? {
                println!("{line}");
            }
            return Ok(None);
        }
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
            Some(s) => check_server_address(s)?,
            None if config.server.port == 0 => {
                return Err(ClientError::Usage(
                    "server.port is 0 (the server picks a free port and logs it): give the \
                     server's address with --server HOST:PORT"
                        .into(),
                ))
            }
            None => crate::net::dial_host_port(&config.server.host, config.server.port),
        };
        let Some((mut mode, pacing)) = mode_and_pacing(args, &name, &server)? else {
            return Ok(None);
        };
        if let Mode::Live(live) = &mut mode {
            live.filter = Some(without_own_connection(live.filter.as_deref(), &server));
        }
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
            wait: args.wait,
            json: args.json,
            token: args.token.clone(),
            tls: tls_from_args(args)?,
        }))
    }
}

/// `--tls-ca FILE` (trust that CA) or `--tls` (the system's roots); neither: plain TCP.
fn tls_from_args(args: &ClientArgs) -> Result<Option<crate::client::tls::TlsClient>, ClientError> {
    if args.tls_ca.is_none() && !args.tls {
        return Ok(None);
    }
    crate::client::tls::TlsClient::new(args.tls_ca.as_deref())
        .map(Some)
        .map_err(ClientError::Usage)
}

/// `--server` must be HOST:PORT (IPv6 as `[ADDR]:PORT`), PORT 1-65535.
fn check_server_address(given: &str) -> Result<String, ClientError> {
    let usage = |why: &str| {
        ClientError::Usage(format!(
            "--server {given:?}: {why}; give HOST:PORT, e.g. 127.0.0.1:9999 or [::1]:9999"
        ))
    };
    let Some((host, port)) = given.rsplit_once(':') else {
        return Err(usage("no port"));
    };
    if host.is_empty() || host == "[]" {
        return Err(usage("no host"));
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err(usage("an IPv6 address needs brackets"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(given.to_string()),
        _ => Err(usage(&format!("{port:?} is not a port (1-65535)"))),
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
    if let Some(interface) = &args.interface {
        let options = live_options(args, interface);
        return Ok(Some((Mode::Live(options), Pacing::Fastest)));
    }
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
                    "choose what to send: --count N, --continuous, --pcap FILE or \
                     --interface IFACE (in a terminal, the client asks)"
                        .into(),
                ));
            }
            let interfaces = live::interface_names().unwrap_or_default();
            return menu::ask(name, server, &interfaces).map_err(ClientError::Terminal);
        }
    };
    Ok(Some(chosen))
}

/// The capture `args` ask for on `interface`.
fn live_options(args: &ClientArgs, interface: &str) -> LiveOptions {
    let snaplen = args.snaplen.unwrap_or(if args.capture_file.is_some() {
        FULL_SNAPLEN
    } else {
        HEADERS_SNAPLEN
    });
    LiveOptions {
        filter: args.filter.clone(),
        snaplen,
        promisc: args.promisc,
        buffer: args.capture_buffer as usize,
        count: args.count,
        duration: args.duration.map(Duration::from_secs_f64),
        capture_file: args.capture_file.clone(),
        rotate_bytes: args.capture_file_size.saturating_mul(1_000_000),
        ..LiveOptions::on(interface)
    }
}

/// The BPF filter that keeps `filter` and leaves out the client's own
/// connection to `server` (capturing it would feed the capture its own
/// records, for ever). A server name is resolved; one that does not resolve
/// leaves the filter as it is (connecting will fail with a clear message).
pub fn without_own_connection(filter: Option<&str>, server: &str) -> String {
    use std::net::ToSocketAddrs;
    let addrs: Vec<std::net::SocketAddr> = server
        .to_socket_addrs()
        .map(|a| a.collect())
        .unwrap_or_default();
    let own: Vec<String> = addrs
        .iter()
        .map(|a| format!("(host {} and tcp port {})", a.ip(), a.port()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    match (
        filter.map(str::trim).filter(|f| !f.is_empty()),
        own.is_empty(),
    ) {
        (Some(f), true) => f.to_string(),
        (None, true) => String::new(),
        (Some(f), false) => format!("({f}) and not ({})", own.join(" or ")),
        (None, false) => format!("not ({})", own.join(" or ")),
    }
}

#[cfg(test)]
mod tests {
    use super::without_own_connection;

    #[test]
    fn the_clients_own_connection_is_left_out_of_the_capture() {
        assert_eq!(
            without_own_connection(Some("udp"), "127.0.0.1:7000"),
            "(udp) and not ((host 127.0.0.1 and tcp port 7000))"
        );
        assert_eq!(
            without_own_connection(None, "[::1]:7000"),
            "not ((host ::1 and tcp port 7000))"
        );
        assert_eq!(
            without_own_connection(Some(" "), "127.0.0.1:9"),
            "not ((host 127.0.0.1 and tcp port 9))"
        );
    }
}
