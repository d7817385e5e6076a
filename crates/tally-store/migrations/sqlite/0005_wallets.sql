-- tally schema v5: wallets of prepaid credits and their transactions.

CREATE TABLE wallets (
    seq                 INTEGER PRIMARY KEY,
    id                  TEXT NOT NULL UNIQUE,
    org                 INTEGER NOT NULL REFERENCES organizations(seq),
    customer            TEXT NOT NULL REFERENCES customers(id),
    active              INTEGER NOT NULL DEFAULT 1,
    currency            TEXT NOT NULL,
    name                TEXT,
    code                TEXT,
    rate_amount         TEXT NOT NULL,              -- major units per credit, exact decimal
    credits_balance     TEXT NOT NULL,              -- never negative
    consumed_credits    TEXT NOT NULL,
    expiration_at       INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    terminated_at       INTEGER
);
CREATE INDEX wallets_customer ON wallets(customer) WHERE active = 1;

CREATE TABLE wallet_transactions (
    seq                 INTEGER PRIMARY KEY,
    id                  TEXT NOT NULL UNIQUE,
    wallet              INTEGER NOT NULL REFERENCES wallets(seq),
    transaction_type    TEXT NOT NULL CHECK (transaction_type IN ('inbound', 'outbound')),
    status              TEXT NOT NULL CHECK (status IN ('pending', 'settled', 'failed')),
    transaction_status  TEXT NOT NULL CHECK (transaction_status IN ('purchased', 'granted', 'voided', 'invoiced')),
    credit_amount       TEXT NOT NULL,
    amount              TEXT NOT NULL,              -- the credits' worth, major units
    invoice             INTEGER REFERENCES invoices(seq),
    created_at          INTEGER NOT NULL,
    settled_at          INTEGER
);
CREATE INDEX wallet_transactions_wallet ON wallet_transactions(wallet);
