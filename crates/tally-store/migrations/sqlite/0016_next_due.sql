-- tally schema v16: the billing clock visits only the subscriptions that may owe a run.
--
-- `next_due_at` is when a subscription's next billing run falls due, written by the run that billed
-- it (i64::MAX once a terminated subscription is billed to its end). 0 means "find out": new rows
-- start there, and the triggers below reset it in the same transaction as any change to what the
-- runs depend on (the subscription's dates, status and plan; the plan's interval and terms; the
-- customer's or the organization's time zone), so a change is never missed by a stale date.

ALTER TABLE subscriptions ADD COLUMN next_due_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX subscriptions_next_due ON subscriptions(next_due_at)
    WHERE status IN ('active', 'terminated');
-- Subscriptions on plans with usage thresholds are visited at every tick (progressive billing).
CREATE INDEX subscriptions_plan ON subscriptions(plan, status);

CREATE TRIGGER subscriptions_due_on_change
AFTER UPDATE OF status, plan, billing_time, subscription_at, started_at, ending_at, terminated_at
ON subscriptions
BEGIN
    UPDATE subscriptions SET next_due_at = 0 WHERE seq = NEW.seq;
END;

CREATE TRIGGER subscriptions_due_on_plan
AFTER UPDATE OF interval, pay_in_advance, trial_period_days, bill_charges_monthly ON plans
WHEN OLD.interval IS NOT NEW.interval OR OLD.pay_in_advance IS NOT NEW.pay_in_advance
    OR OLD.trial_period_days IS NOT NEW.trial_period_days
    OR OLD.bill_charges_monthly IS NOT NEW.bill_charges_monthly
BEGIN
    UPDATE subscriptions SET next_due_at = 0 WHERE plan = NEW.seq;
END;

CREATE TRIGGER subscriptions_due_on_customer
AFTER UPDATE OF profile ON customers
WHEN OLD.profile IS NOT NEW.profile
BEGIN
    UPDATE subscriptions SET next_due_at = 0 WHERE customer = NEW.id;
END;

CREATE TRIGGER subscriptions_due_on_organization
AFTER UPDATE OF timezone ON organizations
WHEN OLD.timezone IS NOT NEW.timezone
BEGIN
    UPDATE subscriptions SET next_due_at = 0 WHERE org = NEW.seq;
END;
