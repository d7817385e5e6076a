-- tally schema v2: plans, charges and their filters, subscriptions.

CREATE TABLE plans (
    seq                     INTEGER PRIMARY KEY,
    id                      TEXT NOT NULL UNIQUE,
    org                     INTEGER NOT NULL REFERENCES organizations(seq),
    code                    TEXT NOT NULL,
    name                    TEXT NOT NULL,
    description             TEXT,
    invoice_display_name    TEXT,
    interval                TEXT NOT NULL CHECK (interval IN ('weekly', 'monthly', 'quarterly', 'semiannual', 'yearly')),
    amount_cents            INTEGER NOT NULL CHECK (amount_cents >= 0),
    amount_currency         TEXT NOT NULL,
    pay_in_advance          INTEGER NOT NULL,
    trial_period_days       INTEGER NOT NULL DEFAULT 0,
    bill_charges_monthly    INTEGER NOT NULL DEFAULT 0,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL,
    deleted_at              INTEGER
);
CREATE UNIQUE INDEX plans_live_code ON plans(org, code) WHERE deleted_at IS NULL;

CREATE TABLE charges (
    seq                     INTEGER PRIMARY KEY,
    id                      TEXT NOT NULL UNIQUE,
    plan                    INTEGER NOT NULL REFERENCES plans(seq),
    metric                  INTEGER NOT NULL REFERENCES billable_metrics(seq),
    position                INTEGER NOT NULL,
    code                    TEXT NOT NULL,
    invoice_display_name    TEXT,
    charge_model            TEXT NOT NULL,
    properties              TEXT NOT NULL,          -- Lago `properties`, as tally answers them
    pay_in_advance          INTEGER NOT NULL,
    invoiceable             INTEGER NOT NULL,
    prorated                INTEGER NOT NULL,
    min_amount_cents        INTEGER NOT NULL DEFAULT 0,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL,
    deleted_at              INTEGER
);
CREATE UNIQUE INDEX charges_live_code ON charges(plan, code) WHERE deleted_at IS NULL;
CREATE INDEX charges_metric ON charges(metric) WHERE deleted_at IS NULL;

CREATE TABLE charge_filters (
    seq                     INTEGER PRIMARY KEY,
    id                      TEXT NOT NULL UNIQUE,
    charge                  INTEGER NOT NULL REFERENCES charges(seq),
    position                INTEGER NOT NULL,
    filter_values           TEXT NOT NULL,          -- {"key": ["value", …]}
    properties              TEXT NOT NULL,
    invoice_display_name    TEXT,
    deleted_at              INTEGER
);
CREATE INDEX charge_filters_charge ON charge_filters(charge) WHERE deleted_at IS NULL;

CREATE TABLE subscriptions (
    seq                     INTEGER PRIMARY KEY,
    id                      TEXT NOT NULL UNIQUE,
    org                     INTEGER NOT NULL REFERENCES organizations(seq),
    customer                TEXT NOT NULL REFERENCES customers(id),
    plan                    INTEGER NOT NULL REFERENCES plans(seq),
    external_id             TEXT NOT NULL,
    name                    TEXT,
    status                  TEXT NOT NULL CHECK (status IN ('pending', 'active', 'terminated', 'canceled')),
    billing_time            TEXT NOT NULL CHECK (billing_time IN ('calendar', 'anniversary')),
    subscription_at         INTEGER NOT NULL,
    started_at              INTEGER,
    ending_at               INTEGER,
    terminated_at           INTEGER,
    canceled_at             INTEGER,
    previous                INTEGER REFERENCES subscriptions(seq),
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL
);
-- One active and one pending subscription per external id at most (a downgrade waits as pending).
CREATE UNIQUE INDEX subscriptions_live_external_id ON subscriptions(org, external_id, status)
    WHERE status IN ('active', 'pending');
CREATE INDEX subscriptions_customer ON subscriptions(customer);
