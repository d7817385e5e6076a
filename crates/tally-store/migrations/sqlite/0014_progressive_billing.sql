-- tally schema v14: progressive billing — a plan's usage thresholds, and the invoices that bill a
-- subscription's usage as soon as its lifetime usage passes one (docs/billing.md, "Progressive
-- billing").

-- A plan's thresholds. Rows are soft-deleted so that invoices keep naming the thresholds they passed.
CREATE TABLE usage_thresholds (
    seq             INTEGER PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,       -- lago_id
    plan            INTEGER NOT NULL REFERENCES plans(seq),
    amount_cents    INTEGER NOT NULL CHECK (amount_cents > 0),
    display_name    TEXT,
    recurring       INTEGER NOT NULL CHECK (recurring IN (0, 1)),
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    deleted_at      INTEGER
);
CREATE INDEX usage_thresholds_plan ON usage_thresholds(plan) WHERE deleted_at IS NULL;
-- At most one recurring threshold per plan.
CREATE UNIQUE INDEX usage_thresholds_recurring ON usage_thresholds(plan)
    WHERE recurring = 1 AND deleted_at IS NULL;

-- What the period's earlier progressive invoices billed, taken off this invoice's usage fees.
ALTER TABLE invoices ADD COLUMN progressive_billing_credit_amount_cents INTEGER NOT NULL DEFAULT 0;

-- The n-th progressive invoice of a subscription's charges period: the primary key is claimed in the
-- transaction that writes the invoice, so no retry, crash or second process bills it twice.
CREATE TABLE progressive_runs (
    subscription    INTEGER NOT NULL REFERENCES subscriptions(seq),
    period_from     INTEGER NOT NULL,           -- the charges period's start
    sequence        INTEGER NOT NULL CHECK (sequence > 0),
    invoice         INTEGER NOT NULL UNIQUE REFERENCES invoices(seq),
    lifetime_usage_amount_cents INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (subscription, period_from, sequence)
) WITHOUT ROWID;

-- The thresholds a progressive invoice passed.
CREATE TABLE applied_usage_thresholds (
    invoice         INTEGER NOT NULL REFERENCES invoices(seq),
    threshold       INTEGER NOT NULL REFERENCES usage_thresholds(seq),
    PRIMARY KEY (invoice, threshold)
) WITHOUT ROWID;

-- A subscription's invoices: lifetime usage, the progressive credit and the minimum commitment read
-- them; without this they scanned every invoice.
CREATE INDEX invoices_subscription ON invoices(subscription) WHERE subscription IS NOT NULL;
