-- Running totals per protocol, kept by the worker in the same transaction as
-- the packets, so the dashboard's totals read a handful of rows however many
-- packets and minutes are stored.
CREATE TABLE traffic_totals (
    protocol  TEXT PRIMARY KEY,
    packets   BIGINT NOT NULL,
    bytes     BIGINT NOT NULL,
    anomalies BIGINT NOT NULL
);
INSERT INTO traffic_totals (protocol, packets, bytes, anomalies)
SELECT protocol, sum(packets), sum(bytes), sum(anomalies) FROM traffic_minutes GROUP BY protocol;
