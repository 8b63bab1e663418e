#!/usr/bin/env bash
# End-to-end load test: `GET /apps` straight at a mock rack, then the same request through
# `rack-gateway serve` (GET /api/v1/rack-proxy/apps with a viewer token), measured with wrk in
# one run, with requests/sec, p50 and p99 of each and the gateway/direct ratios.
#
# Everything runs on loopback and stops by itself; all processes are cleaned up on exit.
# Not part of scripts/test. Settings (environment):
#   WRK_THREADS (1)  WRK_CONNECTIONS (16)  WRK_DURATION (10s)  WRK_WARMUP (2s, 0 to skip)
# Note: wrk, the gateway and the mock rack share this machine's cores, so the gateway figures
# include contention with the rack it forwards to.
set -euo pipefail
cd "$(dirname "$0")/.."

threads="${WRK_THREADS:-1}"
connections="${WRK_CONNECTIONS:-16}"
duration="${WRK_DURATION:-10s}"
warmup="${WRK_WARMUP:-2s}"

say() { echo "load.sh: $*" >&2; }
die() { say "$*"; exit 1; }

if ! command -v wrk >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing wrk with apt-get"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; } >/dev/null 2>&1 || true
    fi
    command -v wrk >/dev/null || die "wrk is missing: install it (apt-get install wrk, or brew install wrk) and run again"
fi
command -v curl >/dev/null || die "curl is missing: install it and run again"

say "building the release binary"
cargo build --release --quiet -p rack-gateway-bin
bin="${CARGO_TARGET_DIR:-target}/release/rack-gateway"
[ -x "$bin" ] || die "no binary at $bin after the build"

work="$(mktemp -d)"
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the mock rack ------------------------------------------------------------------------
rack_token="bench-$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
RUST_LOG=warn "$bin" mock-rack --listen 127.0.0.1:0 --token "$rack_token" \
    >"$work/mock.out" 2>"$work/mock.err" &
pids+=("$!")
rack_url=""
for _ in $(seq 1 100); do
    rack_url="$(head -n 1 "$work/mock.out" | grep -o 'http://[^ ]*' || true)"
    [ -n "$rack_url" ] && break
    kill -0 "${pids[0]}" 2>/dev/null || die "the mock rack exited: $(cat "$work/mock.err")"
    sleep 0.1
done
[ -n "$rack_url" ] || die "the mock rack did not print its URL within 10s"

# --- a token and the gateway --------------------------------------------------------------
export RGW_DATA_DIR="$work/data"
# One audit key for the operator command and the gateway, so the chain verifies.
AUDIT_HMAC_SECRET="$(head -c 32 /dev/urandom | base64)"
export AUDIT_HMAC_SECRET
gateway_token="$("$bin" token create --name bench --role viewer 2>"$work/token.err" | grep '^rgw_' | tail -n 1)" \
    || die "token create failed: $(cat "$work/token.err")"
[ -n "$gateway_token" ] || die "token create printed no token"

port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=""
for _ in $(seq 1 50); do
    candidate=$((20000 + RANDOM % 40000))
    if port_is_free "$candidate"; then port="$candidate"; break; fi
done
[ -n "$port" ] || die "found no free port"
gateway_url="http://127.0.0.1:$port"

DOMAIN=localhost BIND=127.0.0.1 PORT="$port" \
    APP_SECRET_KEY="$(head -c 32 /dev/urandom | base64)" \
    RACK_HOST="$rack_url" RACK_TOKEN="$rack_token" \
    LOG_FORMAT=json RUST_LOG=warn \
    "$bin" serve >"$work/serve.out" 2>"$work/serve.err" &
gateway_pid="$!"
pids+=("$gateway_pid")
ready=""
for _ in $(seq 1 300); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "$gateway_url/api/v1/health/ready")" = 200 ]; then
        ready=yes
        break
    fi
    kill -0 "$gateway_pid" 2>/dev/null || die "the gateway exited: $(cat "$work/serve.err" "$work/serve.out")"
    sleep 0.1
done
[ -n "$ready" ] || die "the gateway was not ready within 30s: $(curl -s "$gateway_url/api/v1/health/ready")"

direct_auth="Authorization: Basic $(printf 'convox:%s' "$rack_token" | base64 -w0)"
gateway_auth="Authorization: Basic $(printf 'convox:%s' "$gateway_token" | base64 -w0)"
direct_target="$rack_url/apps"
gateway_target="$gateway_url/api/v1/rack-proxy/apps"

for pair in "direct|$direct_target|$direct_auth" "gateway|$gateway_target|$gateway_auth"; do
    IFS='|' read -r name url header <<<"$pair"
    code="$(curl -s -o "$work/$name.body" -w '%{http_code}' -H "$header" "$url")"
    [ "$code" = 200 ] || die "$name GET $url answered $code: $(cat "$work/$name.body")"
done
cmp -s "$work/direct.body" "$work/gateway.body" || die "the gateway's body differs from the rack's"

# --- measuring ------------------------------------------------------------------------------
# Latency as wrk prints it (850.00us, 1.23ms, 1.02s, 2.00m) in microseconds.
to_us() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") f = 1; else if (u == "ms") f = 1000; else if (u == "s") f = 1000000;
        else if (u == "m") f = 60000000; else { print "?"; exit 1 }
        printf "%.1f", n * f }'
}

run_wrk() { # name url header
    local name="$1" url="$2" header="$3" out="$work/$1.wrk"
    if [ "$warmup" != 0 ]; then
        wrk -t"$threads" -c"$connections" -d"$warmup" -H "$header" "$url" >/dev/null
    fi
    wrk -t"$threads" -c"$connections" -d"$duration" --latency -H "$header" "$url" >"$out"
    if grep -q 'Non-2xx or 3xx responses' "$out" || grep -q 'Socket errors' "$out"; then
        cat "$out" >&2
        die "$name: wrk saw errors (above)"
    fi
    local rps p50 p99
    rps="$(awk '/^Requests\/sec:/ {print $2}' "$out")"
    p50="$(awk '$1 == "50%" {print $2}' "$out")"
    p99="$(awk '$1 == "99%" {print $2}' "$out")"
    [ -n "$rps" ] && [ -n "$p50" ] && [ -n "$p99" ] || { cat "$out" >&2; die "$name: could not read wrk's output"; }
    echo "$rps $(to_us "$p50") $(to_us "$p99")"
}

say "wrk -t$threads -c$connections -d$duration --latency (after a ${warmup} warm-up each)"
direct="$(run_wrk direct "$direct_target" "$direct_auth")"
gateway="$(run_wrk gateway "$gateway_target" "$gateway_auth")"
read -r direct_rps direct_p50 direct_p99 <<<"$direct"
read -r gateway_rps gateway_p50 gateway_p99 <<<"$gateway"

echo
echo "GET /apps, wrk -t$threads -c$connections -d$duration --latency"
printf '%-9s %-48s %12s %12s %12s\n' "" "url" "requests/s" "p50 (us)" "p99 (us)"
printf '%-9s %-48s %12s %12s %12s\n' direct "$direct_target" "$direct_rps" "$direct_p50" "$direct_p99"
printf '%-9s %-48s %12s %12s %12s\n' gateway "$gateway_target" "$gateway_rps" "$gateway_p50" "$gateway_p99"
awk -v dr="$direct_rps" -v gr="$gateway_rps" -v d5="$direct_p50" -v g5="$gateway_p50" \
    -v d9="$direct_p99" -v g9="$gateway_p99" 'BEGIN {
    printf "gateway/direct: requests/s %.2f, p50 %.2f, p99 %.2f\n", gr / dr, g5 / d5, g9 / d9 }'
