//! LiveTable's tracing: spans carry `cache_key`, `op`, `page`/`id` and `outcome`, and a gap or
//! the end of a live stream is logged at `warn!`.
//!
//! Each test installs a capturing subscriber for its own thread; the current-thread runtime
//! keeps the table's spawned tasks on that thread.

#[path = "live_table/support.rs"]
mod support;

use std::io;
use std::sync::{Arc, Mutex};

use support::*;
use tracing::subscriber::DefaultGuard;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;
use vlive::{LiveEvent, LiveTable, ManualLiveStream, MemCache, Page, Record, Value};

/// Everything the subscriber wrote, as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The lines `keep` accepts.
    fn lines(&self, keep: impl Fn(&str) -> bool) -> Vec<String> {
        self.text()
            .lines()
            .filter(|line| keep(line))
            .map(str::to_owned)
            .collect()
    }

    /// The closed spans named `name`, one line each, with their recorded fields.
    fn closed(&self, name: &str) -> Vec<String> {
        let open = format!("{name}{{");
        self.lines(|line| line.contains(&open) && line.ends_with("close"))
    }

    fn install() -> (Self, DefaultGuard) {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .with_span_events(FmtSpan::CLOSE)
            .without_time()
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        (captured, guard)
    }
}

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

const PAGE: Page = Page {
    number: 2,
    per_page: 5,
};

#[tokio::test(flavor = "current_thread")]
async fn read_spans_record_key_page_and_outcome() {
    let (captured, _guard) = Captured::install();
    let master = TestMaster::new(seed_rows(12));
    let table = LiveTable::new(master.clone(), "clients", Arc::new(MemCache::new())).unwrap();

    table.list(PAGE).await.unwrap();
    table.list(PAGE).await.unwrap();
    table.get("r01").await.unwrap();
    master.fail_reads(Some("down"));
    table.get("r02").await.unwrap_err();

    let reads = captured.closed("live_table.read");
    assert_eq!(reads.len(), 4, "{reads:#?}");
    let expect = [
        "cache_key=clients op=\"list\" page=2 per_page=5 outcome=\"filled\"",
        "cache_key=clients op=\"list\" page=2 per_page=5 outcome=\"hit\"",
        "cache_key=clients op=\"get\" id=\"r01\" outcome=\"filled\"",
        "cache_key=clients op=\"get\" id=\"r02\" outcome=\"failed\"",
    ];
    for (line, fields) in reads.iter().zip(expect) {
        assert!(line.contains(fields), "{line:?} lacks {fields:?}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_rejected_fill_is_recorded_as_rejected_stale() {
    let (captured, _guard) = Captured::install();
    let master = TestMaster::new(seed_rows(3));
    let table = LiveTable::new(master.clone(), "clients", Arc::new(MemCache::new())).unwrap();
    let gate = master.hold_next_read();
    let reader = tokio::spawn({
        let table = table.clone();
        async move { table.list(PAGE).await }
    });
    reach(&master.reads, 1).await;
    table.invalidate().await.unwrap();
    gate.open();
    reader.await.unwrap().unwrap();

    let reads = captured.closed("live_table.read");
    assert_eq!(reads.len(), 1, "{reads:#?}");
    assert!(
        reads[0].contains("outcome=\"rejected_stale\""),
        "{:?}",
        reads[0]
    );
}

#[tokio::test(flavor = "current_thread")]
async fn write_spans_record_op_id_and_outcome_in_the_caller_and_the_worker() {
    let (captured, _guard) = Captured::install();
    let master = TestMaster::new(seed_rows(1));
    let table = LiveTable::new(master.clone(), "clients", Arc::new(MemCache::new())).unwrap();
    table.insert("r02", record("x")).await.unwrap();
    table.insert("r02", record("again")).await.unwrap_err();

    let writes = captured.closed("live_table.write");
    assert_eq!(writes.len(), 2, "{writes:#?}");
    assert!(
        writes[0].contains("cache_key=clients op=\"insert\" id=\"r02\" outcome=\"invalidated\"")
    );
    assert!(writes[1].contains("op=\"insert\" id=\"r02\" outcome=\"failed\""));
    let applied = captured.closed("live_table.apply");
    assert_eq!(applied.len(), 2, "{applied:#?}");
    assert!(
        applied[0].contains("outcome=\"invalidated\""),
        "{applied:#?}"
    );
    assert!(applied[1].contains("outcome=\"failed\""), "{applied:#?}");
    assert!(
        applied[0].contains("live_table.worker{cache_key=clients}"),
        "the worker's span is the parent: {applied:#?}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn events_are_traced_and_a_gap_or_an_end_is_a_warning() {
    let (captured, _guard) = Captured::install();
    let master = TestMaster::new(seed_rows(1));
    let cache = ObservedCache::new(Arc::new(MemCache::new()));
    let events = Arc::new(ManualLiveStream::with_capacity(1));
    let _table = LiveTable::builder(master.clone(), "clients", cache.clone())
        .live_stream(events.clone())
        .build()
        .unwrap();

    events.push(LiveEvent::Changed); // lost: the subscription has room for one
    events.push(LiveEvent::Updated { id: "r01".into() });
    // Both waiting when the consumer wakes: the gap and the update share one invalidation.
    reach(&cache.invalidations, 1).await;
    events.push(LiveEvent::Deleted { id: "r02".into() });
    reach(&cache.invalidations, 2).await;
    drop(events);
    reach(&cache.invalidations, 3).await;

    let handled = captured.closed("live_table.event");
    assert_eq!(handled.len(), 3, "{handled:#?}");
    let expect = [
        "cache_key=clients op=\"coalesced\" events=2 outcome=\"invalidated\"",
        "cache_key=clients op=\"deleted\" events=1 id=\"r02\" outcome=\"invalidated\"",
        "cache_key=clients op=\"stream_ended\" events=1 outcome=\"invalidated\"",
    ];
    for (line, fields) in handled.iter().zip(expect) {
        assert!(line.contains(fields), "{line:?} lacks {fields:?}");
    }
    // Each event of a group is still logged, inside the group's span.
    let updated = captured.lines(|line| line.contains("live event") && line.contains("r01"));
    assert_eq!(updated.len(), 1, "{updated:#?}");
    assert!(
        updated[0].contains("op=\"coalesced\" events=2"),
        "{updated:#?}"
    );

    let warnings = captured.lines(|line| line.contains("WARN"));
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(warnings[0].contains("lagged") && warnings[0].contains("missed=1"));
    assert!(warnings[1].contains("live stream ended"));
    assert!(warnings[1].contains("live_table.events{cache_key=clients}"));
}

#[tokio::test(flavor = "current_thread")]
async fn a_read_the_cache_could_not_keep_is_not_cached_not_a_miss() {
    let (captured, _guard) = Captured::install();
    let master = TestMaster::new(seed_rows(3));
    let cache = ObservedCache::new(Arc::new(MemCache::new()));
    let table = LiveTable::new(master.clone(), "clients", cache.clone()).unwrap();
    cache.fail_fills(true);
    table.list(PAGE).await.unwrap();

    let reads = captured.closed("live_table.read");
    assert_eq!(reads.len(), 1, "{reads:#?}");
    assert!(reads[0].contains("outcome=\"not_cached\""), "{reads:#?}");
    // The cache miss before the master read keeps its own word.
    let misses = captured.lines(|line| line.contains("cache miss"));
    assert_eq!(misses.len(), 1, "{misses:#?}");
    assert!(misses[0].contains("outcome=\"miss\""), "{misses:#?}");
}

/// A row the cache would refuse (nested one level deeper than its decoder reads) is served from
/// the master on every read, never cached, and each such read is counted and logged at warn:
/// never a silent master read per get (issue 17).
#[tokio::test(flavor = "current_thread")]
async fn rows_the_cache_refuses_are_counted_and_logged_on_every_read() {
    let (captured, _guard) = Captured::install();
    for (name, cache, _dir) in backends() {
        let master = TestMaster::new(seed_rows(2));
        let too_deep = (0..254).fold(Value::Null, |inner, _| Value::Array(vec![inner]));
        master.set_out_of_band("deep", Record::from([("f".to_owned(), too_deep)]));
        let table = LiveTable::new(master.clone(), "clients", cache.clone()).unwrap();
        let warnings_before = captured.lines(|line| line.contains("WARN")).len();

        for _ in 0..3 {
            let row = table.get("deep").await.unwrap();
            assert!(row.is_some(), "{name}: the master's row is served");
        }
        let stats = table.stats();
        assert_eq!(
            master.get_calls(),
            3,
            "{name}: nothing cached, so every read asks"
        );
        assert_eq!((stats.not_cached, stats.fills), (3, 0), "{name}: {stats:?}");
        let key = table.id_key("deep");
        assert_eq!(cache.get(&key).await.unwrap(), None, "{name}");

        let warnings = captured.lines(|line| line.contains("WARN"));
        let refused = &warnings[warnings_before..];
        assert_eq!(refused.len(), 3, "{name}: {refused:#?}");
        for line in refused {
            assert!(
                line.contains("refuses") && line.contains("deep"),
                "{name}: {line}"
            );
        }
        // A row within the limit is cached as usual.
        assert!(table.get("r01").await.is_ok());
        assert!(table.get("r01").await.is_ok());
        assert_eq!(table.stats().fills, 1, "{name}");
    }
}
