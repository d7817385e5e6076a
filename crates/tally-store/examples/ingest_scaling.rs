//! Store-level ingest scaling: records events through `Store::record_events` in 5,000-event requests, four in
//! flight, over 1,000 customers, and prints the rate for every 500,000 events, so the cost of a growing
//! database shows. `cargo run --release -p tally-store --example ingest_scaling -- PATH EVENTS`.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Instant;
use tally_core::Timestamp;
use tally_core::case::IdentifierCase;
use tally_core::event::EventDraft;
use tally_core::id::{Code, ExternalId};
use tally_store::sqlite::{SqliteOptions, SqliteStore};
use tally_store::{Atomicity, CustomerChange, Store};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).cloned().unwrap_or("/tmp/sb/tally.db".into());
    let total: usize = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000_000);
    let chunk: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5000);
    let par: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(4);
    let rate: i64 = args.get(5).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let store = Arc::new(SqliteStore::open(&SqliteOptions::new(&path)).unwrap());
    let org = store.default_organization().await.unwrap();
    let _ = store
        .upsert_customer(
            org.id,
            ExternalId::parse("e", "cus_1").unwrap(),
            CustomerChange::new(Default::default()),
        )
        .await;
    let def = tally_core::metric::MetricDefinition {
        code: Code::parse("c", "tokens").unwrap(),
        name: "t".into(),
        description: None,
        aggregation: tally_core::metric::AggregationType::Sum,
        event_type: Code::parse("c", "tokens").unwrap(),
        field: Some(tally_core::property::PropertyPath::key("tokens")),
        recurring: false,
        rounding: None,
        filters: vec![],
        group_by: Default::default(),
        event_from: None,
    };
    let _ = store.create_metric(org.id, def).await;
    let base = 1_764_000_000i64;
    let mut done = 0usize;
    let mut mark = Instant::now();
    let mut mark_n = 0usize;
    let start = Instant::now();
    while done < total {
        let mut futs = Vec::new();
        for _ in 0..par {
            let mut drafts = Vec::with_capacity(chunk);
            for i in 0..chunk {
                let n = done + i;
                let props = serde_json::json!({"tokens": (n % 1000) as i64, "model": format!("m{}", n % 3)});
                drafts.push(EventDraft {
                    source: None,
                    transaction_id: ExternalId::parse("t", &uuid::Uuid::new_v4().to_string())
                        .unwrap(),
                    code: Code::parse("c", "tokens").unwrap(),
                    subject: Some(ExternalId::parse("s", &format!("cus_{}", n % 1000)).unwrap()),
                    external_subscription_id: None,
                    timestamp: Some(Timestamp::from_micros(
                        base * 1_000_000 + (n as i64) * 1_000_000 / rate,
                    )),
                    properties: props.as_object().unwrap().clone(),
                    precise_total_amount_cents: None,
                });
            }
            done += chunk;
            let events: Vec<_> = drafts
                .into_iter()
                .map(|d| d.prepare(org.id, IdentifierCase::None, Timestamp::from_seconds(base)))
                .collect();
            let s = store.clone();
            futs.push(tokio::spawn(async move {
                s.record_events(org.id, events, Atomicity::EachEvent)
                    .await
                    .unwrap()
                    .len()
            }));
        }
        for f in futs {
            f.await.unwrap();
        }
        if done - mark_n >= 500_000 {
            let el = mark.elapsed().as_secs_f64();
            println!(
                "{:>9} events  {:>9.0} ev/s (last {})",
                done,
                (done - mark_n) as f64 / el,
                done - mark_n
            );
            mark = Instant::now();
            mark_n = done;
        }
    }
    println!(
        "total {} in {:.1}s = {:.0} ev/s",
        done,
        start.elapsed().as_secs_f64(),
        done as f64 / start.elapsed().as_secs_f64()
    );
    store.close().await;
}
