-- Registered senders (`netsentinel sender add NAME`): only a SHA-256 of each
-- token is kept. When the table holds any row, a hello must carry the right
-- token and connections without a hello are refused.
CREATE TABLE sender_tokens (
    client       TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
