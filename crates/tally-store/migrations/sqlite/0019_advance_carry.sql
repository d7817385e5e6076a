-- tally schema v19: pay-in-advance charges on recurring sums bill the units carried into each
-- charges period again, at its start (docs/billing.md, "Pay-in-advance charges").
--
-- A bucket's running usage in a period now starts from the carried units, priced as the period's
-- first fee; these columns keep that starting point, so the invoice that bills it (the run at the
-- period's start) and the fees of the period's events agree whichever the clock makes first.

ALTER TABLE advance_usage ADD COLUMN carried_units TEXT NOT NULL DEFAULT '0';
ALTER TABLE advance_usage ADD COLUMN carried_billed TEXT NOT NULL DEFAULT '0';
ALTER TABLE advance_usage ADD COLUMN carried_cents INTEGER NOT NULL DEFAULT 0;
