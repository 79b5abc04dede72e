#!/usr/bin/env bash
# Fails when a crate depends on a layer ARCHITECTURE.md keeps it away from:
# domain crates and `auth` never see diesel, actix, tokio or thread priorities; `http` never
# sees diesel or the store.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
check() {
  local crate=$1 banned=$2
  local hits
  hits=$(cargo tree -q -e normal -p "$crate" --prefix none 2>/dev/null | awk '{print $1}' | grep -E "^(${banned})$" | sort -u | tr '\n' ' ' || true)
  if [ -n "$hits" ]; then
    echo "layering: crate $crate depends on $hits(forbidden: $banned)" >&2
    status=1
  fi
}
for c in kernel accounts sessions tokens analytics auth; do
  check "$c" 'diesel|diesel_migrations|r2d2|actix-web|actix-http|actix-rt|tokio|thread-priority|store|sessiond-http'
done
check sessiond-http 'diesel|diesel_migrations|r2d2|store|libsqlite3-sys|pq-sys'
check store 'actix-web|actix-http|actix-rt|sessiond-http'
[ $status -eq 0 ] && echo "layering: ok"
exit $status
