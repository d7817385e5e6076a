-- tally schema v9: a plan's minimum commitment per subscription period.

ALTER TABLE plans ADD COLUMN commitment_amount_cents INTEGER CHECK (commitment_amount_cents >= 0);
ALTER TABLE plans ADD COLUMN commitment_invoice_display_name TEXT;
