-- Time partitions (issue #14): `packets` becomes a table partitioned by the
-- packet's "timestamp", so old days go with a DROP of their partition (never
-- a row-by-row DELETE) and the disk stops filling.
--
-- The server creates the dated partitions (`storage.partition_days` wide,
-- `storage.partitions_ahead` ahead; src/store/partitions.rs); packets whose
-- timestamp falls in none of them (replays of old captures, a sender's
-- skewed clock) land in the DEFAULT partition, `packets_default`.
--
-- Upgrade in place: this migration only renames the old table to
-- `packets_legacy` and creates the new, empty one, which takes milliseconds
-- whatever the table holds, so ingestion resumes at once. The server then
-- moves the old rows into the partitions in batches, newest first, each batch
-- one `DELETE … RETURNING` feeding an `INSERT` in one statement: a row is in
-- exactly one of the two tables at every moment (src/server/upgrade.rs).
-- When `packets_legacy` is empty the server drops it.
--
-- Exactly-once without a global unique index: a partitioned table's unique
-- indexes must contain the partition key, so (client, client_seq) can no
-- longer be unique across partitions. The sender's row in `senders` is the
-- guard instead: every batch locks the rows of its senders (FOR UPDATE)
-- and checks their high-water marks before it writes (src/store/ingest.rs).
-- The (client, client_seq) index below stays, not unique, for finding a
-- resent packet's stored verdict.

ALTER TABLE packets RENAME TO packets_legacy;

-- Index names are unique per schema: the old ones make way for the new.
DO $$
DECLARE
    ix record;
BEGIN
    FOR ix IN
        SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = 'packets_legacy'::regclass
    LOOP
        EXECUTE format('ALTER INDEX %I RENAME TO %I', ix.relname,
                       'legacy_' || ix.relname);
    END LOOP;
END
$$;

CREATE TABLE packets (LIKE packets_legacy INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY RANGE ("timestamp");
-- A partitioned table's primary key must hold the partition key; ids stay
-- unique because only packets_id_seq hands them out.
ALTER TABLE packets ADD PRIMARY KEY (id, "timestamp");
ALTER SEQUENCE packets_id_seq OWNED BY packets.id;

CREATE TABLE packets_default PARTITION OF packets DEFAULT;

CREATE INDEX packets_client_seq_idx ON packets (client, client_seq) WHERE client_seq IS NOT NULL;
CREATE INDEX packets_anomalies_idx ON packets (id DESC) WHERE anomaly_flag;
CREATE INDEX packets_protocol_idx ON packets (protocol, id DESC);
CREATE INDEX packets_client_idx ON packets (client, id DESC);
CREATE INDEX packets_source_ip_idx ON packets (source_ip, anomaly_flag, id);
CREATE INDEX packets_dest_ip_idx ON packets (dest_ip, anomaly_flag, id);
CREATE INDEX packets_src_port_idx ON packets (src_port, anomaly_flag, id);
CREATE INDEX packets_dst_port_idx ON packets (dst_port, anomaly_flag, id);

-- A fresh installation has nothing to move.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM packets_legacy) THEN
        DROP TABLE packets_legacy;
    END IF;
END
$$;

-- Every partition retention dropped, and why: the dashboard and the log say
-- what is gone.
CREATE TABLE packet_partition_drops (
    name         TEXT NOT NULL,
    range_start  TIMESTAMPTZ NOT NULL,
    range_end    TIMESTAMPTZ NOT NULL,
    reason       TEXT NOT NULL CHECK (reason IN ('retention', 'size')),
    bytes        BIGINT NOT NULL,
    rows_estimate BIGINT NOT NULL,
    dropped_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    server       TEXT
);
CREATE INDEX packet_partition_drops_at ON packet_partition_drops (dropped_at DESC);
