-- tally schema v20: prorated pay-in-advance charges bill only the units above the most a bucket held
-- in the charges period; this keeps that peak with the bucket's running usage.

ALTER TABLE advance_usage ADD COLUMN peak_units TEXT NOT NULL DEFAULT '0';
