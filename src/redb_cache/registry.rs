//! The folders this process has open, so that a second `open` of a folder shares its actor
//! instead of failing on redb's file lock.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use tracing::{debug, warn};

use crate::actor::{self, ActorConfig, Handle, Opener, WeakHandle};
use crate::error::Result;
use crate::store::Discard;
use crate::store::damage::DamageLog;
use crate::store::redb_open::{OpenOptions, discard_file};
use crate::store::redb_store::RedbStore;
use crate::sync::Mutex;

/// An actor this process started, and the configuration it was opened with.
#[derive(Debug)]
struct OpenFolder {
    actor: WeakHandle,
    config: ActorConfig,
}

fn registry() -> &'static Mutex<HashMap<PathBuf, OpenFolder>> {
    static OPEN: OnceLock<Mutex<HashMap<PathBuf, OpenFolder>>> = OnceLock::new();
    OPEN.get_or_init(Default::default)
}

/// A handle to the actor serving `config.folder`: the one already running in this process, or
/// a new one. An actor that is closing (or draining after its last handle went) is waited out
/// first, so the new one can take the file.
pub(super) fn open(config: ActorConfig, options: OpenOptions) -> Result<Handle> {
    loop {
        let mut registry = registry().lock();
        registry.retain(|_, open| !open.actor.has_stopped());
        let Some(open) = registry.get(&config.folder) else {
            // Opening under the lock: two racing opens of one folder must not both spawn.
            let actor = spawn(config.clone(), options)?;
            // One publisher per actor, not per open: later opens share both.
            #[cfg(feature = "metrics")]
            super::metrics::publish(&config.metrics_name(), actor.downgrade());
            let weak = actor.downgrade();
            registry.insert(
                config.folder.clone(),
                OpenFolder {
                    actor: weak,
                    config,
                },
            );
            return Ok(actor);
        };
        if let Some(handle) = open.actor.upgrade() {
            share(open, &config);
            return Ok(handle);
        }
        // Wait for the file without holding up every other open in the process, then look again.
        let stopped = open.actor.stop_signal();
        drop(registry);
        stopped.wait();
    }
}

fn share(open: &OpenFolder, config: &ActorConfig) {
    let folder = config.folder.display();
    if open.config != *config {
        warn!(%folder, "cache already open here with another configuration; sharing its actor, \
              the new configuration is ignored");
    }
    debug!(%folder, "cache already open here; sharing its actor");
}

fn spawn(config: ActorConfig, options: OpenOptions) -> Result<Handle> {
    let damage = Arc::new(DamageLog::new(&config.folder));
    let opener = RedbOpener {
        folder: config.folder.clone(),
        options,
        damage: damage.clone(),
    };
    actor::spawn_opening(config, damage, opener)
}

/// Opens the folder's redb file for the actor, and discards it when the actor says so.
struct RedbOpener {
    folder: PathBuf,
    options: OpenOptions,
    damage: Arc<DamageLog>,
}

impl Opener<RedbStore> for RedbOpener {
    fn open(&self) -> Result<RedbStore> {
        RedbStore::open(&self.folder, &self.options, self.damage.clone())
    }

    fn discard(&self, how: Discard) -> Result<()> {
        discard_file(&self.folder, how).map(|_| ())
    }
}
