-- NetSentinel schema, version 3: richer records and the features that explain a verdict.
-- Nullable columns without defaults: added instantly, no table rewrite.

-- TCP flag bits (FIN 0x01 … CWR 0x80) and the ICMP/ICMPv6 message type, when
-- the sender gave them (the capture reader and the generator do).
ALTER TABLE packets ADD COLUMN tcp_flags SMALLINT;
ALTER TABLE packets ADD COLUMN icmp_type SMALLINT;
-- The detector's feature row of a flagged packet, in the order of its
-- model's features (models.detector), as little-endian float32s (a bytea
-- costs ingest a fraction of a REAL[]); NULL for packets not flagged. The
-- "why flagged" explanation is computed from it later, without the context
-- the worker had in memory.
ALTER TABLE packets ADD COLUMN features BYTEA;
