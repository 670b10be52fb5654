-- NetSentinel schema, version 1.
-- Applied once at start-up inside a transaction and recorded in schema_migrations.

-- Every packet the server acknowledged, with its verdict.
-- Ids are reserved by the worker in blocks from packets_id_seq, so a batch can
-- be written with one binary COPY and still answer each packet with its id.
CREATE SEQUENCE packets_id_seq;
CREATE TABLE packets (
    id            BIGINT PRIMARY KEY DEFAULT nextval('packets_id_seq'),
    source_ip     INET NOT NULL,
    dest_ip       INET NOT NULL,
    packet_size   INTEGER NOT NULL CHECK (packet_size BETWEEN 0 AND 65535),
    protocol      TEXT NOT NULL,
    "timestamp"   TIMESTAMPTZ NOT NULL,
    anomaly_flag  BOOLEAN NOT NULL DEFAULT false,
    anomaly_score DOUBLE PRECISION,
    src_port      INTEGER CHECK (src_port BETWEEN 0 AND 65535),
    dst_port      INTEGER CHECK (dst_port BETWEEN 0 AND 65535),
    client        TEXT NOT NULL,
    client_seq    BIGINT,
    -- The model that judged the packet (NULL: stored before any model existed).
    -- No foreign key: a per-row check would slow the COPY for no gain, since
    -- models are never deleted by NetSentinel.
    model_id      BIGINT
);
ALTER SEQUENCE packets_id_seq OWNED BY packets.id;

-- Exactly-once: one row per (sender, seq); also finds a resent packet's verdict.
CREATE UNIQUE INDEX packets_client_seq_key ON packets (client, client_seq) WHERE client_seq IS NOT NULL;
-- Dashboard: anomalies only, newest first (small: a tenth of the table or less).
CREATE INDEX packets_anomalies_idx ON packets (id DESC) WHERE anomaly_flag;
-- Dashboard: filter by protocol, newest first.
CREATE INDEX packets_protocol_idx ON packets (protocol, id DESC);

-- Per-minute, per-protocol counters kept by the worker in the same transaction
-- as the packets, so totals and charts never scan packets.
CREATE TABLE traffic_minutes (
    minute    TIMESTAMPTZ NOT NULL,
    protocol  TEXT NOT NULL,
    packets   BIGINT NOT NULL,
    bytes     BIGINT NOT NULL,
    anomalies BIGINT NOT NULL,
    PRIMARY KEY (minute, protocol)
);

-- Per-sender high-water mark: the highest seq stored, written in the same
-- transaction as the packets. A packet at or below it is a resend.
CREATE TABLE senders (
    client     TEXT PRIMARY KEY,
    last_seq   BIGINT NOT NULL,
    packets    BIGINT NOT NULL,
    first_seen TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Trained detectors; the newest is the one in use.
CREATE TABLE models (
    id            BIGSERIAL PRIMARY KEY,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    trees         INTEGER NOT NULL,
    sample_size   INTEGER NOT NULL,
    contamination DOUBLE PRECISION NOT NULL,
    seed          BIGINT NOT NULL,
    threshold     DOUBLE PRECISION NOT NULL,
    training_rows BIGINT NOT NULL,
    -- The serialized detector (feature tables and forest), JSON.
    detector      TEXT NOT NULL
);
