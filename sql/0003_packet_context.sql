-- NetSentinel schema, version 3: richer records and the features that explain a verdict.
-- Nullable columns without defaults: added instantly, no table rewrite.

-- TCP flag bits (FIN 0x01 … CWR 0x80) and the ICMP/ICMPv6 message type, when
-- the sender gave them (the capture reader and the generator do).
ALTER TABLE packets ADD COLUMN tcp_flags SMALLINT;
ALTER TABLE packets ADD COLUMN icmp_type SMALLINT;
-- The detector's feature vector of a flagged packet, in the order of its
-- model's feature names (models.detector); NULL for packets not flagged, so
-- the "why flagged" explanation can be computed later without the context
-- the worker had in memory.
ALTER TABLE packets ADD COLUMN features REAL[];
