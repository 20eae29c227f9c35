//! The subcommands: each does one thing against the state kept in `--dir`, then returns.

use std::error::Error as StdError;
use std::time::Instant;

use vlive::{Cache, LiveEvent, Master, Page, Record, Rows, Value};

use crate::cache::DemoCache;
use crate::clients::{client_id, out_of_band_edit, sample_clients};
use crate::demo::{Demo, DemoResult, VIEW};
use crate::show::{field, ms, print_rows, print_table};

pub async fn seed(demo: &Demo, rows: u32) -> DemoResult<()> {
    demo.master.reset(sample_clients(rows)).await?;
    demo.table.invalidate().await?;
    println!(
        "Seeded {rows} clients ({} … {}) into {}; cache key {VIEW:?} invalidated.",
        client_id(1),
        client_id(rows),
        demo.master_path()
    );
    Ok(())
}

pub async fn list(demo: &Demo, page: Page) -> DemoResult<()> {
    let read = demo.timed_read(demo.table.list(page)).await?;
    let total = demo.master.len()?;
    let pages = total.div_ceil(u64::from(page.per_page)).max(1);
    if read.value.is_empty() {
        if total == 0 {
            return Err("the master is empty; run `seed` first".into());
        }
        return Err(format!(
            "page {} is past the end: the master has {total} clients, {pages} pages of {}",
            page.number, page.per_page
        )
        .into());
    }
    println!(
        "Page {} of {pages} ({} per page) — cache {}, {}",
        page.number,
        page.per_page,
        read.outcome,
        ms(read.elapsed)
    );
    print_rows(&read.value);
    Ok(())
}

pub async fn get(demo: &Demo, id: &str) -> DemoResult<()> {
    let read = demo.timed_get(id).await?;
    let Some(record) = read.value else {
        return Err(unknown_client(demo, id).await);
    };
    println!("Client {id} — cache {}, {}", read.outcome, ms(read.elapsed));
    print_rows(&Rows::from([(id.to_owned(), record)]));
    Ok(())
}

async fn unknown_client(demo: &Demo, id: &str) -> Box<dyn StdError + Send + Sync> {
    let hint = match demo.master.ids().await {
        Ok(ids) if ids.is_empty() => "the master is empty; run `seed` first".to_string(),
        Ok(ids) => format!(
            "ids run from {} to {}",
            ids.first().unwrap(),
            ids.last().unwrap()
        ),
        Err(_) => "try `list`".to_string(),
    };
    format!("there is no client {id:?} ({hint})").into()
}

pub async fn add(demo: &Demo, id: &str, fields: Vec<(String, Value)>) -> DemoResult<()> {
    let record: Record = fields.into_iter().collect();
    let start = Instant::now();
    let stored = demo.table.insert(id, record).await?;
    println!(
        "Added {id} through the write queue in {} (cache key {VIEW:?} invalidated).",
        ms(start.elapsed())
    );
    print_rows(&Rows::from([(id.to_owned(), stored)]));
    Ok(())
}

pub async fn event(demo: &Demo, id: Option<&str>) -> DemoResult<()> {
    let Some(id) = id else {
        demo.deliver(LiveEvent::Changed).await?;
        println!("Delivered a `Changed` event: cache key {VIEW:?} invalidated.");
        return Ok(());
    };
    let Some(before) = demo.table.get(id).await? else {
        return Err(unknown_client(demo, id).await);
    };
    let edits = out_of_band_edit(&before);
    // Straight to the master, bypassing the table: the cache cannot know.
    demo.master.patch(id, edits).await?;
    let stale = demo.timed_get(id).await?;
    println!(
        "Changed {id} in the master directly. Reading through the table before the event: \
         cache {}, visits = {}",
        stale.outcome,
        field(&stale.value, "visits")
    );
    let fresh = demo.announce_update(id).await?;
    println!(
        "Delivered `Updated {{ id: {id:?} }}`; the next read: cache {}, {}, visits = {}",
        fresh.outcome,
        ms(fresh.elapsed),
        field(&fresh.value, "visits")
    );
    Ok(())
}

pub async fn stats(demo: &Demo) -> DemoResult<()> {
    let ids = demo.master.ids().await?;
    let master_size = std::fs::metadata(demo.master_path()).map_or(0, |m| m.len());
    println!(
        "Master: {} clients in {} ({} KiB), {} ms per call",
        ids.len(),
        demo.master_path(),
        master_size / 1024,
        demo.master.latency().as_millis()
    );
    println!("Cache:  {}", demo.cache.describe());
    if let DemoCache::Redb(cache) = &demo.cache {
        let file = cache.folder().join(vlive::DB_FILE_NAME);
        let size = std::fs::metadata(&file).map_or(0, |m| m.len());
        println!("        {} ({} KiB)", file.display(), size / 1024);
    }
    let cache = demo.cache.shared();
    let per_page = 10;
    let pages = (ids.len() as u32).div_ceil(per_page).max(1);
    let mut lines = vec![vec!["view entry".into(), "cached".into(), "age".into()]];
    for number in 1..=pages {
        let key = demo.table.page_key(Page::new(number, per_page));
        lines.push(cache_line(cache.as_ref(), key).await?);
    }
    let mut rows_cached = 0;
    for id in &ids {
        if cache.get(&demo.table.id_key(id)).await?.is_some() {
            rows_cached += 1;
        }
    }
    println!("Pages of {per_page} under cache key {VIEW:?}:");
    print_table(&lines);
    println!("Rows cached by id: {rows_cached} of {}", ids.len());
    Ok(())
}

async fn cache_line(cache: &dyn Cache, key: String) -> DemoResult<Vec<String>> {
    Ok(match cache.get(&key).await? {
        Some(cached) => {
            let age = cached.fetched_at.elapsed().unwrap_or_default();
            vec![
                key,
                format!("yes ({} rows)", cached.rows.len()),
                format!("{:.1} s", age.as_secs_f64()),
            ]
        }
        None => vec![key, "no".into(), "-".into()],
    })
}
