-- tally schema v21: every billing tick starts pending subscriptions whose start has come and ends
-- active ones whose ending_at has passed; without these partial indexes both read the whole
-- subscriptions table on the writer, at every tick.

CREATE INDEX subscriptions_pending_start ON subscriptions(subscription_at) WHERE status = 'pending';
CREATE INDEX subscriptions_active_ending ON subscriptions(ending_at)
    WHERE status = 'active' AND ending_at IS NOT NULL;
