-- Dashboard: one sender's packets, newest first (`/api/packets?client=NAME`).
-- Without it a filter on an unknown or rare sender walks the whole table
-- (250-640 ms at 848k rows, issue #10). Cost on ingest: measured by
-- `cargo bench --bench pipeline` (see README).
CREATE INDEX packets_client_idx ON packets (client, id DESC);
