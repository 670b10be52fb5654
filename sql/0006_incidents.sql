-- Incidents (issue #12): flagged packets grouped per host while they keep
-- coming. The worker writes each one right after the batch that changed it,
-- by `first_packet` (the row id of the packet that opened it), so a retried
-- write updates instead of storing it twice. `status` is a person's: the
-- worker never changes it.
CREATE TABLE incidents (
    id                BIGSERIAL PRIMARY KEY,
    first_packet      BIGINT NOT NULL UNIQUE,
    host              INET NOT NULL,
    role              TEXT NOT NULL CHECK (role IN ('source', 'target')),
    kind              TEXT NOT NULL,
    status            TEXT NOT NULL DEFAULT 'open'
                      CHECK (status IN ('open', 'acknowledged', 'suppressed', 'closed')),
    first_seen        TIMESTAMPTZ NOT NULL,
    last_seen         TIMESTAMPTZ NOT NULL,
    packets           BIGINT NOT NULL,
    bytes             BIGINT NOT NULL,
    peers             INTEGER NOT NULL,
    peers_overflow    BOOLEAN NOT NULL DEFAULT false,
    ports             INTEGER NOT NULL,
    ports_overflow    BOOLEAN NOT NULL DEFAULT false,
    top_peers         JSONB NOT NULL,
    top_ports         JSONB NOT NULL,
    senders           TEXT[] NOT NULL,
    peak_score        DOUBLE PRECISION NOT NULL,
    peak_packet       BIGINT NOT NULL,
    model_id          BIGINT,
    summary           TEXT NOT NULL,
    reasons           JSONB NOT NULL,
    opened_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    status_changed_at TIMESTAMPTZ
);

-- The list: newest first, optionally by status; a host's incidents.
CREATE INDEX incidents_status_id ON incidents (status, id DESC);
CREATE INDEX incidents_host_id ON incidents (host, id DESC);
