#!/usr/bin/env bash
# Profiles the token-info path (`POST /api/auth/token-info`, cache hit) of
# the release sessiond, as summarised in bench/token-info-profile.md.
#
#   bench/profile-token-info.sh                # 3000 requests, summary on stdout
#   REQUESTS=5000 KEEP=1 bench/profile-token-info.sh
#
# Two profiles of one server on a fresh SQLite database (the token-info
# path does not touch the database while the session is cached):
#
# 1. callgrind (exact instruction counts; hardware counters are not
#    available on the VM this was written on, `perf stat -e instructions`
#    says <not supported>): sessiond runs under valgrind with
#    instrumentation off until the benchmark user exists (Argon2 would
#    dominate otherwise); then REQUESTS sequential `GET /health/live` on one
#    keep-alive connection (the cost of HTTP alone), a dump, REQUESTS
#    sequential token-info, a dump. Instructions per request = the dump's
#    total / REQUESTS, all threads included.
# 2. perf cpu-clock sampling (software timer, which works there) of the
#    same server natively, while 16 curl processes send PERF_REQUESTS
#    token-info requests in all (each on its own keep-alive connection):
#    the share of sessiond's on-CPU samples per function (curl runs on the
#    same cores, outside the profile).
#
# Needs: cargo, valgrind (callgrind_annotate, callgrind_control), perf,
# curl, jq. Raw outputs go to a temporary directory, removed at the end
# unless KEEP=1 (then its path is printed).
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=${REQUESTS:-3000}
PERF_REQUESTS=${PERF_REQUESTS:-96000}
TOP=${TOP:-15}

cargo build --release -p sessiond >&2
BIN=$PWD/target/release/sessiond
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sessiond-profile.XXXXXX")
PID=
cleanup() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  if [ "${KEEP:-0}" = 1 ]; then echo "raw outputs kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# Starts "$@" (sessiond, possibly under a tool) as the server in $WORK and
# sets PID and ADDR once it says where it listens.
start() {
  : >"$WORK/stdout"
  (cd "$WORK" && exec env -i PATH="$PATH" HOME="$HOME" \
     DATABASE_URL="sqlite://$WORK/profile.db" SESSIOND_BIND=127.0.0.1:0 \
     SESSIOND_RATE_LIMIT_ENABLED=false RUST_LOG=warn \
     "$@" serve >"$WORK/stdout" 2>"$WORK/stderr") &
  PID=$!
  for _ in $(seq 600); do
    ADDR=$(sed -n 's|^sessiond listening on http://\([^/]*\).*|\1|p' "$WORK/stdout")
    [ -n "$ADDR" ] && return 0
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/stderr" >&2; return 1; }
    sleep 0.2
  done
  echo "sessiond did not start" >&2
  return 1
}

stop() {
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  PID=
}

# The benchmark user (registered once), and an access token of a new session.
login() {
  curl -sf -o /dev/null -H 'Content-Type: application/json' \
    -d '{"username":"profile_user","password":"profile-password-0123"}' \
    "http://$ADDR/api/auth/register" || true
  TOKEN=$(curl -sf -H 'Content-Type: application/json' \
    -d '{"username":"profile_user","password":"profile-password-0123"}' \
    "http://$ADDR/api/auth/login" | jq -r .data.access_token)
}

# N requests with curl's URL globbing: sequential, one keep-alive
# connection (sessiond ignores the query string). Every answer's status
# follows its body on a line of its own, and must be 200.
live() {
  curl -s -w '\n%{http_code}\n' "http://$ADDR/health/live?i=[1-$1]" | check "$1"
}
token_info() {
  curl -s -w '\n%{http_code}\n' -X POST -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' -d '{}' \
    "http://$ADDR/api/auth/token-info?i=[1-$1]" | check "$1"
}
check() {
  local ok
  ok=$(grep -c '^200$' || true)
  [ "$ok" = "$1" ] || { echo "only $ok of $1 answers were 200" >&2; exit 1; }
}

# Total instructions of a callgrind dump.
total_ir() { sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$1"; }

# "instructions<TAB>function" for every file:function piece of a dump (a
# function with code inlined from several files comes in several pieces).
pieces() {
  callgrind_annotate --auto=no --inclusive="$1" --threshold=100 "$2" 2>/dev/null |
    sed -nE 's/^ *([0-9,]+) \( *[0-9.]+%\)  [^:]*:(.*)$/\1\t\2/p' |
    sed -E 's/ \[[^]]*\]$//; s/ \([0-9,]+x\)$//' |
    awk -F'\t' '{ gsub(",", "", $1); print $1 "\t" $2 }'
}

# The TOP functions by self instructions (pieces added up), per request.
top_self() {
  pieces no "$1" |
    awk -F'\t' -v n="$REQUESTS" -v total="$2" '
      { self[$2] += $1 }
      END { for (f in self) printf "%d\t%.1f%%\t%s\n", self[f] / n, 100 * self[f] / total, f }' |
    sort -t "$(printf '\t')" -k1,1nr | awk -v top="$TOP" 'NR <= top' |
    awk -F'\t' '{ f = $3; if (length(f) > 110) f = substr(f, 1, 107) "..."
                   printf "| %s | %s | `%s` |\n", $1, $2, f }'
}

# Inclusive instructions per request of the functions whose names contain
# the given strings (the largest piece: the one holding the whole call).
inclusive() {
  local dump=$1 total=$2
  shift 2
  pieces yes "$dump" >"$WORK/inclusive.tsv"
  for name in "$@"; do
    awk -F'\t' -v name="$name" -v n="$REQUESTS" -v total="$total" '
      index($2, name) && $1 > max { max = $1 }
      END { printf "| `%s` | %d | %.1f%% |\n", name, max / n, 100 * max / total }' \
      "$WORK/inclusive.tsv"
  done
}

echo "## callgrind, $REQUESTS requests each"
start valgrind --tool=callgrind --instr-atstart=no \
  --callgrind-out-file="$WORK/callgrind.out.%p" "$BIN"
login
token_info 10 # caches the session
callgrind_control -i on "$PID" >/dev/null
callgrind_control -z "$PID" >/dev/null
live "$REQUESTS"
callgrind_control -d live "$PID" >/dev/null
token_info "$REQUESTS"
callgrind_control -d token-info "$PID" >/dev/null
stop
LIVE_OUT=$(ls "$WORK"/callgrind.out.*.1)
INFO_OUT=$(ls "$WORK"/callgrind.out.*.2)
live_ir=$(total_ir "$LIVE_OUT")
info_ir=$(total_ir "$INFO_OUT")
echo
echo "| requests | instructions (all threads) | per request |"
echo "|---|---:|---:|"
echo "| $REQUESTS × GET /health/live | $live_ir | $((live_ir / REQUESTS)) |"
echo "| $REQUESTS × POST /api/auth/token-info | $info_ir | $((info_ir / REQUESTS)) |"
echo "| token-info − live | | $(((info_ir - live_ir) / REQUESTS)) |"
echo
echo "Token-info: top $TOP functions by self instructions (all files of a function added up)"
echo
echo "| instructions / request | share | function |"
echo "|---:|---:|---|"
top_self "$INFO_OUT" "$info_ir"
echo
echo "Token-info: inclusive instructions of the steps of the path"
echo
echo "| function | instructions / request | share |"
echo "|---|---:|---:|"
inclusive "$INFO_OUT" "$info_ir" \
  'actix_http::h1::dispatcher::InnerDispatcher<T,S,B,X,U>::poll_request' \
  'NormalizePathNormalization<S> as actix_service::Service' \
  'regex_lite::pikevm::PikeVM::search' \
  'Authenticated as actix_web::extract::FromRequest>::from_request' \
  'auth::service::AuthService::authenticate_cached' \
  'tokens::codec::TokenCodec::verify' \
  'jsonwebtoken::decoding::verify_signature' \
  'hmac::get_der_key' \
  'jsonwebtoken::serialization::DecodedJwtPartClaims::deserialize' \
  'auth::cache::SessionCache::get' \
  'ClaimsView>::serialize' \
  'actix_http::h1::dispatcher::InnerDispatcher<T,S,B,X,U>::poll_response'
echo
echo "Health/live: top $TOP functions by self instructions"
echo
echo "| instructions / request | share | function |"
echo "|---:|---:|---|"
top_self "$LIVE_OUT" "$live_ir"

echo
echo "## perf cpu-clock, $PERF_REQUESTS requests, 16 connections"
start "$BIN"
login
token_info 10
# utime + stime of the server, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$PID/stat"; }
perf record -q -e cpu-clock -F 4000 -p "$PID" -o "$WORK/perf.data" 2>/dev/null &
PERF=$!
sleep 0.5
ticks0=$(cpu_ticks)
t0=$(date +%s.%N)
pids=()
for _ in $(seq 16); do
  token_info $((PERF_REQUESTS / 16)) &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
t1=$(date +%s.%N)
ticks1=$(cpu_ticks)
kill -INT "$PERF"
wait "$PERF" || true
stop
sent=$((PERF_REQUESTS / 16 * 16))
echo
awk -v n="$sent" -v ticks=$((ticks1 - ticks0)) -v hz="$(getconf CLK_TCK)" -v t0="$t0" -v t1="$t1" \
  'BEGIN { printf "%d requests in %.1f s (%.0f/s, curl included); sessiond CPU time %.1f us per request (utime + stime, perf attached)\n",
           n, t1 - t0, n / (t1 - t0), ticks / hz * 1e6 / n }'
echo
# The sampled lines of a perf report: "share  [k|.] symbol" or "share  dso".
samples() {
  perf report -i "$WORK/perf.data" --no-children --percent-limit 1 --stdio "$@" \
    2>/dev/null >"$WORK/perf.txt" || true
  grep -E '^ +[0-9.]+%' "$WORK/perf.txt" | awk -v top="$TOP" 'NR <= top' | cut -c1-160 |
    sed 's/ *$//'
}
echo "On-CPU samples of sessiond by object, then by symbol ([k] kernel, [.] user):"
echo
echo '```text'
samples --sort dso
echo
samples --sort symbol
echo '```'
