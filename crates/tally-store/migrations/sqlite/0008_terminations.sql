-- tally schema v8: terminations.

-- Who bills the events at the instant a subscription ends: pricing a run looks up the subscription a
-- plan change started from it, and the one with the same external id that ended when it started.
CREATE INDEX subscriptions_previous ON subscriptions(previous) WHERE previous IS NOT NULL;
CREATE INDEX subscriptions_ended ON subscriptions(org, external_id, terminated_at) WHERE terminated_at IS NOT NULL;
