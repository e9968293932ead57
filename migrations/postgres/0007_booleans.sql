-- Yes/no columns become PostgreSQL booleans (they were 0/1 BIGINTs, the type both databases
-- shared through sqlx's Any driver). Times stay microseconds since the Unix epoch (BIGINT); JSON
-- stays text: no query looks inside it, and text is written as given.
ALTER TABLE tasks ALTER COLUMN allow_failure TYPE BOOLEAN USING allow_failure <> 0;
ALTER TABLE workers ALTER COLUMN stopped DROP DEFAULT;
ALTER TABLE workers ALTER COLUMN stopped TYPE BOOLEAN USING stopped <> 0;
ALTER TABLE workers ALTER COLUMN stopped SET DEFAULT FALSE;
