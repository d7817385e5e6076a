-- tally schema v13: subscriptions found by external id in any status.
--
-- Subscriptions are read by (organization, external id, status) on every creation, update and
-- termination, and by (organization, external id) when an event names one; the unique index only
-- covers the active and pending ones, so other lookups scanned the whole table.

CREATE INDEX subscriptions_external_id ON subscriptions(org, external_id, status);
