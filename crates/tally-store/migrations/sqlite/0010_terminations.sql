-- tally schema v10: terminations.

-- The credit note a termination or an upgrade issues for the unused part of a period paid in advance.
-- At most one per subscription, so billing retries and the finalization of a draft can never credit
-- the same period twice.
ALTER TABLE credit_notes ADD COLUMN termination_of INTEGER REFERENCES subscriptions(seq);
CREATE UNIQUE INDEX credit_notes_termination ON credit_notes(termination_of) WHERE termination_of IS NOT NULL;

-- Who bills the events at the instant a subscription ends: pricing a run looks up the subscription a
-- plan change started from it, and the one with the same external id that ended when it started.
CREATE INDEX subscriptions_previous ON subscriptions(previous) WHERE previous IS NOT NULL;
CREATE INDEX subscriptions_ended ON subscriptions(org, external_id, terminated_at) WHERE terminated_at IS NOT NULL;
