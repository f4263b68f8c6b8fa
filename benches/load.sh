#!/usr/bin/env bash
# Load benchmarks against the real binary on 127.0.0.1, each measured against its baseline in
# the same run (the machines are shared and noisy: compare ratios, not absolute numbers).
#
#   benches/load.sh [seconds-per-run]      (default 10)
#
# Installs wrk and nginx from Debian's packages when missing (root). Writes the figures as
# key=value lines to target/bench/load.txt and prints them.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR="${1:-10}"
OUT=target/bench/load.txt
NEED_APT="wrk nginx"
source benches/common.sh
rps() { wrk -t2 -c"${3:-64}" -d"${DUR}s" --latency "$@" 2>&1 | awk '/Requests\/sec/ {print $2}'; }
wrk_h() { local url=$1; shift; wrk -t2 -c64 -d"${DUR}s" "$@" "$url" 2>&1; }

P_PEER=$(port); P_NGINX=$(port); P_GW=$(port); P_ADMIN=$(port)
$BIN proof-key generate --out "$WORK/client.pem" >/dev/null
$PEER serve "$P_PEER" "$WORK/client.pem" >/dev/null & PEER_PID=$!; PIDS+=($PEER_PID)

cat > "$WORK/nginx.conf" <<NGX
worker_processes auto;
daemon off;
error_log $WORK/nginx-error.log warn;
pid $WORK/nginx.pid;
events { worker_connections 16384; }
http {
  access_log off;
  upstream docs { server 127.0.0.1:$P_PEER; keepalive 256; }
  server {
    listen 127.0.0.1:$P_NGINX;
    location /ws {
      proxy_pass http://docs;
      proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_set_header Host \$host;
      proxy_read_timeout 3600s;
    }
    location / {
      proxy_pass http://docs;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_buffering on;
    }
  }
}
NGX
$NGINX -c "$WORK/nginx.conf" -p "$WORK" & PIDS+=($!)

cat > "$WORK/gw.toml" <<TOML
[server]
listen = "127.0.0.1:$P_GW"
admin_listen = "127.0.0.1:$P_ADMIN"
public_url = "http://127.0.0.1:$P_GW"
data_dir = "$WORK/data"
max_concurrent_requests = 100000
[locks]
[host_face]
discovery_urls = ["http://127.0.0.1:$P_PEER/hosting/discovery"]
[[host_face.integrator]]
name = "bench"
jwt_secret = "bench-integrator-secret-0123456789"
allowed_origins = ["http://127.0.0.1:$P_PEER"]
[docs]
url = "http://127.0.0.1:$P_PEER"
jwt_secret = "bench-docs-secret-0123456789abcdef"
[client_face]
allowed_wopi_origins = ["http://127.0.0.1:$P_PEER"]
TOML
ulimit -n 65536 || true
WOPI_GATEWAY_LOG=warn $BIN serve --config "$WORK/gw.toml" > "$WORK/gw.out" 2> "$WORK/gw.err" & GW_PID=$!; PIDS+=($GW_PID)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$P_ADMIN/healthz" >/dev/null && curl -sf "http://127.0.0.1:$P_GW/small" >/dev/null && curl -sf "http://127.0.0.1:$P_NGINX/small" >/dev/null && break; sleep 0.1; done


echo "# S1 proxy: small GETs with keep-alive (100-byte body), wrk -t1 -c64, three runs"
rps1() { wrk -t1 -c64 -d"${DUR}s" "$1" 2>&1 | awk '/Requests\/sec/ {print $2}'; }
D=$(rps1 "http://127.0.0.1:$P_PEER/small"); rec direct_rps "$D"
# The order alternates between runs (the second of two back-to-back runs tends to lose).
for r in 1 2 3; do
  if [ $((r % 2)) = 1 ]; then
    N=$(rps1 "http://127.0.0.1:$P_NGINX/small"); G=$(rps1 "http://127.0.0.1:$P_GW/small")
  else
    G=$(rps1 "http://127.0.0.1:$P_GW/small"); N=$(rps1 "http://127.0.0.1:$P_NGINX/small")
  fi
  rec "nginx_rps_$r" "$N"; rec "gateway_rps_$r" "$G"
  rec "gateway_over_nginx_$r" "$(python3 -c "print(round($G/$N,2))")"
done

echo "# S7 WebSocket echo through the proxy: 1,000 sockets, 16-byte frames, messages/s"
WN=$($PEER wsload "127.0.0.1:$P_NGINX" 1000 "$DUR"); rec nginx_ws_msgs "$WN"
WG=$($PEER wsload "127.0.0.1:$P_GW" 1000 "$DUR"); rec gateway_ws_msgs "$WG"
rec ws_gateway_over_nginx "$(python3 -c "print(round($WG/$WN,2))")"

echo "# S2 host face: CheckFileInfo with a fresh proof per request, three runs"
# 3,000 proofs, each signed at its own timestamp (the gateway keeps no proof cache: every
# request pays one RSA verify, as with unbounded fresh proofs). The bare baseline verifies
# the same way (the wopi crate, RSA by ring) and returns the gateway's own CheckFileInfo JSON;
# its proofs sign the gateway's file id and access token, so both hash inputs of one length.
$PEER proofs "http://127.0.0.1:$P_GW" "http://127.0.0.1:$P_PEER" "$WORK/client.pem" 3000 > "$WORK/gw.proofs"
$PEER proofs "bare:http://127.0.0.1:$P_PEER" "http://127.0.0.1:$P_PEER" "$WORK/client.pem" 3000 "$(head -1 "$WORK/gw.proofs")" > "$WORK/bare.proofs"
P=$(head -1 "$WORK/gw.proofs"); L=$(sed -n 2p "$WORK/gw.proofs")
curl -sf "http://127.0.0.1:$P_GW$P" -H "X-WOPI-TimeStamp: ${L% *}" -H "X-WOPI-Proof: ${L#* }" > "$WORK/cfi.json" || { echo "CheckFileInfo through the gateway failed"; cat "$WORK/gw.err"; exit 1; }
kill "$PEER_PID"; sleep 0.2
BARE_JSON="$WORK/cfi.json" $PEER serve "$P_PEER" "$WORK/client.pem" >/dev/null & PEER_PID=$!; PIDS+=($PEER_PID)
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$P_PEER/healthcheck" >/dev/null && break; sleep 0.1; done
cat > "$WORK/fresh.lua" <<'LUA'
local f = assert(io.open(os.getenv("PROOFS"), "r"))
path = f:read("*l")
ts, pr = {}, {}
for line in f:lines() do
  local a, b = line:match("^(%S+) (%S+)$")
  if a then table.insert(ts, a); table.insert(pr, b) end
end
f:close()
local n, i = #ts, 0
function init(args) i = math.random(n) end
function request()
  i = i % n + 1
  return wrk.format("GET", path, {["X-WOPI-TimeStamp"] = ts[i], ["X-WOPI-Proof"] = pr[i]})
end
LUA
fresh() { PROOFS=$1 wrk -t2 -c64 -d"${DUR}s" -s "$WORK/fresh.lua" "$2" 2>&1; }
for r in 1 2 3; do
  BO=$(fresh "$WORK/bare.proofs" "http://127.0.0.1:$P_PEER"); B=$(awk '/Requests\/sec/ {print $2}' <<<"$BO")
  GO=$(fresh "$WORK/gw.proofs" "http://127.0.0.1:$P_GW"); C=$(awk '/Requests\/sec/ {print $2}' <<<"$GO")
  rec "bare_verify_rps_$r" "$B"
  rec "gateway_checkfileinfo_rps_$r" "$C"
  rec "checkfileinfo_over_bare_verify_$r" "$(python3 -c "print(round($C/$B,2))")"
  rec "non2xx_bare_gateway_$r" "$(awk '/Non-2xx/ {print $5}' <<<"$BO" | grep . || echo 0)/$(awk '/Non-2xx/ {print $5}' <<<"$GO" | grep . || echo 0)"
done

echo "# S3 memory: 10,000 idle keep-alive client connections, each after one 108 KB answer"
# Each connection sends one request, reads the whole answer (a 108 KB document, the size of
# a WOPI discovery) and stays open. Baseline: nginx holding the same connections after
# proxying the same document (growth of its workers' RSS). Also measured: the gateway's own
# route (its discovery document), which hyper serves.
idle_conns() { # port path marker
  python3 - "$1" "$2" "$3" <<'PY' &
import socket, sys, time
port, path, marker = int(sys.argv[1]), sys.argv[2], sys.argv[3]
req = ("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode()
socks = []
def answer(s):
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    head, body = data.split(b"\r\n\r\n", 1)
    n = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            n = int(line.split(b":")[1])
    while len(body) < n:
        chunk = s.recv(65536)
        if not chunk:
            raise SystemExit("connection closed early")
        body += chunk
for i in range(10000):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(req)
    socks.append(s)
    if len(socks) % 100 == 0:
        for t in socks[-100:]:
            answer(t)
for t in socks[len(socks) - len(socks) % 100:]:
    answer(t)
open(marker, "w").write("1")
time.sleep(30)
PY
  echo $!
}
hold_idle() { # port path pids... -> KiB of RSS growth of those pids
  local port=$1 path=$2; shift 2
  local marker="$WORK/idle-ready" before=0 after=0 p
  rm -f "$marker"
  for p in "$@"; do before=$((before + $(rss "$p"))); done
  local ip; ip=$(idle_conns "$port" "$path" "$marker"); PIDS+=("$ip")
  for _ in $(seq 600); do [ -f "$marker" ] && break; sleep 0.1; done
  [ -f "$marker" ] || { echo "the idle connections did not all get their answer" >&2; exit 1; }
  sleep 1
  for p in "$@"; do after=$((after + $(rss "$p"))); done
  kill "$ip" 2>/dev/null || true; wait "$ip" 2>/dev/null || true
  sleep 1
  echo $(( (after - before) / 1024 ))
}
DOC="/web-apps/big?n=110592"
NGINX_WORKERS=$(pgrep -f "nginx: worker" | tr '\n' ' ')
rec gateway_rss_before_idle_mib "$(( $(rss $GW_PID) / 1024 ))"
# shellcheck disable=SC2086
rec nginx_rss_10k_idle_mib "$(hold_idle "$P_NGINX" "$DOC" $NGINX_WORKERS)"
rec gateway_rss_10k_idle_mib "$(hold_idle "$P_GW" "$DOC" "$GW_PID")"
rec gateway_rss_10k_idle_own_route_mib "$(hold_idle "$P_GW" /hosting/discovery "$GW_PID")"

echo "# 1 GiB streamed download: through the gateway vs direct"
SZ=$((1024*1024*1024))
T0=$(date +%s.%N); curl -s -o /dev/null "http://127.0.0.1:$P_PEER/big?n=$SZ"; T1=$(date +%s.%N)
H0=$(hwm $GW_PID)
T2=$(date +%s.%N); curl -s -o /dev/null "http://127.0.0.1:$P_GW/web-apps/big?n=$SZ"; T3=$(date +%s.%N)
H1=$(hwm $GW_PID)
T4=$(date +%s.%N); curl -s -o /dev/null "http://127.0.0.1:$P_NGINX/web-apps/big?n=$SZ"; T5=$(date +%s.%N)
rec nginx_1gib_seconds "$(python3 -c "print(round($T5-$T4,3))")"
rec download_gateway_over_nginx "$(python3 -c "print(round(($T5-$T4)/($T3-$T2),2))")"
rec direct_1gib_seconds "$(python3 -c "print(round($T1-$T0,3))")"
rec gateway_1gib_seconds "$(python3 -c "print(round($T3-$T2,3))")"
rec download_gateway_over_direct "$(python3 -c "print(round(($T1-$T0)/($T3-$T2),2))")"
rec gateway_peak_rss_growth_mib "$(( (H1-H0) / 1024 ))"
echo "# host face: GetFile and PutFile of 1 GiB"
mapfile -t B < <($PEER headers "http://127.0.0.1:$P_GW" "http://127.0.0.1:$P_PEER" "$WORK/client.pem" big.bin)
curl -sf -o /dev/null "http://127.0.0.1:$P_GW${B[3]}" -H "${B[4]}" -H "${B[5]}"   # the first GetFile fills the spool
T0=$(date +%s.%N); curl -s -o /dev/null "http://127.0.0.1:$P_PEER/doc/big.bin"; T1=$(date +%s.%N)
H0=$(hwm $GW_PID)
T2=$(date +%s.%N); curl -sf -o /dev/null "http://127.0.0.1:$P_GW${B[3]}" -H "${B[4]}" -H "${B[5]}"; T3=$(date +%s.%N)
rec getfile_1gib_seconds "$(python3 -c "print(round($T3-$T2,3))")"
rec getfile_over_direct "$(python3 -c "print(round(($T1-$T0)/($T3-$T2),2))")"
# The issue's baseline: dd reading the very file the gateway serves (from the page cache).
STORED=$(find "$WORK/data" -type f -size +1000M | head -1)
[ -n "$STORED" ] || { echo "the 1 GiB file is not in the content store"; exit 1; }
T8=$(date +%s.%N); dd if="$STORED" of=/dev/null bs=1M status=none; T9=$(date +%s.%N)
rec dd_read_1gib_seconds "$(python3 -c "print(round($T9-$T8,3))")"
rec getfile_over_dd_read "$(python3 -c "print(round(($T9-$T8)/($T3-$T2),2))")"
head -c $SZ /dev/zero > "$WORK/upload.bin"
curl -sf -o /dev/null -X POST "http://127.0.0.1:$P_GW${B[0]}" -H "${B[1]}" -H "${B[2]}" -H "X-WOPI-Override: LOCK" -H "X-WOPI-Lock: bench"
T4=$(date +%s.%N); cp "$WORK/upload.bin" "$WORK/copy.bin" && sync "$WORK/copy.bin"; T5=$(date +%s.%N)
rm -f "$WORK/copy.bin"
# The issue's baseline: dd writing the same bytes and fsyncing them.
T10=$(date +%s.%N); dd if="$WORK/upload.bin" of="$WORK/copy.bin" bs=1M conv=fsync status=none; T11=$(date +%s.%N)
rm -f "$WORK/copy.bin"
T6=$(date +%s.%N); curl -sf -o /dev/null -X POST -T "$WORK/upload.bin" "http://127.0.0.1:$P_GW${B[3]}" -H "${B[4]}" -H "${B[5]}" -H "X-WOPI-Override: PUT" -H "X-WOPI-Lock: bench" -H "Content-Type: application/octet-stream"; T7=$(date +%s.%N)
H1=$(hwm $GW_PID)
rec copy_fsync_1gib_seconds "$(python3 -c "print(round($T5-$T4,3))")"
rec putfile_1gib_seconds "$(python3 -c "print(round($T7-$T6,3))")"
rec putfile_over_direct_copy "$(python3 -c "print(round(($T5-$T4)/($T7-$T6),2))")"
rec dd_write_fsync_1gib_seconds "$(python3 -c "print(round($T11-$T10,3))")"
rec putfile_over_dd_write_fsync "$(python3 -c "print(round(($T11-$T10)/($T7-$T6),2))")"
rec hostface_peak_rss_growth_mib "$(( (H1-H0) / 1024 ))"
echo "# client face: editor open overhead and a 100 MiB status-2 save"
SRC="http%3A%2F%2F127.0.0.1%3A$P_PEER%2Fwopi%2Ffiles%2Fbench"
ACTION="http://127.0.0.1:$P_GW/hosting/wopi/word/edit?WOPISrc=$SRC"
pct() { sort -n | awk -v p="$1" '{a[NR]=$1} END {i=int(NR*p/100); if (i<1) i=1; printf "%.2f", a[i]*1000}'; }
for _ in $(seq 200); do curl -s -o /dev/null -w '%{time_total}\n' -d 'access_token=t&access_token_ttl=0' "$ACTION"; done > "$WORK/open.txt"
for _ in $(seq 200); do
  a=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$P_PEER/wopi/files/bench?access_token=t")
  b=$(curl -s -o /dev/null -w '%{time_total}' -X POST -H 'X-WOPI-Override: LOCK' -H 'X-WOPI-Lock: k' "http://127.0.0.1:$P_PEER/wopi/files/bench?access_token=t")
  python3 -c "print($a+$b)"
done > "$WORK/host.txt"
rec editor_open_p50_ms "$(pct 50 < "$WORK/open.txt")"
rec editor_open_p99_ms "$(pct 99 < "$WORK/open.txt")"
rec host_checkfileinfo_lock_p50_ms "$(pct 50 < "$WORK/host.txt")"
rec host_checkfileinfo_lock_p99_ms "$(pct 99 < "$WORK/host.txt")"
KEY=$(curl -s -d 'access_token=t&access_token_ttl=0' "$ACTION" | grep -o '"key":"[^"]*"' | head -1 | cut -d'"' -f4)
$PEER callback "$KEY" "http://127.0.0.1:$P_PEER/cache/big" "bench-docs-secret-0123456789abcdef" > "$WORK/cb.json"
T0=$(date +%s.%N); curl -s -o "$WORK/direct.bin" "http://127.0.0.1:$P_PEER/cache/big"; curl -s -o /dev/null -X POST -T "$WORK/direct.bin" "http://127.0.0.1:$P_PEER/wopi/files/bench/contents"; T1=$(date +%s.%N)
H0=$(hwm $GW_PID)
T2=$(date +%s.%N); ANSWER=$(curl -s -H 'content-type: application/json' --data-binary "@$WORK/cb.json" "http://127.0.0.1:$P_GW/docs/callback/$KEY"); T3=$(date +%s.%N)
H1=$(hwm $GW_PID)
[ "$ANSWER" = '{"error":0}' ] || { echo "status 2 was not accepted: $ANSWER"; exit 1; }
rec save_100mib_direct_seconds "$(python3 -c "print(round($T1-$T0,3))")"
rec save_100mib_gateway_seconds "$(python3 -c "print(round($T3-$T2,3))")"
rec save_over_direct_copy "$(python3 -c "print(round(($T1-$T0)/($T3-$T2),2))")"
rec clientface_peak_rss_growth_mib "$(( (H1-H0) / 1024 ))"
echo "results in $OUT"
python3 benches/report.py "$OUT"
