-- tally schema v4: taxes and where they apply, coupons and the coupons applied to customers.

CREATE TABLE taxes (
    seq                     INTEGER PRIMARY KEY,
    id                      TEXT NOT NULL UNIQUE,
    org                     INTEGER NOT NULL REFERENCES organizations(seq),
    code                    TEXT NOT NULL,
    name                    TEXT NOT NULL,
    rate                    TEXT NOT NULL,              -- percent, exact decimal
    description             TEXT,
    applied_to_organization INTEGER NOT NULL DEFAULT 0,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL,
    deleted_at              INTEGER
);
CREATE UNIQUE INDEX taxes_live_code ON taxes(org, code) WHERE deleted_at IS NULL;

-- Which taxes a customer or a plan carries.
CREATE TABLE tax_links (
    owner_kind  TEXT NOT NULL CHECK (owner_kind IN ('customer', 'plan')),
    owner       TEXT NOT NULL,                          -- the customer's or plan's id
    tax         INTEGER NOT NULL REFERENCES taxes(seq),
    PRIMARY KEY (owner_kind, owner, tax)
);

CREATE TABLE coupons (
    seq                     INTEGER PRIMARY KEY,
    id                      TEXT NOT NULL UNIQUE,
    org                     INTEGER NOT NULL REFERENCES organizations(seq),
    code                    TEXT NOT NULL,
    name                    TEXT NOT NULL,
    description             TEXT,
    coupon_type             TEXT NOT NULL CHECK (coupon_type IN ('fixed_amount', 'percentage')),
    amount_cents            INTEGER,
    amount_currency         TEXT,
    percentage_rate         TEXT,
    frequency               TEXT NOT NULL CHECK (frequency IN ('once', 'recurring', 'forever')),
    frequency_duration      INTEGER,
    expiration_at           INTEGER,
    reusable                INTEGER NOT NULL DEFAULT 1,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL,
    terminated_at           INTEGER
);
CREATE UNIQUE INDEX coupons_live_code ON coupons(org, code) WHERE terminated_at IS NULL;

CREATE TABLE applied_coupons (
    seq                             INTEGER PRIMARY KEY,
    id                              TEXT NOT NULL UNIQUE,
    org                             INTEGER NOT NULL REFERENCES organizations(seq),
    coupon                          INTEGER NOT NULL REFERENCES coupons(seq),
    customer                        TEXT NOT NULL REFERENCES customers(id),
    active                          INTEGER NOT NULL DEFAULT 1,
    coupon_type                     TEXT NOT NULL,
    amount_cents                    INTEGER,
    amount_currency                 TEXT,
    percentage_rate                 TEXT,
    frequency                       TEXT NOT NULL,
    frequency_duration              INTEGER,
    frequency_duration_remaining    INTEGER,
    amount_cents_remaining          INTEGER,
    created_at                      INTEGER NOT NULL,
    terminated_at                   INTEGER
);
CREATE INDEX applied_coupons_customer ON applied_coupons(customer) WHERE active = 1;

-- What each finalized invoice took from each applied coupon.
CREATE TABLE invoice_coupons (
    invoice         INTEGER NOT NULL REFERENCES invoices(seq),
    applied_coupon  INTEGER NOT NULL REFERENCES applied_coupons(seq),
    amount_cents    INTEGER NOT NULL,
    PRIMARY KEY (invoice, applied_coupon)
);

-- Taxes of each fee, rounded once each.
CREATE TABLE fee_taxes (
    fee             TEXT NOT NULL REFERENCES fees(id),
    tax             INTEGER NOT NULL REFERENCES taxes(seq),
    rate            TEXT NOT NULL,
    amount_cents    INTEGER NOT NULL,
    PRIMARY KEY (fee, tax)
);
ALTER TABLE fees ADD COLUMN coupons_amount_cents INTEGER NOT NULL DEFAULT 0;
ALTER TABLE fees ADD COLUMN taxes_amount_cents INTEGER NOT NULL DEFAULT 0;
