-- Search (issue #12): a host's packets, either side, and a port's, newest
-- first (`/api/packets?host=`, `?net=`, `?port=`). Each side has its own
-- index, so a search reads short index ranges backwards (one per side and
-- verdict) and merges them instead of walking the table. The verdict is
-- part of the key so "anomalies only" is a range of its own: as a filter it
-- read every packet of a busy host that had no anomaly (0.5 s at 39,000).
--
-- The id is the last column in ascending order on purpose: a new packet
-- always has the highest id of its key, so it lands at the right end of its
-- key's run, where PostgreSQL's B-tree splits pages after the new item and
-- keeps them full. (The same indexes with `id DESC` insert at the left end,
-- split pages in half and cost twice as much on ingest.)
-- On an existing installation these are built when the server starts
-- (ingestion waits for them: about a minute at 10M rows).
CREATE INDEX packets_source_ip_idx ON packets (source_ip, anomaly_flag, id);
CREATE INDEX packets_dest_ip_idx ON packets (dest_ip, anomaly_flag, id);
CREATE INDEX packets_src_port_idx ON packets (src_port, anomaly_flag, id);
CREATE INDEX packets_dst_port_idx ON packets (dst_port, anomaly_flag, id);
