//! `--metrics-addr`: serves vlive's metrics at `http://ADDR/metrics` for Prometheus to scrape
//! (feature `metrics`; docs/metrics.md lists them).

use std::net::SocketAddr;

use crate::demo::DemoResult;

/// Installs the Prometheus exporter with its HTTP listener on `addr`. Call it before any cache
/// is built: vlive registers its metric handles once, when a cache is built, with the recorder
/// installed then.
#[cfg(feature = "metrics")]
pub fn serve(addr: SocketAddr) -> DemoResult<()> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|e| format!("cannot serve metrics on {addr}: {e}"))?;
    println!("metrics: http://{addr}/metrics");
    Ok(())
}

/// Without the feature there is nothing to serve: say how to get it.
#[cfg(not(feature = "metrics"))]
pub fn serve(addr: SocketAddr) -> DemoResult<()> {
    Err(format!(
        "--metrics-addr {addr}: this build has no metrics; build with `--features metrics` \
         (cargo run --release --features metrics --example live_demo -- --metrics-addr {addr})"
    )
    .into())
}
