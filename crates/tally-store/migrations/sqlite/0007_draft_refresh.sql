-- tally schema v7: finding a customer's drafts when a late event arrives, from the ingest path.
-- The index holds drafts only (a few per customer during grace periods), so the probe is cheap.

CREATE INDEX invoices_customer_drafts ON invoices(customer) WHERE status = 'draft';
