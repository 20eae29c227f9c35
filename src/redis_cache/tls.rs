//! TLS for `rediss://` URLs: rustls through the redis crate, with the crypto provider and the
//! trust roots chosen here.
//!
//! - Crypto provider: rustls needs one per process and panics when it finds none (or two it
//!   cannot choose between). Before a TLS connection vlive installs ring's as the process
//!   default, unless the application installed one already: then the application's is used.
//! - Trust: the system's roots (the redis crate loads them) and, with
//!   [`tls_ca_pem`](super::RedisCacheBuilder::tls_ca_pem), a private CA *beside* them. redis'
//!   `build_with_tls` trusts only the roots it is given, so the system's are added to the bundle.
//! - Never plain text by surprise: TLS options with a `redis://` URL are a configuration error,
//!   and a certificate that does not verify fails the connection.

use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::{Client, ConnectionAddr, ConnectionInfo, IntoConnectionInfo};
use redis::{ClientTlsConfig, TlsCertificates};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::link::Timeouts;
use crate::error::{Error, Result};

/// What the builder was told about TLS. Certificates and keys are never printed.
#[derive(Clone, Default)]
pub(super) struct TlsOptions {
    /// PEM certificates of a private CA, trusted besides the system's roots.
    pub(super) ca_pem: Option<Vec<u8>>,
    /// A client certificate chain and its private key, both PEM, for mutual TLS.
    pub(super) client: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field("private_ca", &self.ca_pem.is_some())
            .field("client_certificate", &self.client.is_some())
            .finish()
    }
}

impl TlsOptions {
    fn is_set(&self) -> bool {
        self.ca_pem.is_some() || self.client.is_some()
    }
}

/// The client for `url`: TLS for `rediss://`, with `options`; plain for `redis://`, refused if
/// TLS options were given.
pub(super) fn client(url: &str, options: &TlsOptions) -> Result<Client> {
    let info = connection_info(url, options)?;
    match tls_certificates(options)? {
        None => Client::open(info).map_err(|e| invalid(format!("the redis client: {e}"))),
        Some(certificates) => Client::build_with_tls(info, certificates)
            .map_err(|e| invalid(format!("the TLS settings were refused: {e}"))),
    }
}

/// The cluster client for the seed `urls` (all TLS or all plain, with the same credentials),
/// and a client for each seed, for connections to one node.
pub(super) fn cluster_client(
    urls: &[String],
    options: &TlsOptions,
    timeouts: Timeouts,
) -> Result<(ClusterClient, Vec<Client>)> {
    let Some(first) = urls.first() else {
        return Err(invalid(
            "a Redis Cluster needs at least one seed URL".into(),
        ));
    };
    let _ = first;
    let seeds = urls
        .iter()
        .map(|url| client(url, options))
        .collect::<Result<Vec<_>>>()?;
    let infos = urls
        .iter()
        .map(|url| connection_info(url, options))
        .collect::<Result<Vec<_>>>()?;
    let mut builder = ClusterClientBuilder::new(infos)
        .connection_timeout(timeouts.connect)
        .response_timeout(timeouts.response)
        // A dead master answers nothing until its replica is promoted (seconds): a call retries
        // a few times, bounded overall, then fails as a timeout and the caller decides.
        .retries(2)
        .overall_response_timeout(Some(timeouts.response + 2 * timeouts.connect));
    if let Some(certificates) = tls_certificates(options)? {
        builder = builder.certs(certificates);
    }
    let cluster = builder.build().map_err(|e| {
        // Its messages are fixed texts ("Cannot use different password among initial
        // nodes."), never the URLs.
        invalid(format!("the cluster seeds were refused: {e}"))
    })?;
    Ok((cluster, seeds))
}

/// `url` parsed, checked against `options` (TLS options need TLS); installs the crypto
/// provider for a TLS URL.
fn connection_info(url: &str, options: &TlsOptions) -> Result<ConnectionInfo> {
    // The parser's message could echo the URL (and its password): say nothing of it.
    let info: ConnectionInfo = url.into_connection_info().map_err(|_| {
        invalid(
            "the redis URL does not parse (it is not repeated here: it may hold a password)".into(),
        )
    })?;
    let tls = matches!(info.addr(), ConnectionAddr::TcpTls { .. });
    if !tls && options.is_set() {
        return Err(invalid(
            "TLS options (tls_ca_pem, tls_client_cert) need a rediss:// URL; this one is not \
             TLS, and vlive never falls back to plain text"
                .into(),
        ));
    }
    if tls {
        ensure_crypto_provider();
    }
    Ok(info)
}

/// The certificates `options` name, `None` when they name none.
fn tls_certificates(options: &TlsOptions) -> Result<Option<TlsCertificates>> {
    if !options.is_set() {
        return Ok(None);
    }
    Ok(Some(TlsCertificates {
        client_tls: options
            .client
            .as_ref()
            .map(client_certificate)
            .transpose()?,
        root_cert: options.ca_pem.as_deref().map(trust_bundle).transpose()?,
    }))
}

/// Installs ring's provider as rustls' process default, unless one is installed already (by the
/// application, or by another thread just now: either way that one stays).
///
/// rustls 0.23.48 deprecates ring's provider for lacking post-quantum key exchange, and
/// recommends aws-lc-rs, whose C build would add minutes to every build of vlive. An
/// application that wants post-quantum key exchange installs aws-lc-rs' provider itself, before
/// connecting, and vlive uses it (`tests/redis_tls_app_provider.rs`).
pub(crate) fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        #[allow(deprecated)]
        let ring = rustls::crypto::ring::default_provider();
        let _ = ring.install_default();
    }
}

/// The private CA's certificates followed by the system's roots, as one PEM bundle.
fn trust_bundle(ca_pem: &[u8]) -> Result<Vec<u8>> {
    let private = certificates(ca_pem, "tls_ca_pem")?;
    let mut bundle = Vec::new();
    for der in private.iter().chain(system_roots().iter()) {
        bundle.extend_from_slice(&pem("CERTIFICATE", der));
    }
    Ok(bundle)
}

/// The system's trust roots. One that cannot be read is skipped (and logged): the private CA
/// still applies, and the redis crate trusts the system's roots the same way when no CA is given.
fn system_roots() -> Vec<CertificateDer<'static>> {
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::warn!(%error, "a system trust root could not be read");
    }
    found.certs
}

/// The client certificate chain and key, checked to parse.
fn client_certificate((cert, key): &(Vec<u8>, Vec<u8>)) -> Result<ClientTlsConfig> {
    certificates(cert, "tls_client_cert's certificate")?;
    PrivateKeyDer::from_pem_slice(key).map_err(|e| {
        invalid(format!(
            "tls_client_cert's key: no PEM private key could be read ({e})"
        ))
    })?;
    Ok(ClientTlsConfig {
        client_cert: cert.clone(),
        client_key: key.clone(),
    })
}

/// Every certificate in a PEM text; an error naming `what` if there is none or one is broken.
fn certificates(pem_text: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let found: Vec<_> = CertificateDer::pem_slice_iter(pem_text)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| invalid(format!("{what}: a PEM certificate could not be read ({e})")))?;
    if found.is_empty() {
        return Err(invalid(format!("{what}: holds no PEM certificate")));
    }
    Ok(found)
}

/// `der` as a PEM block with `label`.
fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    let body = base64(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out.into_bytes()
}

/// Standard base64 with padding: all PEM needs, and too small for a dependency.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn invalid(reason: String) -> Error {
    Error::InvalidConfig { reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
        }
    }

    #[test]
    fn a_pem_block_reads_back_as_the_same_der() {
        let der: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let block = pem("CERTIFICATE", &der);
        let read: Vec<_> = CertificateDer::pem_slice_iter(&block)
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].as_ref(), der.as_slice());
    }

    #[test]
    fn tls_options_need_a_rediss_url() {
        let options = TlsOptions {
            ca_pem: Some(b"whatever".to_vec()),
            client: None,
        };
        let err = client("redis://127.0.0.1:1/", &options).unwrap_err();
        assert!(err.to_string().contains("rediss://"), "{err}");
    }

    #[test]
    fn a_ca_without_certificates_is_refused_by_name() {
        let options = TlsOptions {
            ca_pem: Some(b"not a certificate".to_vec()),
            client: None,
        };
        let err = client("rediss://127.0.0.1:1/", &options).unwrap_err();
        assert!(err.to_string().contains("tls_ca_pem"), "{err}");
    }

    #[test]
    fn a_client_key_that_does_not_parse_is_refused_by_name() {
        let options = TlsOptions {
            ca_pem: None,
            client: Some((b"no cert".to_vec(), b"no key".to_vec())),
        };
        let err = client("rediss://127.0.0.1:1/", &options).unwrap_err();
        assert!(err.to_string().contains("tls_client_cert"), "{err}");
    }
}
