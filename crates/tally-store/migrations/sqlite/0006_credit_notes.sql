-- tally schema v6: credit notes on finalized invoices, and where their credit was spent.

CREATE TABLE credit_notes (
    seq                         INTEGER PRIMARY KEY,
    id                          TEXT NOT NULL UNIQUE,
    org                         INTEGER NOT NULL REFERENCES organizations(seq),
    invoice                     INTEGER NOT NULL REFERENCES invoices(seq),
    customer                    TEXT NOT NULL REFERENCES customers(id),
    number                      TEXT NOT NULL,
    sequential_id               INTEGER NOT NULL,       -- n-th credit note of its invoice
    reason                      TEXT NOT NULL,
    description                 TEXT,
    currency                    TEXT NOT NULL,
    sub_total_excluding_taxes_amount_cents INTEGER NOT NULL,
    taxes_amount_cents          INTEGER NOT NULL,
    total_amount_cents          INTEGER NOT NULL,
    credit_amount_cents         INTEGER NOT NULL,
    refund_amount_cents         INTEGER NOT NULL,
    balance_amount_cents        INTEGER NOT NULL CHECK (balance_amount_cents >= 0), -- credit left to spend
    credit_status               TEXT,                   -- available | consumed | voided (NULL without credit)
    refund_status               TEXT,                   -- pending | succeeded | failed (NULL without refund)
    created_at                  INTEGER NOT NULL,
    updated_at                  INTEGER NOT NULL,
    voided_at                   INTEGER,
    UNIQUE (invoice, sequential_id)
);
CREATE INDEX credit_notes_customer ON credit_notes(customer);

CREATE TABLE credit_note_items (
    credit_note     INTEGER NOT NULL REFERENCES credit_notes(seq),
    fee             TEXT NOT NULL REFERENCES fees(id),
    amount_cents    INTEGER NOT NULL,
    PRIMARY KEY (credit_note, fee)
);

-- Credit of a credit note spent on a later invoice.
CREATE TABLE invoice_credit_notes (
    invoice         INTEGER NOT NULL REFERENCES invoices(seq),
    credit_note     INTEGER NOT NULL REFERENCES credit_notes(seq),
    amount_cents    INTEGER NOT NULL,
    PRIMARY KEY (invoice, credit_note)
);
