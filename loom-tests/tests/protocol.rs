//! Loom models of the vlive handle/actor protocol.
//!
//! Each model runs the production `Handle` and actor loop (over an in-memory store) under loom,
//! which explores the thread interleavings up to a preemption bound. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p loom-tests --release`; `loom-tests/mutants.sh` plants
//! a known bug per model and checks that loom catches it.
#![cfg(loom)]

use loom::future::block_on;
use loom::thread;
use vlive::Error;
use vlive::loom_support::{one_entry_bytes, spawn, spawn_bounded, spawn_lazy};

/// Explores interleavings with at most `LOOM_MAX_PREEMPTIONS` (default 3) preemptions: enough
/// for every race below, small enough for the suite to finish in minutes on two cores. Prints
/// how many interleavings were explored.
fn model(name: &str, test: impl Fn() + Sync + Send + 'static) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    let iterations = Arc::new(AtomicUsize::new(0));
    let counter = iterations.clone();
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        test();
    });
    println!(
        "loom model {name}: {} interleavings explored (preemption bound {:?})",
        iterations.load(Ordering::Relaxed),
        builder.preemption_bound
    );
}

/// Model 1: with two handles and the actor, every command gets exactly one reply, and it is
/// the right one. (A reply is a oneshot, so "at most one" is by type; the model checks "at
/// least one, and `Ok`" for every interleaving, including one handle dropping early.) Once a
/// put is acknowledged, nothing is left in flight for its key: a get of it reads beside the
/// actor.
#[test]
fn every_command_gets_exactly_one_reply() {
    model("every_command_gets_exactly_one_reply", || {
        let (a, probe, actor) = spawn(2, 4);
        let b = a.clone();
        let other = thread::spawn(move || {
            let put = block_on(b.put("k1", b"1"));
            let got = block_on(b.get("k1"));
            (put, got)
        });
        assert!(block_on(a.put("k2", b"2")).is_ok());
        let (put, got) = other.join().unwrap();
        assert!(put.is_ok());
        assert_eq!(got.unwrap(), Some(b"1".to_vec()));
        assert_eq!(
            a.snapshot_gets(),
            1,
            "a settled put still held back a get of its key"
        );
        assert_eq!(block_on(a.get("k2")).unwrap(), Some(b"2".to_vec()));
        drop(a);
        actor.join();
        assert!(probe.committed("k1").is_some());
    });
}

/// Model 2: read-your-writes across handles, in the order commands reach the actor: a put
/// acknowledged on A is seen by a later get on B, and so is a put merely queued on A before
/// B's get was queued (the two may share a batch). The first get is answered beside the actor
/// (from the snapshot of the last commit), the second queues behind the put in flight.
#[test]
fn read_your_writes_across_handles() {
    model("read_your_writes_across_handles", || {
        let (a, _probe, actor) = spawn(4, 4);
        let b = a.clone();
        let c = a.clone();
        // Concurrent traffic on another key, so batches form in every possible way.
        let noise = thread::spawn(move || block_on(c.put("other", b"x")));
        block_on(a.put("k", b"1")).unwrap();
        assert_eq!(block_on(b.get("k")).unwrap(), Some(b"1".to_vec()));
        let queued = block_on(a.submit_put("k", b"2")).unwrap();
        assert_eq!(block_on(b.get("k")).unwrap(), Some(b"2".to_vec()));
        block_on(queued.wait()).unwrap();
        noise.join().unwrap().unwrap();
        drop((a, b));
        actor.join();
    });
}

/// Model 3: the last handle drops while commands are still queued: every queued command is
/// executed and answered, then the actor exits.
#[test]
fn last_handle_drop_drains_then_exits() {
    model("last_handle_drop_drains_then_exits", || {
        let (a, probe, actor) = spawn(4, 4);
        let b = a.clone();
        let other = thread::spawn(move || {
            let queued = block_on(b.submit_put("k1", b"1")).unwrap();
            drop(b);
            block_on(queued.wait())
        });
        let queued = block_on(a.submit_put("k2", b"2")).unwrap();
        drop(a);
        assert!(block_on(queued.wait()).is_ok());
        assert!(other.join().unwrap().is_ok());
        actor.join();
        assert_eq!(probe.committed("k1"), Some(b"1".to_vec()));
        assert_eq!(probe.committed("k2"), Some(b"2".to_vec()));
    });
}

/// Model 4: `close` races a put from another handle. The put is either acknowledged and in the
/// store after the close, or rejected with `Closed` and absent — never lost, never hung.
#[test]
fn close_racing_a_put_never_loses_or_hangs_it() {
    model("close_racing_a_put_never_loses_or_hangs_it", || {
        let (a, probe, actor) = spawn(2, 4);
        let b = a.clone();
        let writer = thread::spawn(move || block_on(b.put("k", b"1")));
        block_on(a.close()).unwrap();
        match writer.join().unwrap() {
            Ok(()) => assert_eq!(probe.committed("k"), Some(b"1".to_vec())),
            Err(Error::Closed) => assert_eq!(probe.committed("k"), None),
            Err(other) => panic!("unexpected error {other}"),
        }
        assert!(matches!(block_on(a.get("k")), Err(Error::Closed)));
        drop(a);
        actor.join();
    });
}

/// Model 5: no reply before commit: the moment a put is acknowledged, the store holds it.
#[test]
fn no_acknowledgement_before_commit() {
    model("no_acknowledgement_before_commit", || {
        let (a, probe, actor) = spawn(2, 4);
        let b = a.clone();
        let probe_b = probe.clone();
        let other = thread::spawn(move || {
            block_on(b.put("k1", b"1")).unwrap();
            assert_eq!(probe_b.committed("k1"), Some(b"1".to_vec()));
        });
        block_on(a.put("k2", b"2")).unwrap();
        assert_eq!(probe.committed("k2"), Some(b"2".to_vec()));
        other.join().unwrap();
        drop(a);
        actor.join();
    });
}

/// Model 6: a failed commit fails every write of its batch (and only those), and the next batch
/// succeeds.
#[test]
fn failed_commit_fails_its_whole_batch_and_the_actor_goes_on() {
    model(
        "failed_commit_fails_its_whole_batch_and_the_actor_goes_on",
        || {
            let (a, probe, actor) = spawn(4, 4);
            probe.fail_next_commit();
            let b = a.clone();
            let other = thread::spawn(move || block_on(b.put("k1", b"1")));
            let mine = block_on(a.put("k2", b"2"));
            let theirs = other.join().unwrap();
            assert!(mine.is_err() || theirs.is_err(), "the first commit failed");
            assert_eq!(mine.is_ok(), probe.committed("k2").is_some());
            assert_eq!(theirs.is_ok(), probe.committed("k1").is_some());
            block_on(a.put("k3", b"3")).unwrap();
            assert_eq!(probe.committed("k3"), Some(b"3".to_vec()));
            drop(a);
            actor.join();
        },
    );
}

/// Model 7 (LiveTable's stale-fill guard): a fill whose token was taken before an invalidation
/// of its key never lands after that invalidation.
#[test]
fn a_fill_never_lands_after_an_invalidation_it_predates() {
    model(
        "a_fill_never_lands_after_an_invalidation_it_predates",
        || {
            let (a, probe, actor) = spawn(4, 4);
            let b = a.clone();
            let writer = thread::spawn(move || block_on(b.invalidate_prefix("t/")));
            let token = block_on(a.fill_token()).unwrap();
            block_on(a.fill("t/1", b"old", token)).unwrap();
            writer.join().unwrap().unwrap();
            let after_invalidation = block_on(a.fill_token()).unwrap();
            if probe.committed("t/1").is_some() {
                assert_eq!(
                    token, after_invalidation,
                    "a fill that predates the invalidation landed after it"
                );
            }
            drop(a);
            actor.join();
        },
    );
}

/// Model 8: `close` races a get beside the actor. The store is never closed under a lookup (the
/// actor takes its snapshot back first, waiting out lookups in progress), and the get answers
/// either the committed value or `Closed`.
#[test]
fn close_waits_for_lookups_beside_the_actor() {
    model("close_waits_for_lookups_beside_the_actor", || {
        let (a, probe, actor) = spawn(2, 4);
        block_on(a.put("k", b"1")).unwrap();
        let b = a.clone();
        let reader = thread::spawn(move || block_on(b.get("k")));
        block_on(a.close()).unwrap();
        match reader.join().unwrap() {
            Ok(value) => assert_eq!(value, Some(b"1".to_vec())),
            Err(Error::Closed) => {}
            Err(other) => panic!("unexpected error {other}"),
        }
        assert_eq!(
            probe.reads_after_close(),
            0,
            "a lookup ran on a closed store"
        );
        drop(a);
        actor.join();
    });
}

/// Model 9: eviction beside gets. The budget holds one entry (of a 1-byte key and a 1-byte
/// value); `k` was put twice, then two puts that may share a batch evict it. A get of
/// `k` beside the actor (or queued) meanwhile returns its last value or a miss, never the older
/// one; once the puts are acknowledged the store is within budget (a batch that must evict
/// twice does so).
#[test]
fn eviction_is_a_later_miss_never_an_older_value() {
    model("eviction_is_a_later_miss_never_an_older_value", || {
        let (a, probe, actor) = spawn_bounded(4, 4, one_entry_bytes());
        block_on(a.put("k", b"0")).unwrap();
        block_on(a.put("k", b"1")).unwrap();
        let b = a.clone();
        let writer = thread::spawn(move || {
            let x = block_on(b.submit_put("x", b"x")).unwrap();
            let y = block_on(b.submit_put("y", b"y")).unwrap();
            block_on(x.wait()).unwrap();
            block_on(y.wait()).unwrap();
        });
        let got = block_on(a.get("k")).unwrap();
        assert!(
            got.is_none() || got == Some(b"1".to_vec()),
            "an evicted key returned {got:?}"
        );
        writer.join().unwrap();
        assert!(
            probe.live_bytes() <= one_entry_bytes(),
            "over budget after the puts were acknowledged"
        );
        // (`k` may have survived: a hit earns it a second chance.)
        let last = block_on(a.get("k")).unwrap();
        assert!(last.is_none() || last == Some(b"1".to_vec()), "{last:?}");
        drop(a);
        actor.join();
    });
}

/// Model 10: the hot tier never keeps a value a put replaced. A get races a put of its key: it
/// may read the old value or the new one, and may add what it read to the tier; once the put is
/// acknowledged, and once the racing get is done, every get answers the new value. The last get
/// is answered from the tier, so the model also runs the hit path.
#[test]
fn hot_tier_never_keeps_a_replaced_value() {
    model("hot_tier_never_keeps_a_replaced_value", || {
        let (a, _probe, actor) = spawn(2, 4);
        block_on(a.put("k", b"old")).unwrap();
        let b = a.clone();
        let reader = thread::spawn(move || block_on(b.get("k")).unwrap());
        block_on(a.put("k", b"new")).unwrap();
        assert_eq!(
            block_on(a.get("k")).unwrap(),
            Some(b"new".to_vec()),
            "a get after the put's acknowledgement saw the value it replaced"
        );
        let raced = reader.join().unwrap().expect("k always holds a value");
        assert!(raced == b"old" || raced == b"new");
        assert_eq!(
            block_on(a.get("k")).unwrap(),
            Some(b"new".to_vec()),
            "the racing get left the replaced value in the hot tier"
        );
        assert!(a.hot_hits() >= 1, "the last get is answered from the tier");
        drop(a);
        actor.join();
    });
}

/// Model 11: `close` races a get that missed the hot tier and reads the store, while the tier
/// holds another key. The get answers the value or `Closed`; once `close` has returned, no get
/// is answered from the tier: the actor empties it when it takes its snapshot back, and a value
/// read before that is not added to it after (so every later get is `Closed`).
#[test]
fn close_empties_the_hot_tier() {
    model("close_empties_the_hot_tier", || {
        let (a, _probe, actor) = spawn(2, 4);
        block_on(a.put("k", b"1")).unwrap();
        block_on(a.put("m", b"2")).unwrap();
        assert_eq!(block_on(a.get("k")).unwrap(), Some(b"1".to_vec()));
        let b = a.clone();
        let reader = thread::spawn(move || block_on(b.get("m")));
        block_on(a.close()).unwrap();
        match reader.join().unwrap() {
            Ok(value) => assert_eq!(value, Some(b"2".to_vec())),
            Err(Error::Closed) => {}
            Err(other) => panic!("unexpected error {other}"),
        }
        assert!(
            matches!(block_on(a.get("k")), Err(Error::Closed)),
            "a get after close was answered from the hot tier"
        );
        assert!(
            matches!(block_on(a.get("m")), Err(Error::Closed)),
            "a value read before close entered the hot tier after it"
        );
        drop(a);
        actor.join();
    });
}

/// Model 12 (a damaged file): the store turns out damaged while a put, a fill and a get are in
/// flight. The actor discards it and starts empty, once; every caller gets its one answer (a
/// get never an error); the put is acknowledged only if it is in the new store; a fill whose
/// token was taken before the reset never lands after it (the old file may have taken
/// invalidations with it that the token predates); and what the get read from the old file
/// does not outlive it in the hot tier.
#[test]
fn a_reset_racing_gets_puts_and_fills_lets_no_stale_fill_land() {
    model(
        "a_reset_racing_gets_puts_and_fills_lets_no_stale_fill_land",
        || {
            let (a, probe, actor) = spawn(4, 4);
            block_on(a.put("k", b"1")).unwrap();
            let token = block_on(a.fill_token()).unwrap();
            let (b, c, damage) = (a.clone(), a.clone(), probe.clone());
            let filler = thread::spawn(move || block_on(c.fill("k", b"stale", token)));
            let writer = thread::spawn(move || {
                damage.damage();
                block_on(b.put("w", b"2"))
            });
            let got = block_on(a.get("k"));
            let _ = filler.join().unwrap();
            let wrote = writer.join().unwrap();
            assert!(got.is_ok(), "a get answered an error: {got:?}");
            assert_eq!(
                probe.discards(),
                1,
                "the damaged store was not discarded once"
            );
            assert_ne!(
                probe.committed("k"),
                Some(b"stale".to_vec()),
                "a fill that predates the reset landed after it"
            );
            assert_eq!(wrote.is_ok(), probe.committed("w").is_some());
            assert_eq!(
                block_on(a.get("k")).unwrap(),
                None,
                "a value from the discarded store came back"
            );
            block_on(a.put("after", b"3")).unwrap();
            assert_eq!(block_on(a.get("after")).unwrap(), Some(b"3".to_vec()));
            drop(a);
            actor.join();
        },
    );
}

/// A write buffer with room for every lazy put these models make.
fn roomy_buffer() -> u64 {
    16 * one_entry_bytes()
}

/// Model 13 (lazy mode): a put is acknowledged once queued, and gets find its value in the
/// write buffer until it is committed. Two clones put one key at once; once both are
/// acknowledged, a get reads one of their values, and that value neither changes with no
/// write after it nor differs from what is committed: the value in the buffer is always the
/// one the last queued put of its key stores.
#[test]
fn lazy_puts_of_one_key_read_as_the_last_one_queued() {
    model("lazy_puts_of_one_key_read_as_the_last_one_queued", || {
        let (a, probe, actor) = spawn_lazy(4, 4, roomy_buffer());
        let b = a.clone();
        let other = thread::spawn(move || block_on(b.put("k", b"2")));
        block_on(a.put("k", b"1")).unwrap();
        other.join().unwrap().unwrap();
        let seen = block_on(a.get("k")).unwrap();
        assert!(seen.is_some(), "an acknowledged put was not visible");
        block_on(a.flush()).unwrap();
        assert_eq!(
            block_on(a.get("k")).unwrap(),
            seen,
            "the value changed with no write"
        );
        assert_eq!(probe.committed("k"), seen);
        drop(a);
        actor.join();
    });
}

/// Model 14 (lazy mode): `close` races a lazy put from another clone. The put is either
/// acknowledged and in the store after the close, or refused with `Closed`: a put sent behind
/// the `close` is refused by the actor, so its caller must hear that, not an early `Ok`. Once
/// `close` has returned, a get is `Closed`, never answered from the write buffer.
#[test]
fn close_racing_a_lazy_put_never_loses_an_acknowledged_put() {
    model(
        "close_racing_a_lazy_put_never_loses_an_acknowledged_put",
        || {
            let (a, probe, actor) = spawn_lazy(2, 4, roomy_buffer());
            let b = a.clone();
            let writer = thread::spawn(move || block_on(b.put("k", b"1")));
            block_on(a.close()).unwrap();
            let got = block_on(a.get("k"));
            assert!(
                matches!(got, Err(Error::Closed)),
                "a get after close was answered: {got:?}"
            );
            match writer.join().unwrap() {
                Ok(()) => assert_eq!(
                    probe.committed("k"),
                    Some(b"1".to_vec()),
                    "an acknowledged lazy put was lost"
                ),
                Err(Error::Closed) => assert_eq!(probe.committed("k"), None),
                Err(other) => panic!("unexpected error {other}"),
            }
            drop(a);
            actor.join();
        },
    );
}

/// Model 15 (lazy mode): a lazy put whose commit fails is lost, counted and reported by
/// `flush`, and its key then reads as a miss, never as the value it replaced; a concurrent
/// reader never sees the new value and then the old one.
#[test]
fn a_lost_lazy_put_reads_as_a_miss_never_an_older_value() {
    model(
        "a_lost_lazy_put_reads_as_a_miss_never_an_older_value",
        || {
            let (a, probe, actor) = spawn_lazy(4, 4, roomy_buffer());
            block_on(a.put("k", b"1")).unwrap();
            block_on(a.flush()).unwrap();
            probe.fail_next_commit();
            let b = a.clone();
            let reader = thread::spawn(move || {
                let first = block_on(b.get("k")).unwrap();
                let second = block_on(b.get("k")).unwrap();
                (first, second)
            });
            block_on(a.put("k", b"2")).unwrap();
            let flushed = block_on(a.flush());
            assert!(
                flushed.is_err(),
                "the lost put was not reported: {flushed:?}"
            );
            assert_eq!(a.lazy_writes_lost(), 1);
            assert_eq!(
                block_on(a.get("k")).unwrap(),
                None,
                "an older value came back"
            );
            assert_eq!(probe.committed("k"), None);
            let (first, second) = reader.join().unwrap();
            assert!(
                !(first == Some(b"2".to_vec()) && second == Some(b"1".to_vec())),
                "the reader saw the new value, then the old one"
            );
            block_on(a.flush()).unwrap();
            drop(a);
            actor.join();
        },
    );
}

/// Model 16: the hot tier never keeps a value an invalidation removed. A get of a key races
/// `invalidate_prefix` over it: whatever the get answers, once the invalidation is acknowledged
/// the key misses (an invalidation names no key, so it must refuse every insert read before it).
#[test]
fn an_invalidation_racing_a_get_leaves_no_hot_value() {
    model("an_invalidation_racing_a_get_leaves_no_hot_value", || {
        let (a, _probe, actor) = spawn(2, 4);
        block_on(a.put("t/1", b"1")).unwrap();
        let b = a.clone();
        let reader = thread::spawn(move || block_on(b.get("t/1")).unwrap());
        block_on(a.invalidate_prefix("t/")).unwrap();
        let _ = reader.join().unwrap();
        assert_eq!(
            block_on(a.get("t/1")).unwrap(),
            None,
            "the invalidated value came back from the hot tier"
        );
        drop(a);
        actor.join();
    });
}
