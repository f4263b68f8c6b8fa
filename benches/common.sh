# Shared by the load scripts (benches/load.sh, benches/cluster.sh); sourced from the checkout
# root with OUT set to the results file. Installs the Debian packages named in $NEED_APT
# (root), builds the release binary and the bench peer, and sets up the work folder, the
# process list killed at exit, and the helpers below.
need=()
for pkg in $NEED_APT; do
  command -v "$pkg" >/dev/null 2>&1 || [ -x "/usr/sbin/$pkg" ] || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
cargo build --release --bin wopi-gateway --example bench_peer >/dev/null 2>&1
BIN=target/release/wopi-gateway
PEER=target/release/examples/bench_peer
WORK=$(mktemp -d)
mkdir -p "$(dirname "$OUT")"
: > "$OUT"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
# A free loopback port.
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Records one figure: KEY=VALUE into $OUT and on stdout.
rec() { echo "$1=$2" | tee -a "$OUT"; }
# Resident and peak resident memory of a process, in KiB.
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
hwm() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
