-- tally schema v3: billing runs, invoices and fees.

-- One row per (subscription, boundary) ever billed: the database, not memory, makes billing exactly
-- once, across crashes, retries and several processes.
CREATE TABLE billing_runs (
    subscription    INTEGER NOT NULL REFERENCES subscriptions(seq),
    boundary        INTEGER NOT NULL,
    reason          TEXT NOT NULL,
    invoice         INTEGER REFERENCES invoices(seq),
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (subscription, boundary)
);

CREATE TABLE invoices (
    seq                         INTEGER PRIMARY KEY,
    id                          TEXT NOT NULL UNIQUE,
    org                         INTEGER NOT NULL REFERENCES organizations(seq),
    customer                    TEXT NOT NULL REFERENCES customers(id),
    subscription                INTEGER REFERENCES subscriptions(seq),
    invoice_type                TEXT NOT NULL,
    status                      TEXT NOT NULL CHECK (status IN ('draft', 'finalized', 'voided')),
    payment_status              TEXT NOT NULL CHECK (payment_status IN ('pending', 'succeeded', 'failed')),
    currency                    TEXT NOT NULL,
    number                      TEXT,               -- given at finalization, without gaps
    customer_number             INTEGER,            -- the customer's n-th finalized invoice
    issuing_date                TEXT NOT NULL,      -- YYYY-MM-DD in the customer's zone
    net_payment_term            INTEGER NOT NULL DEFAULT 0,
    fees_amount_cents           INTEGER NOT NULL,
    coupons_amount_cents        INTEGER NOT NULL DEFAULT 0,
    taxes_amount_cents          INTEGER NOT NULL DEFAULT 0,
    credit_notes_amount_cents   INTEGER NOT NULL DEFAULT 0,
    prepaid_credit_amount_cents INTEGER NOT NULL DEFAULT 0,
    total_amount_cents          INTEGER NOT NULL,
    run                         TEXT NOT NULL,      -- JSON: the billing run (boundary, reason, periods, shares)
    grace_until                 INTEGER,            -- a draft is finalized at this instant
    needs_refresh               INTEGER NOT NULL DEFAULT 0,
    created_at                  INTEGER NOT NULL,
    updated_at                  INTEGER NOT NULL,
    finalized_at                INTEGER,
    voided_at                   INTEGER
);
CREATE UNIQUE INDEX invoices_number ON invoices(org, number) WHERE number IS NOT NULL;
CREATE UNIQUE INDEX invoices_customer_number ON invoices(customer, customer_number) WHERE customer_number IS NOT NULL;
CREATE INDEX invoices_org ON invoices(org, seq);
CREATE INDEX invoices_drafts ON invoices(grace_until) WHERE status = 'draft';

CREATE TABLE fees (
    seq                     INTEGER PRIMARY KEY,
    id                      TEXT NOT NULL UNIQUE,
    invoice                 INTEGER NOT NULL REFERENCES invoices(seq),
    kind                    TEXT NOT NULL,
    charge                  TEXT,                   -- charge lago_id
    charge_filter           TEXT,                   -- charge filter lago_id
    item_code               TEXT NOT NULL,
    item_name               TEXT NOT NULL,
    filter_name             TEXT,
    filter_values           TEXT,
    units                   TEXT NOT NULL,
    total_aggregated_units  TEXT NOT NULL,
    events_count            INTEGER NOT NULL,
    precise_amount          TEXT NOT NULL,
    amount_cents            INTEGER NOT NULL,
    period_from             INTEGER NOT NULL,
    period_to               INTEGER NOT NULL,
    details                 TEXT,
    pay_in_advance          INTEGER NOT NULL DEFAULT 0,
    created_at              INTEGER NOT NULL
);
CREATE INDEX fees_invoice ON fees(invoice);

-- Which subscriptions still owe a run: active ones, and terminated ones until their last run.
CREATE INDEX subscriptions_billable ON subscriptions(status) WHERE status IN ('active', 'pending', 'terminated');
