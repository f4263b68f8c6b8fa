#!/usr/bin/env bash
# Scale-out benchmarks, each against its baseline in the same run (ratios, not absolutes):
#  1. WOPI CheckFileInfo + Lock + Unlock on 64 files (a fresh lock each cycle): three
#     instances sharing Redis and one content directory ÷ one instance on memory, both behind
#     the same nginx (round robin, keep-alive upstreams).
#  2. PutFile of 1 GiB to the fs content store ÷ cp + sync of the same file, and to the s3
#     store (moto's S3 server) ÷ a plain curl PUT of the file to the same server; peak RSS
#     growth of the gateway.
#  Also: the size in Redis of a file state, a session entry and a lock (MEMORY USAGE).
#
#   benches/cluster.sh [seconds-per-run]      (default 10)
#
# Needs wrk, nginx, redis-server (Debian) and moto_server (pip install "moto[server]");
# installs them when missing (root). Writes key=value lines to target/bench/cluster.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR="${1:-10}"
OUT=target/bench/cluster.txt
NEED_APT="wrk nginx redis-server"
source benches/common.sh
command -v moto_server >/dev/null 2>&1 || { pip3 install -q "moto[server]"; command -v pyenv >/dev/null 2>&1 && pyenv rehash; hash -r; }
ulimit -n 65536 2>/dev/null || true

P_PEER=$(port); P_REDIS=$(port); P_S3=$(port); P_LB1=$(port); P_LB3=$(port)
$BIN proof-key generate --out "$WORK/client.pem" >/dev/null
$BIN proof-key generate --out "$WORK/gateway.pem" >/dev/null
openssl rand -hex 32 > "$WORK/access.secret"
echo "moto-secret" > "$WORK/s3.secret"
$PEER serve "$P_PEER" "$WORK/client.pem" >/dev/null & PIDS+=($!)
redis-server --port "$P_REDIS" --bind 127.0.0.1 --save "" --appendonly no >/dev/null & PIDS+=($!)
moto_server -H 127.0.0.1 -p "$P_S3" >/dev/null 2>&1 & PIDS+=($!)
mkdir -p "$WORK/content"

# gw NAME LISTEN_PORT PUBLIC_URL EXTRA_TOML
gw() {
  local name=$1 p=$2 public=$3 extra=$4 admin
  admin=$(port)
  cat > "$WORK/$name.toml" <<TOML
[server]
listen = "127.0.0.1:$p"
admin_listen = "127.0.0.1:$admin"
public_url = "$public"
data_dir = "$WORK/data-$name"
max_concurrent_requests = 100000
$extra
[host_face]
discovery_urls = ["http://127.0.0.1:$P_PEER/hosting/discovery"]
access_token_secret_file = "$WORK/access.secret"
[[host_face.integrator]]
name = "bench"
jwt_secret = "bench-integrator-secret-0123456789"
allowed_origins = ["http://127.0.0.1:$P_PEER"]
[docs]
url = "http://127.0.0.1:$P_PEER"
jwt_secret = "bench-docs-secret-0123456789abcdef"
[client_face]
proof_key_file = "$WORK/gateway.pem"
allowed_wopi_origins = ["http://127.0.0.1:$P_PEER"]
TOML
  WOPI_GATEWAY_LOG=warn $BIN serve --config "$WORK/$name.toml" > "$WORK/$name.out" 2> "$WORK/$name.err" &
  PIDS+=($!)
  eval "PID_$name=$!"
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$admin/healthz" >/dev/null && return; sleep 0.1; done
  echo "gateway $name did not start"; cat "$WORK/$name.err"; exit 1
}
for _ in $(seq 100); do redis-cli -p "$P_REDIS" ping >/dev/null 2>&1 && break; sleep 0.1; done
for _ in $(seq 200); do curl -sf -X PUT "http://127.0.0.1:$P_S3/bench" >/dev/null 2>&1 && break; sleep 0.1; done

CLUSTER="[cluster]
redis_url = \"redis://127.0.0.1:$P_REDIS/\"
[content]
dir = \"$WORK/content\""
P_ONE=$(port); P_A=$(port); P_B=$(port); P_C=$(port); P_S3GW=$(port)
gw one "$P_ONE" "http://127.0.0.1:$P_LB1" ""
gw a "$P_A" "http://127.0.0.1:$P_LB3" "$CLUSTER"
gw b "$P_B" "http://127.0.0.1:$P_LB3" "$CLUSTER"
gw c "$P_C" "http://127.0.0.1:$P_LB3" "$CLUSTER"
gw s3 "$P_S3GW" "http://127.0.0.1:$P_S3GW" "[content]
store = \"s3\"
[content.s3]
endpoint = \"http://127.0.0.1:$P_S3\"
bucket = \"bench\"
access_key_id = \"testing\"
secret_access_key_file = \"$WORK/s3.secret\""

cat > "$WORK/nginx.conf" <<NGX
worker_processes 1;
daemon off;
error_log $WORK/nginx-error.log warn;
pid $WORK/nginx.pid;
events { worker_connections 16384; }
http {
  access_log off;
  upstream one { server 127.0.0.1:$P_ONE; keepalive 128; }
  upstream three { server 127.0.0.1:$P_A; server 127.0.0.1:$P_B; server 127.0.0.1:$P_C; keepalive 128; }
  server { listen 127.0.0.1:$P_LB1; location / { proxy_pass http://one; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host \$host; } }
  server { listen 127.0.0.1:$P_LB3; location / { proxy_pass http://three; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host \$host; } }
}
NGX
$NGINX -c "$WORK/nginx.conf" -p "$WORK" & PIDS+=($!)
sleep 0.5

# A wrk script cycling CheckFileInfo, Lock, Unlock over 64 files (32 per wrk thread).
lua() { # LB_URL
  local base=$1 i
  {
    echo "paths, ts, proofs = {}, {}, {}"
    for i in $(seq 0 63); do
      mapfile -t H < <($PEER headers "$base" "http://127.0.0.1:$P_PEER" "$WORK/client.pem" "bench-$i.docx")
      echo "table.insert(paths, \"${H[0]}\")"
      echo "table.insert(ts, \"${H[1]#X-WOPI-TimeStamp: }\")"
      echo "table.insert(proofs, \"${H[2]#X-WOPI-Proof: }\")"
    done
    cat <<'LUA'
local threads, n = {}, 0
function setup(thread) thread:set("tid", n); n = n + 1 end
local i = 0
function request()
  i = i + 1
  local f = tid * 32 + (math.floor(i / 3) % 32) + 1
  local op = i % 3
  local h = {["X-WOPI-TimeStamp"] = ts[f], ["X-WOPI-Proof"] = proofs[f]}
  if op == 0 then return wrk.format("GET", paths[f], h) end
  h["X-WOPI-Lock"] = "bench-lock"
  h["X-WOPI-Override"] = (op == 1) and "LOCK" or "UNLOCK"
  return wrk.format("POST", paths[f], h)
end
LUA
  }
}
lua "http://127.0.0.1:$P_LB1" > "$WORK/one.lua"
lua "http://127.0.0.1:$P_LB3" > "$WORK/three.lua"
run() { wrk -t2 -c64 -d"${DUR}s" -s "$1" "$2" 2>&1; }
echo "# WOPI CheckFileInfo + Lock + Unlock, 64 files"
R1=$(run "$WORK/one.lua" "http://127.0.0.1:$P_LB1"); R3=$(run "$WORK/three.lua" "http://127.0.0.1:$P_LB3")
ONE=$(awk '/Requests\/sec/ {print $2}' <<<"$R1"); THREE=$(awk '/Requests\/sec/ {print $2}' <<<"$R3")
rec one_instance_memory_rps "$ONE"
rec one_instance_non2xx "$(awk '/Non-2xx/ {print $5}' <<<"$R1" | grep . || echo 0)"
rec three_instances_redis_rps "$THREE"
rec three_instances_non2xx "$(awk '/Non-2xx/ {print $5}' <<<"$R3" | grep . || echo 0)"
rec three_redis_over_one_memory "$(python3 -c "print(round($THREE/$ONE,2))")"

echo "# sizes in Redis (after the run: pending status 1/4 deliveries of the cycles included)"
KEY=$(redis-cli -p "$P_REDIS" --scan --pattern 'wopi-gateway:file:*' | head -1)
rec redis_file_state_bytes "$(redis-cli -p "$P_REDIS" memory usage "$KEY")"
rec redis_keys_after_64_files "$(redis-cli -p "$P_REDIS" dbsize)"
rec redis_pending_deliveries "$(redis-cli -p "$P_REDIS" scard wopi-gateway:delivery)"
LOCKKEY=$(redis-cli -p "$P_REDIS" --scan --pattern 'wopi-gateway:delivery:*' | head -1)
[ -n "$LOCKKEY" ] && rec redis_delivery_bytes "$(redis-cli -p "$P_REDIS" memory usage "$LOCKKEY")"
rec redis_used_memory_bytes "$(redis-cli -p "$P_REDIS" info memory | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r')"

echo "# PutFile 1 GiB: fs (cluster content dir) and s3 (moto)"
SZ=$((1024*1024*1024))
head -c $SZ /dev/urandom > "$WORK/upload.bin"
put() { # SIGNED_BASE (public_url) SENT_BASE (the instance) PID NAME
  local signed=$1 base=$2 pid=$3 name=$4 H0 H1 T0 T1
  mapfile -t B < <($PEER headers "$signed" "http://127.0.0.1:$P_PEER" "$WORK/client.pem" "bench-put-$name.docx")
  curl -sf -o /dev/null -X POST "$base${B[0]}" -H "${B[1]}" -H "${B[2]}" -H "X-WOPI-Override: LOCK" -H "X-WOPI-Lock: bench" || { echo "LOCK failed on $base" >&2; return 1; }
  H0=$(hwm "$pid")
  T0=$(date +%s.%N)
  curl -sf -o /dev/null -X POST -T "$WORK/upload.bin" "$base${B[3]}" -H "${B[4]}" -H "${B[5]}" -H "X-WOPI-Override: PUT" -H "X-WOPI-Lock: bench" -H "Content-Type: application/octet-stream" || { echo "PutFile failed on $base" >&2; return 1; }
  T1=$(date +%s.%N)
  H1=$(hwm "$pid")
  echo "$(python3 -c "print(round($T1-$T0,3))") $(( (H1-H0) / 1024 ))"
}
T0=$(date +%s.%N); cp "$WORK/upload.bin" "$WORK/content/copy.bin" && sync "$WORK/content/copy.bin"; T1=$(date +%s.%N); rm -f "$WORK/content/copy.bin"
CP=$(python3 -c "print(round($T1-$T0,3))")
read -r FS FS_RSS < <(put "http://127.0.0.1:$P_LB3" "http://127.0.0.1:$P_A" "$PID_a" fs)
rec cp_sync_1gib_seconds "$CP"
rec putfile_fs_1gib_seconds "$FS"
rec putfile_fs_over_cp "$(python3 -c "print(round($CP/$FS,2))")"
rec putfile_fs_peak_rss_growth_mib "$FS_RSS"
T0=$(date +%s.%N); curl -sf -o /dev/null -X PUT -T "$WORK/upload.bin" "http://127.0.0.1:$P_S3/bench/direct.bin"; T1=$(date +%s.%N)
DIRECT=$(python3 -c "print(round($T1-$T0,3))")
read -r S3 S3_RSS < <(put "http://127.0.0.1:$P_S3GW" "http://127.0.0.1:$P_S3GW" "$PID_s3" s3)
rec s3_direct_put_1gib_seconds "$DIRECT"
rec putfile_s3_1gib_seconds "$S3"
rec putfile_s3_over_direct_put "$(python3 -c "print(round($DIRECT/$S3,2))")"
rec putfile_s3_peak_rss_growth_mib "$S3_RSS"
echo "results in $OUT"
