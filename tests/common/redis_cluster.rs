//! A throwaway Redis Cluster per test: six `redis-server --cluster-enabled yes` (three masters,
//! three replicas) joined by `redis-cli --cluster create`, on loopback ports, with a node
//! timeout of one second so that a failover after a kill takes seconds, not the default 15 s.
//! Every node is killed when the cluster is dropped.
//!
//! Needs `redis-server` and `redis-cli` (Debian's redis-server package brings both; .ci/run
//! installs it). Missing, the test FAILS: a green run must mean the cluster tests ran.
#![allow(dead_code)]

use std::process::Command;
use std::time::Duration;

// The including test declares `mod redis_server` (tests/common/redis_server.rs) beside this.
use super::redis_server::RedisServer;

/// A running cluster; see the module docs.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Three masters with one replica each, every slot served.
    pub async fn start() -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..6)
            .map(|_| {
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "1000",
                    // Replicas sync at once (the default waits 5 s for more to join); a
                    // replica that never synced refuses to take over.
                    "--repl-diskless-sync-delay",
                    "0",
                ])
            })
            .collect();
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for node in &nodes {
            create.arg(format!("127.0.0.1:{}", node.port()));
        }
        create.args(["--cluster-replicas", "1", "--cluster-yes"]);
        let output = create.output().unwrap_or_else(|e| {
            panic!(
                "cannot run redis-cli ({e}): the cluster tests need it (Debian's redis-server \
                 package brings it; .ci/run installs that)"
            )
        });
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        let cluster = RedisCluster { nodes };
        cluster.wait_until_ok().await;
        cluster
    }

    /// `redis://127.0.0.1:PORT/` of every node.
    pub fn seeds(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The seeds as `&str`s, for `RedisCache::cluster_builder`.
    pub fn seed_refs(seeds: &[String]) -> Vec<&str> {
        seeds.iter().map(String::as_str).collect()
    }

    /// Indices of the nodes that are masters now.
    pub async fn masters(&self) -> Vec<usize> {
        let mut masters = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if let Ok(redis::Value::Array(role)) = node.admin(&["ROLE"]).await
                && matches!(role.first(), Some(redis::Value::BulkString(r)) if r == b"master")
            {
                masters.push(i);
            }
        }
        masters
    }

    /// Waits until every live node reports `cluster_state:ok` and agrees that every slot is
    /// served, and every replica is in sync with its master (after a start or a failover).
    pub async fn wait_until_ok(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let mut all_ok = true;
            for node in &self.nodes {
                if let Ok(redis::Value::BulkString(info)) =
                    node.admin(&["INFO", "replication"]).await
                {
                    let info = String::from_utf8_lossy(&info);
                    all_ok &=
                        !info.contains("role:slave") || info.contains("master_link_status:up");
                }
                match node.admin(&["CLUSTER", "INFO"]).await {
                    Ok(redis::Value::BulkString(info)) => {
                        let info = String::from_utf8_lossy(&info);
                        all_ok &= info.contains("cluster_state:ok")
                            && info.contains("cluster_slots_ok:16384");
                    }
                    Ok(redis::Value::VerbatimString { text, .. }) => {
                        all_ok &= text.contains("cluster_state:ok")
                            && text.contains("cluster_slots_ok:16384");
                    }
                    // A killed node.
                    _ => {}
                }
            }
            if all_ok {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the cluster did not reach cluster_state:ok within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
