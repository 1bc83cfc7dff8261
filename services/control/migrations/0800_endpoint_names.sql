-- Endpoints get a name, unique in their account, so that a configuration
-- file (`foco apply`) can say which endpoint it means and apply again without
-- creating a second one. Existing endpoints are named after their id.
ALTER TABLE endpoints ADD COLUMN name text;
UPDATE endpoints SET name = 'endpoint-' || left(replace(id::text, '-', ''), 12);
ALTER TABLE endpoints ALTER COLUMN name SET NOT NULL;
CREATE UNIQUE INDEX endpoints_account_name ON endpoints (account_id, name);
