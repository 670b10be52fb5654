//! Addresses as a peer must dial them. A listener bound to the unspecified
//! address (`0.0.0.0` or `::`) accepts on every interface but cannot itself be
//! dialled; loopback reaches it from this host. Also the rustls client
//! configuration the client's `--tls` and the alerts' HTTPS webhook share.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// `addr`, with an unspecified IP replaced by loopback of the same family.
pub fn dialable(addr: SocketAddr) -> SocketAddr {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            IpAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}

/// `host:port` to dial a listener configured on `host`: a wildcard host
/// becomes loopback, an IPv6 address is bracketed.
pub fn dial_host_port(host: &str, port: u16) -> String {
    let host = match host {
        "0.0.0.0" => "127.0.0.1",
        "::" | "[::]" => "::1",
        h => h,
    };
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A rustls client configuration trusting the certificates in the PEM file
/// `ca`, or the system's roots (the client's `--tls` and the alerts' HTTPS webhook).
pub fn client_config(
    ca: Option<&std::path::Path>,
) -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<_, _>>())
                .map_err(|e| format!("--tls-ca {}: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "--tls-ca {}: no PEM certificate in it",
                    path.display()
                ));
            }
            for c in certs {
                roots
                    .add(c)
                    .map_err(|e| format!("--tls-ca {}: {e}", path.display()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(
                    "--tls: no usable root certificate on this system; give the \
                            server's CA with --tls-ca FILE"
                        .into(),
                );
            }
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(std::sync::Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_become_loopback_and_v6_is_bracketed() {
        assert_eq!(dial_host_port("0.0.0.0", 9), "127.0.0.1:9");
        assert_eq!(dial_host_port("::", 9), "[::1]:9");
        assert_eq!(dial_host_port("fe80::1", 9), "[fe80::1]:9");
        assert_eq!(dial_host_port("example.org", 9), "example.org:9");
        let any: SocketAddr = "0.0.0.0:7".parse().unwrap();
        assert_eq!(dialable(any).to_string(), "127.0.0.1:7");
        let any6: SocketAddr = "[::]:7".parse().unwrap();
        assert_eq!(dialable(any6).to_string(), "[::1]:7");
        let real: SocketAddr = "10.1.2.3:7".parse().unwrap();
        assert_eq!(dialable(real), real);
    }
}
