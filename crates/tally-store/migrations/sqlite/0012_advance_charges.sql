-- tally schema v12: pay-in-advance charges, billed event by event by the billing clock.

-- How far the billing clock has read the event log: every event with an id up to `last_event` has
-- been billed to the pay-in-advance charges it matched. It moves in the transaction that writes the
-- fees of the events it passes. It starts at the newest event stored when this migration runs, so
-- events stored before are not billed in advance (docs/decisions.md, "Pay-in-advance charges").
CREATE TABLE advance_progress (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    last_event      INTEGER NOT NULL
);
INSERT INTO advance_progress (id, last_event) SELECT 1, COALESCE(MAX(id), 0) FROM events;

-- One fee per (charge, event), ever: the primary key is claimed in the transaction that writes the
-- fee and its invoice, so no retry, crash or second process bills an event twice for one charge.
-- The row is the fee itself; an invoiced fee is also a line of `fees` (same id) on its invoice. Rows are
-- wide, so the table keeps its rowid and the key is a unique index.
CREATE TABLE advance_fees (
    charge                  TEXT NOT NULL,          -- charge lago_id
    event                   INTEGER NOT NULL,       -- events.id
    id                      TEXT NOT NULL UNIQUE,   -- the fee's lago_id
    org                     INTEGER NOT NULL REFERENCES organizations(seq),
    customer                TEXT NOT NULL REFERENCES customers(id),
    subscription            INTEGER NOT NULL REFERENCES subscriptions(seq),
    charge_filter           TEXT,                   -- charge filter lago_id
    invoiceable             INTEGER NOT NULL,
    invoice                 INTEGER REFERENCES invoices(seq), -- NULL: not invoiceable, or 0 to bill
    event_transaction_id    TEXT NOT NULL,
    currency                TEXT NOT NULL,
    item_code               TEXT NOT NULL,
    item_name               TEXT NOT NULL,
    invoice_display_name    TEXT,
    filter_name             TEXT,
    filter_values           TEXT,
    units                   TEXT NOT NULL,
    precise_amount          TEXT NOT NULL,
    amount_cents            INTEGER NOT NULL,
    taxes                   TEXT NOT NULL DEFAULT '[]', -- [{tax, code, name, rate, amount_cents}]
    taxes_amount_cents      INTEGER NOT NULL DEFAULT 0,
    period_from             INTEGER NOT NULL,
    period_to               INTEGER NOT NULL,
    details                 TEXT NOT NULL,
    created_at              INTEGER NOT NULL,
    PRIMARY KEY (charge, event)
);
CREATE INDEX advance_fees_org ON advance_fees(org, created_at);
CREATE INDEX advance_fees_invoice ON advance_fees(invoice) WHERE invoice IS NOT NULL;

-- What each bucket (a charge filter, or '' for the charge's own terms) of a pay-in-advance charge has
-- billed in one charges period of one subscription: the "before" of the next event, kept so that no
-- event needs the period's raw events to be read again.
CREATE TABLE advance_usage (
    subscription            INTEGER NOT NULL REFERENCES subscriptions(seq),
    charge                  TEXT NOT NULL,
    charge_filter           TEXT NOT NULL,
    period_from             INTEGER NOT NULL,
    units                   TEXT NOT NULL,
    events_count            INTEGER NOT NULL,
    billed                  TEXT NOT NULL,          -- exact, major units
    billed_cents            INTEGER NOT NULL,
    free_value_used         TEXT NOT NULL,          -- percentage charges' free allowance used
    PRIMARY KEY (subscription, charge, charge_filter, period_from)
) WITHOUT ROWID;

-- The values a unique-count bucket has seen in the period: a value seen before adds no unit.
CREATE TABLE advance_unique_values (
    subscription            INTEGER NOT NULL,
    charge                  TEXT NOT NULL,
    charge_filter           TEXT NOT NULL,
    period_from             INTEGER NOT NULL,
    value                   TEXT NOT NULL,
    PRIMARY KEY (subscription, charge, charge_filter, period_from, value)
) WITHOUT ROWID;
