//! The billing clock with the machine's clock: every interval, start and end subscriptions that are
//! due, bill every run due (each exactly once, by the store's billing-run key), and finalize drafts
//! whose grace period ended. A failed tick is logged and retried at the next one.

use std::time::Duration;

use tokio::sync::watch;

use crate::state::AppState;

/// Runs until `stop` turns true.
pub async fn run(state: AppState, interval: Duration, mut stop: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
        let now = state.clock.now();
        match state.store.run_billing(now).await {
            Ok(created) if !created.is_empty() => {
                metrics::counter!("tally_invoices_created_total").increment(created.len() as u64);
                tracing::info!(invoices = created.len(), "billing tick created invoices");
            }
            Ok(_) => {}
            Err(error) => {
                metrics::counter!("tally_billing_failures_total").increment(1);
                tracing::error!(%error, "billing tick failed; retrying at the next tick");
            }
        }
    }
}
