-- SQLite only (its 0003 makes the grant index of access tokens partial). On PostgreSQL a partial
-- index cannot be built concurrently while another session waits for the migration lock, so
-- this version changes nothing here; it keeps both engines' versions in step.
SELECT 1;
