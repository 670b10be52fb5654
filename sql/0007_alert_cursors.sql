-- Alert sinks (issue #12): per sink, the id of the last incident it
-- delivered. A sink sends the incidents above it in id order and moves it
-- after each delivery, so a full queue, a receiver outage or a restart loses
-- none and sends none twice.
CREATE TABLE alert_cursors (
    sink       TEXT PRIMARY KEY,
    last_id    BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
