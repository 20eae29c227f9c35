//! A throwaway PKI for the TLS tests: a CA, a server certificate for 127.0.0.1 and localhost,
//! and a client certificate, all made fresh per test with rcgen, and a `redis-server` that
//! speaks TLS on a port of its own (its plain port stays, for the readiness check).
#![allow(dead_code)]

use rcgen::{BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair};

use crate::redis_server::{RedisServer, free_port};

/// A certificate and its key, PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A CA that can sign certificates.
pub struct Ca {
    cert: Certificate,
    key: KeyPair,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A certificate for `names` (DNS names or IP addresses), signed by this CA.
    pub fn issue(&self, names: &[&str]) -> Issued {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "vlive test");
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// A `redis-server` with TLS on its own port, its certificate signed by `ca`.
pub struct TlsServer {
    pub server: RedisServer,
    pub tls_port: u16,
    _files: tempfile::TempDir,
}

impl TlsServer {
    /// `client_auth`: whether the server demands a client certificate signed by `ca`.
    pub fn start(ca: &Ca, client_auth: bool) -> TlsServer {
        Self::start_named(ca, &["127.0.0.1", "localhost"], client_auth)
    }

    /// The same, its certificate naming `names` (DNS names or IP addresses).
    pub fn start_named(ca: &Ca, names: &[&str], client_auth: bool) -> TlsServer {
        let files = tempfile::tempdir().unwrap();
        let issued = ca.issue(names);
        let write = |name: &str, text: &str| {
            let path = files.path().join(name);
            std::fs::write(&path, text).unwrap();
            path.to_str().unwrap().to_owned()
        };
        let cert = write("server.crt", &issued.cert_pem);
        let key = write("server.key", &issued.key_pem);
        let ca_file = write("ca.crt", &ca.pem());
        let tls_port = free_port().to_string();
        let auth = if client_auth { "yes" } else { "no" };
        let server = RedisServer::start_with(&[
            "--tls-port",
            &tls_port,
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca_file,
            "--tls-auth-clients",
            auth,
        ]);
        TlsServer {
            server,
            tls_port: tls_port.parse().unwrap(),
            _files: files,
        }
    }

    /// `rediss://127.0.0.1:TLS_PORT/`.
    pub fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}/", self.tls_port)
    }
}
