-- Suppression rules (issue #12): "this is normal". A rule matches an
-- incident when every field it sets matches the packet that opened it
-- (source: client side, destination: server side, port: server-side port,
-- protocol; sender: one of the incident's senders), until `until`. A
-- matching incident is stored as suppressed: counted, listed, never sent.
CREATE TABLE suppression_rules (
    id          BIGSERIAL PRIMARY KEY,
    source      CIDR,
    destination CIDR,
    port        INTEGER CHECK (port BETWEEN 0 AND 65535),
    protocol    TEXT,
    sender      TEXT,
    until       TIMESTAMPTZ,
    note        TEXT NOT NULL DEFAULT '',
    created_by  TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (source IS NOT NULL OR destination IS NOT NULL OR port IS NOT NULL
           OR protocol IS NOT NULL OR sender IS NOT NULL)
);

-- What a rule is matched against: the opening packet's ends, port and
-- protocol; and which rule suppressed an incident.
ALTER TABLE incidents
    ADD COLUMN client_addr   INET,
    ADD COLUMN server_addr   INET,
    ADD COLUMN server_port   INTEGER,
    ADD COLUMN protocol      TEXT,
    ADD COLUMN suppressed_by BIGINT;
