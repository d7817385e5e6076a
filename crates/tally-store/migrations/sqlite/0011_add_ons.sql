-- tally schema v11: add-ons, their taxes, and the add-on fees of one-off invoices.

CREATE TABLE add_ons (
    seq                     INTEGER PRIMARY KEY,
    id                      TEXT NOT NULL UNIQUE,
    org                     INTEGER NOT NULL REFERENCES organizations(seq),
    code                    TEXT NOT NULL,
    name                    TEXT NOT NULL,
    invoice_display_name    TEXT,
    description             TEXT,
    amount_cents            INTEGER NOT NULL CHECK (amount_cents > 0),
    amount_currency         TEXT NOT NULL,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL,
    deleted_at              INTEGER
);
CREATE UNIQUE INDEX add_ons_live_code ON add_ons(org, code) WHERE deleted_at IS NULL;
CREATE INDEX add_ons_org ON add_ons(org, seq) WHERE deleted_at IS NULL;

-- Add-ons (and a plan's charges) carry taxes the way customers and plans do. SQLite cannot widen a
-- CHECK in place, so the link table is rebuilt with the same rows; nothing references it.
CREATE TABLE tax_links_new (
    owner_kind  TEXT NOT NULL CHECK (owner_kind IN ('customer', 'plan', 'charge', 'add_on')),
    owner       TEXT NOT NULL,                          -- the customer's, plan's, charge's or add-on's id
    tax         INTEGER NOT NULL REFERENCES taxes(seq),
    PRIMARY KEY (owner_kind, owner, tax)
);
INSERT INTO tax_links_new (owner_kind, owner, tax) SELECT owner_kind, owner, tax FROM tax_links;
DROP TABLE tax_links;
ALTER TABLE tax_links_new RENAME TO tax_links;

-- A one-off fee names the add-on it bills (its id, kept when the add-on is deleted) and may carry
-- a description of its own.
ALTER TABLE fees ADD COLUMN add_on TEXT;
ALTER TABLE fees ADD COLUMN description TEXT;
