#!/usr/bin/env bash
# Load benchmarks against the real binary on 127.0.0.1, each measured against its baseline in
# the same run (the machines are shared and noisy: compare ratios, not absolute numbers).
#
#   benches/load.sh [seconds-per-run]      (default 10)
#   LOAD_ONLY="s1 s2" benches/load.sh 3    (only these sections: s1 s7 s2 s3 s4 client)
#
# Installs wrk, nginx and haproxy from Debian's packages when missing (root). Writes the
# figures as key=value lines to target/bench/load.txt and prints them.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR="${1:-10}"
OUT=target/bench/load.txt
NEED_APT="wrk nginx haproxy"
source benches/common.sh
rps() { wrk -t2 -c"${3:-64}" -d"${DUR}s" --latency "$@" 2>&1 | awk '/Requests\/sec/ {print $2}'; }
wrk_h() { local url=$1; shift; wrk -t2 -c64 -d"${DUR}s" "$@" "$url" 2>&1; }

# Runs a section when LOAD_ONLY is unset or names it.
want() { [ -z "${LOAD_ONLY:-}" ] || [[ " $LOAD_ONLY " == *" $1 "* ]]; }
ratio() { python3 -c "print(round($1/$2,2))"; }
# As many open files as allowed (S3 holds 10,000 client connections, and their upstream ones).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
# The proxies' worker count: nginx's worker processes and HAProxy's threads, one per core.
NW=$(nproc)
# HAProxy's connection cap: high, within the open-file limit (two descriptors per connection).
FDS=$(ulimit -n); [ "$FDS" = unlimited ] && FDS=1048576
HAP_MAXCONN=$(( (FDS - 1000) / 2 )); [ "$HAP_MAXCONN" -gt 30000 ] && HAP_MAXCONN=30000

P_PEER=$(port); P_NGINX=$(port); P_HAPROXY=$(port); P_GW=$(port); P_ADMIN=$(port); P_RING=$(port)
$BIN proof-key generate --out "$WORK/client.pem" >/dev/null
$PEER serve "$P_PEER" "$WORK/client.pem" >/dev/null & PEER_PID=$!; PIDS+=($PEER_PID)

cat > "$WORK/nginx.conf" <<NGX
worker_processes $NW;
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

# HAProxy, the second S1 baseline: HTTP mode, as many threads as nginx has workers, kept
# upstream connections shared between client connections (http-reuse always), the same
# forwarded headers as nginx sets, no logging.
cat > "$WORK/haproxy.cfg" <<HAP
global
  nbthread $NW
  maxconn $HAP_MAXCONN
defaults
  mode http
  option http-keep-alive
  option forwardfor
  http-reuse always
  timeout connect 5s
  timeout client 3600s
  timeout server 3600s
  timeout tunnel 3600s
frontend front
  bind 127.0.0.1:$P_HAPROXY
  maxconn $HAP_MAXCONN
  http-request set-header X-Forwarded-Proto http
  default_backend docs
backend docs
  server peer 127.0.0.1:$P_PEER
HAP
$HAPROXY -c -q -f "$WORK/haproxy.cfg"
$HAPROXY -db -f "$WORK/haproxy.cfg" > "$WORK/haproxy.out" 2>&1 & PIDS+=($!)

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
WOPI_GATEWAY_LOG=warn $BIN serve --config "$WORK/gw.toml" > "$WORK/gw.out" 2> "$WORK/gw.err" & GW_PID=$!; PIDS+=($GW_PID)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$P_ADMIN/healthz" >/dev/null && curl -sf "http://127.0.0.1:$P_GW/small" >/dev/null && curl -sf "http://127.0.0.1:$P_NGINX/small" >/dev/null && curl -sf "http://127.0.0.1:$P_HAPROXY/small" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$P_HAPROXY/small" >/dev/null || { echo "HAProxy does not answer"; cat "$WORK/haproxy.out"; exit 1; }


if want s1; then
echo "# S1 proxy: small GETs with keep-alive (100-byte body), wrk -t1 -c64, three runs, against nginx and HAProxy"
rps1() { wrk -t1 -c64 -d"${DUR}s" "$1" 2>&1 | awk '/Requests\/sec/ {print $2}'; }
D=$(rps1 "http://127.0.0.1:$P_PEER/small"); rec direct_rps "$D"
# The order alternates between runs (the second of two back-to-back runs tends to lose):
# nginx, HAProxy, gateway in odd runs, gateway, HAProxy, nginx in even ones.
for r in 1 2 3; do
  if [ $((r % 2)) = 1 ]; then
    N=$(rps1 "http://127.0.0.1:$P_NGINX/small"); H=$(rps1 "http://127.0.0.1:$P_HAPROXY/small"); G=$(rps1 "http://127.0.0.1:$P_GW/small")
  else
    G=$(rps1 "http://127.0.0.1:$P_GW/small"); H=$(rps1 "http://127.0.0.1:$P_HAPROXY/small"); N=$(rps1 "http://127.0.0.1:$P_NGINX/small")
  fi
  rec "nginx_rps_$r" "$N"; rec "haproxy_rps_$r" "$H"; rec "gateway_rps_$r" "$G"
  rec "gateway_over_nginx_$r" "$(ratio "$G" "$N")"
  rec "gateway_over_haproxy_$r" "$(ratio "$G" "$H")"
done
fi

if want s7; then
echo "# S7 WebSocket echo through the proxy: 1,000 sockets, 16-byte frames, messages/s"
WN=$($PEER wsload "127.0.0.1:$P_NGINX" 1000 "$DUR"); rec nginx_ws_msgs "$WN"
WG=$($PEER wsload "127.0.0.1:$P_GW" 1000 "$DUR"); rec gateway_ws_msgs "$WG"
rec ws_gateway_over_nginx "$(python3 -c "print(round($WG/$WN,2))")"
fi

if want s2; then
echo "# S2a host face, as load.sh measured it first: CheckFileInfo with a fresh proof per request, wrk -t2 -c64, 3,000 proofs, the wopi-crate bare verifier, three runs"
# 3,000 proofs, each signed at its own timestamp (the gateway keeps no proof cache: every
# request pays one RSA verify, as with unbounded fresh proofs). The bare baseline verifies
# the same way (the wopi crate, RSA by ring) and returns the gateway's own CheckFileInfo JSON;
# its proofs sign the gateway's file id and access token, so both hash inputs of one length.
# The bare side runs first in every run.
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
fresh() { PROOFS=$1 wrk -t"${3:-2}" -c64 -d"${DUR}s" -s "$WORK/fresh.lua" "$2" 2>&1; }
non2xx() { awk '/Non-2xx/ {print $5}' <<<"$1" | grep . || echo 0; }
# CPU time of a process (all its threads), in clock ticks.
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
# One wrk run (fresh's arguments after the server's pid) and a last line "ticks N": the CPU
# the server used meanwhile.
fresh_cpu() { local pid=$1 t0; shift; t0=$(ticks "$pid"); fresh "$@"; echo "ticks $(( $(ticks "$pid") - t0 ))"; }
# The server's CPU per request of a fresh_cpu output, in microseconds (a second view of the
# same run: unlike requests per second, it hardly moves when other work shares the cores).
cpu_us() { python3 -c "print(round($(awk '/^ticks/ {print $2}' <<<"$1") * 1e6 / $(getconf CLK_TCK) / $(awk '/requests in/ {print $1}' <<<"$1"), 1))"; }
for r in 1 2 3; do
  BO=$(fresh_cpu "$PEER_PID" "$WORK/bare.proofs" "http://127.0.0.1:$P_PEER"); B=$(awk '/Requests\/sec/ {print $2}' <<<"$BO")
  GO=$(fresh_cpu "$GW_PID" "$WORK/gw.proofs" "http://127.0.0.1:$P_GW"); C=$(awk '/Requests\/sec/ {print $2}' <<<"$GO")
  rec "s2a_bare_verify_rps_$r" "$B"
  rec "s2a_gateway_checkfileinfo_rps_$r" "$C"
  rec "s2a_checkfileinfo_over_bare_verify_$r" "$(ratio "$C" "$B")"
  rec "s2a_non2xx_bare_gateway_$r" "$(non2xx "$BO")/$(non2xx "$GO")"
  rec "s2a_cpu_us_per_request_bare_$r" "$(cpu_us "$BO")"
  rec "s2a_cpu_us_per_request_gateway_$r" "$(cpu_us "$GO")"
done

echo "# S2b host face, the outside check's method: wrk -t1 -c64, 8,000 proofs over one session, a bare hyper + ring server, alternating, three runs"
# One file of 8,000 proofs, each signed at its own timestamp for the gateway's CheckFileInfo
# URL; both sides get the very same proofs (the Lua script above rotates through them). The
# baseline (bench_peer bare-ring) is hyper's HTTP/1.1 server that builds the signed bytes
# itself, verifies with ring against the gateway's URL and answers the gateway's
# CheckFileInfo JSON. The order alternates: the bare server first in odd runs.
# Set-up of S2b and S2c for the gateway on port $1 (its log $2): 8,000 proofs for its
# CheckFileInfo URL into $3, its CheckFileInfo JSON into $4, and a bare-ring server on port $5
# answering that JSON (its pid in RING), checked to accept the gateway's proofs.
outside_setup() {
  local gw=$1 err=$2 proofs=$3 json=$4 ring=$5 P L
  $PEER proofs "http://127.0.0.1:$gw" "http://127.0.0.1:$P_PEER" "$WORK/client.pem" 8000 > "$proofs"
  P=$(head -1 "$proofs"); L=$(sed -n 2p "$proofs")
  curl -sf "http://127.0.0.1:$gw$P" -H "X-WOPI-TimeStamp: ${L% *}" -H "X-WOPI-Proof: ${L#* }" > "$json" || { echo "CheckFileInfo through the gateway on port $gw failed"; cat "$err"; exit 1; }
  $PEER bare-ring "$ring" "$WORK/client.pem" "$json" "http://127.0.0.1:$gw" >/dev/null & RING=$!; PIDS+=($RING)
  for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$ring/" && break; sleep 0.1; done
  curl -sf -o /dev/null "http://127.0.0.1:$ring$P" -H "X-WOPI-TimeStamp: ${L% *}" -H "X-WOPI-Proof: ${L#* }" || { echo "the bare ring server refused a gateway proof"; exit 1; }
}
# Three alternating rounds (the bare server first in odd ones) of the gateway (pid $4, port
# $5) against the bare-ring server (pid $6, port $7) with the proofs in $8; figures under the
# prefix $1, the gateway's requests per second as $2, the ratio as $3.
outside_rounds() {
  local pre=$1 gw_key=$2 ratio_key=$3 gpid=$4 gw=$5 rpid=$6 ring=$7 proofs=$8 r BO GO B C
  for r in 1 2 3; do
    if [ $((r % 2)) = 1 ]; then
      BO=$(fresh_cpu "$rpid" "$proofs" "http://127.0.0.1:$ring" 1); GO=$(fresh_cpu "$gpid" "$proofs" "http://127.0.0.1:$gw" 1)
    else
      GO=$(fresh_cpu "$gpid" "$proofs" "http://127.0.0.1:$gw" 1); BO=$(fresh_cpu "$rpid" "$proofs" "http://127.0.0.1:$ring" 1)
    fi
    B=$(awk '/Requests\/sec/ {print $2}' <<<"$BO"); C=$(awk '/Requests\/sec/ {print $2}' <<<"$GO")
    rec "${pre}_bare_ring_rps_$r" "$B"
    rec "${pre}_${gw_key}_$r" "$C"
    rec "${pre}_${ratio_key}_$r" "$(ratio "$C" "$B")"
    rec "${pre}_non2xx_bare_gateway_$r" "$(non2xx "$BO")/$(non2xx "$GO")"
    rec "${pre}_cpu_us_per_request_bare_$r" "$(cpu_us "$BO")"
    rec "${pre}_cpu_us_per_request_gateway_$r" "$(cpu_us "$GO")"
  done
}
outside_setup "$P_GW" "$WORK/gw.err" "$WORK/gw8k.proofs" "$WORK/cfi8k.json" "$P_RING"; RING_PID=$RING
outside_rounds s2b gateway_checkfileinfo_rps checkfileinfo_over_bare_ring "$GW_PID" "$P_GW" "$RING_PID" "$P_RING" "$WORK/gw8k.proofs"

echo "# S2c: S2b's method against a second gateway at its default log level (info: one line per WOPI call, to a file), three runs"
# The gateway above runs with WOPI_GATEWAY_LOG=warn; a deployment (or a check that starts
# the binary as shipped) logs at info. Same config, its own ports and data directory, its
# own session and 8,000 proofs, its own bare-ring server (proofs signed for its URL).
P_GW2=$(port); P_ADMIN2=$(port); P_RING2=$(port)
sed -e "s/127.0.0.1:$P_GW\"/127.0.0.1:$P_GW2\"/g" -e "s/127.0.0.1:$P_ADMIN\"/127.0.0.1:$P_ADMIN2\"/" -e "s#$WORK/data#$WORK/data2#" "$WORK/gw.toml" > "$WORK/gw2.toml"
(unset WOPI_GATEWAY_LOG; exec $BIN serve --config "$WORK/gw2.toml" > "$WORK/gw2.out" 2> "$WORK/gw2.err") & GW2_PID=$!; PIDS+=($GW2_PID)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$P_ADMIN2/healthz" >/dev/null && break; sleep 0.1; done
outside_setup "$P_GW2" "$WORK/gw2.err" "$WORK/gw2_8k.proofs" "$WORK/cfi2.json" "$P_RING2"; RING2_PID=$RING
outside_rounds s2c gateway_info_log_checkfileinfo_rps checkfileinfo_info_log_over_bare_ring "$GW2_PID" "$P_GW2" "$RING2_PID" "$P_RING2" "$WORK/gw2_8k.proofs"
rec s2c_gateway_log_lines "$(wc -l < "$WORK/gw2.err")"
kill "$GW2_PID" "$RING2_PID" "$RING_PID" 2>/dev/null || true
fi

if want s3; then
echo "# S3 memory: 10,000 idle keep-alive client connections after one 108 KB answer each, all 10,000 requests sent before any answer is read"
# One client process opens 10,000 connections and sends one request on each, reading
# nothing; only then does it read the answers (a 108 KB document, the size of a WOPI
# discovery), all at once through epoll, and keeps the connections open. So the server holds
# up to 10,000 answers in flight at once, as when many clients are slow to read. Measured:
# RSS after every answer was read, above the RSS before the connections (idle), and the
# highest RSS sampled every 0.1 s meanwhile. Baseline: nginx's workers after proxying the
# same document. Also measured: the gateway's own route (its discovery document). The client
# gives up after 120 s; it reports how many connections the server closed after answering.
idle_conns() { # port path marker
  python3 - "$1" "$2" "$3" <<'PY' &
import selectors, socket, sys, time
port, path, marker = int(sys.argv[1]), sys.argv[2], sys.argv[3]
N, deadline = 10000, time.monotonic() + 120
req = ("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode()
socks = []
for i in range(N):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(req)
    socks.append(s)
    if time.monotonic() > deadline:
        raise SystemExit("connecting took longer than 120 s")
sel = selectors.DefaultSelector()
for s in socks:
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ, {"head": b"", "need": None, "got": 0})
buf, left = bytearray(1 << 18), N
while left:
    if time.monotonic() > deadline:
        raise SystemExit("%d of %d answers unread after 120 s" % (left, N))
    for key, _ in sel.select(timeout=1):
        s, st = key.fileobj, key.data
        try:
            n = s.recv_into(buf)
        except BlockingIOError:
            continue
        if n == 0:
            raise SystemExit("a connection closed before its whole answer")
        if st["need"] is None:
            st["head"] += bytes(buf[:n])
            if b"\r\n\r\n" not in st["head"]:
                continue
            head, body = st["head"].split(b"\r\n\r\n", 1)
            need = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
            if not need:
                raise SystemExit("an answer without Content-Length: " + head.decode(errors="replace"))
            st["need"], st["got"], st["head"] = need[0], len(body), b""
        else:
            st["got"] += n
        if st["got"] >= st["need"]:
            sel.unregister(s)
            left -= 1
time.sleep(0.5)
closed = 0
for s in socks:
    try:
        if s.recv(1, socket.MSG_PEEK) == b"":
            closed += 1
    except BlockingIOError:
        pass
open(marker, "w").write(str(closed))
time.sleep(30)
PY
  echo $!
}
hold_idle() { # key port path pids... -> records KEY_mib (RSS growth), KEY_peak_mib, KEY_closed
  local key=$1 port=$2 path=$3; shift 3
  local marker="$WORK/idle-ready" before=0 after=0 peak=0 now p
  rm -f "$marker"
  for p in "$@"; do before=$((before + $(rss "$p"))); done
  local ip; ip=$(idle_conns "$port" "$path" "$marker"); PIDS+=("$ip")
  for _ in $(seq 1300); do
    [ -f "$marker" ] && break
    kill -0 "$ip" 2>/dev/null || break
    now=0; for p in "$@"; do now=$((now + $(rss "$p"))); done
    [ "$now" -gt "$peak" ] && peak=$now
    sleep 0.1
  done
  [ -s "$marker" ] || { echo "the idle connections did not all get their answer" >&2; exit 1; }
  sleep 1
  for p in "$@"; do after=$((after + $(rss "$p"))); done
  [ "$after" -gt "$peak" ] && peak=$after
  kill "$ip" 2>/dev/null || true; wait "$ip" 2>/dev/null || true
  rec "${key}_mib" $(( (after - before) / 1024 ))
  rec "${key}_peak_mib" $(( (peak - before) / 1024 ))
  rec "${key}_closed" "$(cat "$marker")"
  sleep 2
}
DOC="/web-apps/big?n=110592"
NGINX_WORKERS=$(pgrep -P "$(cat "$WORK/nginx.pid")" | tr '\n' ' ')
rec gateway_rss_before_idle_mib "$(( $(rss $GW_PID) / 1024 ))"
# shellcheck disable=SC2086
hold_idle nginx_rss_10k_sent_first "$P_NGINX" "$DOC" $NGINX_WORKERS
hold_idle gateway_rss_10k_sent_first "$P_GW" "$DOC" "$GW_PID"
hold_idle gateway_rss_10k_sent_first_own_route "$P_GW" /hosting/discovery "$GW_PID"
fi

if want s4; then
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
fi

if want client; then
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
fi

echo "results in $OUT"
python3 benches/report.py "$OUT"
