-- Several servers, one database (issue #14): which server stored each
-- sender's newest packets (`server.name`), so every dashboard can say where
-- each sender is. NULL: stored before this migration.
ALTER TABLE senders ADD COLUMN server TEXT;
