-- The component of an agent type removed through the API (its digest; the digest column is then
-- NULL): every host deletes its copy of that component from its plugins directory.
ALTER TABLE installed_plugins ADD COLUMN removed_digest TEXT;
