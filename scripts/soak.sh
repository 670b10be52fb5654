#!/usr/bin/env bash
# Soak test (issue #6, promise 3): 5 senders at RATE packets/s in total for
# SECONDS against the release server; every 10 s samples the server's RSS,
# queue depth, commit latency and stored rate into a CSV. Then checks that
# every packet sent is stored, that RSS stays under 150 MB and does not trend
# upward. Not part of CI (it takes 10 minutes); run it by hand:
#
#   bash scripts/soak.sh [SECONDS=600] [RATE=50000] [CSV=target/soak.csv]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TOTAL=${1:-600}
RATE=${2:-50000}
CSV=${3:-target/soak.csv}
SENDERS=5

bash scripts/setup-db.sh >/dev/null
cargo build --release --quiet
BIN=target/release/netsentinel
DB=ns_soak_$$
URL=postgresql://postgres@127.0.0.1:5432/$DB
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port); DASH=$(free_port)
WORK=$(mktemp -d)
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" postgres

RUST_LOG=info "$BIN" server --port "$PORT" --dashboard-port "$DASH" --database-url "$URL" 2>"$WORK/server.log" &
SERVER=$!
for _ in $(seq 1 100); do grep -q "dashboard on" "$WORK/server.log" && break; sleep 0.2; done
grep -q "dashboard on" "$WORK/server.log" || { cat "$WORK/server.log"; exit 1; }

CLIENTS=()
for i in $(seq 1 $SENDERS); do
  RUST_LOG=warn "$BIN" client "soak$i" --continuous --rate $((RATE / SENDERS)) --json \
    --server "127.0.0.1:$PORT" </dev/null >"$WORK/client$i.json" 2>"$WORK/client$i.log" &
  CLIENTS+=($!)
done

metric() { curl -s "http://127.0.0.1:$DASH/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
mkdir -p "$(dirname "$CSV")"
echo "seconds,rss_mb,queue_depth,commit_ms_mean,stored_total,stored_per_s" >"$CSV"
prev_sum=0; prev_count=0; prev_stored=0; start=$(date +%s)
while true; do
  sleep 10
  now=$(( $(date +%s) - start ))
  rss_kb=$(awk '/^VmRSS:/ {print $2}' /proc/$SERVER/status)
  depth=$(metric netsentinel_queue_depth)
  sum=$(metric netsentinel_commit_seconds_sum); count=$(metric netsentinel_commit_seconds_count)
  stored=$(metric netsentinel_packets_stored_total)
  python3 - "$CSV" "$now" "$rss_kb" "$depth" "$sum" "$count" "$prev_sum" "$prev_count" "$stored" "$prev_stored" <<'PY'
import sys
csv, t, rss, depth, s, c, ps, pc, st, pst = sys.argv[1:]
dc = float(c) - float(pc)
mean = (float(s) - float(ps)) / dc * 1000 if dc > 0 else 0.0
line = f"{t},{int(rss)/1024:.1f},{depth},{mean:.2f},{st},{(float(st)-float(pst))/10:.0f}"
open(csv, "a").write(line + "\n")
print(line, flush=True)
PY
  prev_sum=$sum; prev_count=$count; prev_stored=$stored
  [ "$now" -ge "$SECONDS_TOTAL" ] && break
done

for pid in "${CLIENTS[@]}"; do kill -INT "$pid"; done
for pid in "${CLIENTS[@]}"; do wait "$pid" || true; done
kill -TERM "$SERVER"; wait "$SERVER" || true
ROWS=$(psql -h 127.0.0.1 -U postgres -Atc "SELECT count(*) FROM packets" "$DB")
status=0
python3 - "$CSV" "$ROWS" "$WORK" $SENDERS <<'PY' || status=1
import json, sys, csv
path, rows, work, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
sent = acked = 0
for i in range(1, n + 1):
    r = json.load(open(f"{work}/client{i}.json"))
    sent += r["sent"]; acked += r["acked"]
data = list(csv.DictReader(open(path)))
rss = [float(d["rss_mb"]) for d in data]
third = max(1, len(rss) // 3)
early, late = sum(rss[third:2*third]) / max(1, len(rss[third:2*third])), sum(rss[-third:]) / third
ok = True
print(f"sent {sent}, acknowledged {acked}, rows stored {rows}")
print(f"RSS start {rss[0]:.1f} MB, end {rss[-1]:.1f} MB, max {max(rss):.1f} MB; middle third mean {early:.1f}, last third mean {late:.1f}")
if rows != sent or acked != sent: print("FAIL: not every packet sent was acknowledged and stored"); ok = False
if max(rss) >= 150: print("FAIL: RSS reached 150 MB"); ok = False
if late > early * 1.10 + 2: print("FAIL: RSS trends upward"); ok = False
print("soak passed" if ok else "soak FAILED")
sys.exit(0 if ok else 1)
PY
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" postgres
rm -rf "$WORK"
exit $status
