-- tally schema v18: kept event values serve percentage charges too.
--
-- A percentage charge with per-event terms (per_transaction_min_amount, per_transaction_max_amount,
-- free_units_per_events, or a fixed amount with free_units_per_total_aggregation) prices each event
-- on its own, so like a unique count it needs every event's value, and reading them from `events`
-- scanned the whole tenant's events of the code. The table of migration 17 becomes `event_values`;
-- besides unique-count metrics it keeps the values of every metric flagged `keeps_event_values`,
-- which a plan write sets when one of its charges or filters needs them (and fills from stored
-- events then). tally fills it for the plans already stored in Rust, right after this script.

ALTER TABLE distinct_events RENAME TO event_values;
ALTER TABLE billable_metrics ADD COLUMN keeps_event_values INTEGER NOT NULL DEFAULT 0
    CHECK (keeps_event_values IN (0, 1));
