-- The fingerprint (SHA-256 of the request, key left out) of a submission made with an
-- idempotency key: the same key with another request is refused. NULL for older rows.
ALTER TABLE workflows ADD COLUMN idempotency_fingerprint TEXT;
