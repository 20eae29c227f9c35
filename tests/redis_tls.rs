//! RedisCache over TLS against a real `redis-server` with TLS on: a private CA trusted beside
//! the system's roots, mutual TLS, and the failures that must be quick, typed and never plain
//! text (a certificate that does not verify, a missing client certificate, a plain URL to a
//! TLS port, TLS options with a plain URL).
#![cfg(feature = "redis")]

mod common;
#[path = "common/redis_server.rs"]
mod redis_server;
#[path = "common/tls.rs"]
mod tls;

use std::time::Duration;

use common::{tag, value, within};
use tls::{Ca, TlsServer};
use vlive::{Cache, Error, MemCache, RedisCache, RedisFaultKind, TieredCache};

/// The kind of a Redis fault, or a panic naming what came instead.
fn fault_kind(result: Result<RedisCache, Error>) -> RedisFaultKind {
    match result {
        Err(Error::Redis(fault)) => fault.kind,
        Err(other) => panic!("expected a Redis fault, got {other}"),
        Ok(_) => panic!("connected where it must not"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_ca_lets_a_rediss_cache_connect_and_serve() {
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
    cache.put("k/1", value("one")).await.unwrap();
    assert_eq!(tag(&cache, "k/1").await.as_deref(), Some("one"));
    cache.invalidate_prefix("k/").await.unwrap();
    assert_eq!(tag(&cache, "k/1").await, None);
}

/// The near tier's reader has connections of its own (a blocking XREAD): they are TLS too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiered_caches_stay_coherent_over_tls() {
    let ca = Ca::new("vlive test CA");
    let server = TlsServer::start(&ca, false);
    let tiered = || async {
        let far = RedisCache::builder(&server.url(), "ns")
            .tls_ca_pem(ca.pem())
            .connect()
            .await
            .unwrap();
        TieredCache::builder(MemCache::new(), far)
            .poll_interval(Duration::from_millis(50))
            .build()
            .unwrap()
    };
    let (a, b) = (within("a", tiered()).await, within("b", tiered()).await);
    a.put("k", value("v1")).await.unwrap();
    assert_eq!(tag(&b, "k").await.as_deref(), Some("v1"));
    a.put("k", value("v2")).await.unwrap();
    within("sync", b.sync()).await;
    assert_eq!(tag(&b, "k").await.as_deref(), Some("v2"));
    a.invalidate_prefix("k").await.unwrap();
    within("sync", b.sync()).await;
    assert_eq!(tag(&b, "k").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_that_does_not_verify_fails_connect_with_a_tls_error() {
    let ca = Ca::new("vlive test CA");
    let server = TlsServer::start(&ca, false);
    // Trusting only the system's roots, and then another private CA: neither signed it.
    let untrusted = RedisCache::builder(&server.url(), "ns").connect();
    let kind = fault_kind(within("connect", untrusted).await);
    assert!(matches!(kind, RedisFaultKind::Tls(_)), "{kind}");
    assert!(kind.to_string().contains("certificate"), "{kind}");
    let other_ca = Ca::new("another CA");
    let wrong = RedisCache::builder(&server.url(), "ns")
        .tls_ca_pem(other_ca.pem())
        .connect();
    let kind = fault_kind(within("connect", wrong).await);
    assert!(matches!(kind, RedisFaultKind::Tls(_)), "{kind}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_name_the_certificate_does_not_name_fails_connect() {
    let ca = Ca::new("vlive test CA");
    let server = TlsServer::start_named(&ca, &["cache.example.com"], false);
    let url = server.url();
    let connect = RedisCache::builder(&url, "ns")
        .tls_ca_pem(ca.pem())
        .connect();
    let kind = fault_kind(within("connect", connect).await);
    assert!(matches!(kind, RedisFaultKind::Tls(_)), "{kind}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_needs_the_client_certificate() {
    let ca = Ca::new("vlive test CA");
    let server = TlsServer::start(&ca, true);
    let client = ca.issue(&["vlive client"]);
    let cache = within(
        "connect",
        RedisCache::builder(&server.url(), "ns")
            .tls_ca_pem(ca.pem())
            .tls_client_cert(client.cert_pem.clone(), client.key_pem.clone())
            .connect(),
    )
    .await
    .unwrap();
    cache.put("k", value("v")).await.unwrap();
    assert_eq!(tag(&cache, "k").await.as_deref(), Some("v"));

    let without = RedisCache::builder(&server.url(), "ns")
        .tls_ca_pem(ca.pem())
        .connect();
    let kind = fault_kind(within("connect", without).await);
    assert!(matches!(kind, RedisFaultKind::Tls(_)), "{kind}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_url_to_a_tls_port_fails_and_does_not_hang() {
    let ca = Ca::new("vlive test CA");
    let server = TlsServer::start(&ca, false);
    let plain = format!("redis://127.0.0.1:{}/", server.tls_port);
    let connect = RedisCache::builder(&plain, "ns")
        .connect_timeout(Duration::from_secs(1))
        .response_timeout(Duration::from_secs(1))
        .connect();
    assert!(within("connect", connect).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_options_with_a_plain_url_are_a_configuration_error() {
    let ca = Ca::new("vlive test CA");
    let server = TlsServer::start(&ca, false);
    let connect = RedisCache::builder(&server.server.url(), "ns")
        .tls_ca_pem(ca.pem())
        .connect();
    match connect.await {
        Err(Error::InvalidConfig { reason }) => assert!(reason.contains("rediss://"), "{reason}"),
        Err(other) => panic!("expected InvalidConfig, got {other}"),
        Ok(_) => panic!("a TLS option was ignored"),
    }
}

/// The redis crate's `#insecure` URL fragment turns verification off where its insecure feature
/// is built; vlive does not build it, so such a URL cannot connect to a server it cannot verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insecure_url_does_not_skip_verification() {
    let ca = Ca::new("vlive test CA");
    let server = TlsServer::start(&ca, false);
    let insecure = format!("{}#insecure", server.url());
    let connect = RedisCache::builder(&insecure, "ns").connect();
    assert!(within("connect", connect).await.is_err());
}
