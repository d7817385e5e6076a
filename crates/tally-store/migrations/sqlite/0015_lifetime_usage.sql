-- tally schema v15: usage a subscription had before tally (`PUT /subscriptions/{id}/lifetime_usage`),
-- counted in its lifetime usage so that thresholds already passed elsewhere are not billed again.

ALTER TABLE subscriptions ADD COLUMN historical_usage_amount_cents INTEGER NOT NULL DEFAULT 0
    CHECK (historical_usage_amount_cents >= 0);
