-- Time ranges (issue #12): the first packet id stored in each minute, so
-- "the packets of the last 6 hours" is an id range (`id >= first_id`) read
-- on the primary key, never a scan by timestamp. Minutes stored before this
-- migration have none; a range that starts in one of them is not bounded.
ALTER TABLE traffic_minutes ADD COLUMN first_id BIGINT;
