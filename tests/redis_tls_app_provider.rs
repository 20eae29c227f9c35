//! An application that installed its own rustls crypto provider before vlive connects over TLS:
//! vlive must neither panic (rustls panics on a second install only if one insists) nor replace
//! it. Its own test binary, since the provider is process-wide: here the application's is
//! installed first, always.
#![cfg(feature = "redis")]

mod common;
#[path = "common/redis_server.rs"]
mod redis_server;
#[path = "common/tls.rs"]
mod tls;

use std::sync::Arc;

use common::{tag, value, within};
use rustls::crypto::{CryptoProvider, ring};
use tls::{Ca, TlsServer};
use vlive::{Cache, RedisCache};

// ring's provider is deprecated (no post-quantum key exchange) but is what the library
// itself installs; any provider serves to stand for the application's.
#[allow(deprecated)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_application_s_own_provider_is_kept_and_used() {
    // The application's pick: ring restricted to TLS 1.3 suites, so it is recognisably its own.
    let mut own = ring::default_provider();
    own.cipher_suites.retain(|suite| suite.tls13().is_some());
    let suites = own.cipher_suites.len();
    assert!(suites < ring::default_provider().cipher_suites.len());
    own.install_default()
        .expect("the first provider of the process");

    let ca = Ca::new("vlive test CA");
    let server = TlsServer::start(&ca, false);
    let cache = within(
        "connect",
        RedisCache::builder(&server.url(), "ns")
            .tls_ca_pem(ca.pem())
            .connect(),
    )
    .await
    .unwrap();
    cache.put("k", value("v")).await.unwrap();
    assert_eq!(tag(&cache, "k").await.as_deref(), Some("v"));

    let installed: Arc<CryptoProvider> = CryptoProvider::get_default().unwrap().clone();
    assert_eq!(
        installed.cipher_suites.len(),
        suites,
        "vlive replaced the application's provider"
    );
}
