-- tally schema v8: organization-wide invoicing defaults and per-organization invoice numbers.

ALTER TABLE organizations ADD COLUMN invoice_grace_period INTEGER NOT NULL DEFAULT 0 CHECK (invoice_grace_period >= 0);
ALTER TABLE organizations ADD COLUMN net_payment_term INTEGER NOT NULL DEFAULT 0 CHECK (net_payment_term >= 0);
ALTER TABLE organizations ADD COLUMN document_numbering TEXT NOT NULL DEFAULT 'per_customer'
    CHECK (document_numbering IN ('per_customer', 'per_organization'));
ALTER TABLE organizations ADD COLUMN document_number_prefix TEXT;

-- The organization's n-th finalized invoice, whatever the numbering: given in the finalizing
-- transaction, unique, so per-organization numbers have no gaps and no twins.
ALTER TABLE invoices ADD COLUMN organization_number INTEGER;
CREATE UNIQUE INDEX invoices_organization_number ON invoices(org, organization_number)
    WHERE organization_number IS NOT NULL;
UPDATE invoices SET organization_number = (
    SELECT COUNT(*) FROM invoices earlier
    WHERE earlier.org = invoices.org AND earlier.number IS NOT NULL
      AND (earlier.finalized_at < invoices.finalized_at
           OR (earlier.finalized_at = invoices.finalized_at AND earlier.seq <= invoices.seq)))
WHERE number IS NOT NULL;
