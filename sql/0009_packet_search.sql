-- Search (issue #12): a host's packets, either side, and a port's, newest
-- first (`/api/packets?host=`, `?net=`, `?port=`). Each side has its own
-- index so a search reads two short index ranges and merges them instead of
-- walking the table. Cost on ingest: measured by `cargo bench --bench
-- pipeline` (see README). On an existing installation these are built when
-- the server starts (ingestion waits for them: about a minute at 10M rows).
CREATE INDEX packets_source_ip_idx ON packets (source_ip, id DESC);
CREATE INDEX packets_dest_ip_idx ON packets (dest_ip, id DESC);
CREATE INDEX packets_src_port_idx ON packets (src_port, id DESC);
CREATE INDEX packets_dst_port_idx ON packets (dst_port, id DESC);
