#!/usr/bin/env bash
# Tells whether the PostgreSQL that the tests use can be reached. Outside CI
# a missing server is a loud warning (the SQLite half still runs); under
# CI=true it is a failure.
url=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
if psql "$url" -qtAc 'select 1' >/dev/null 2>&1; then
  echo "postgres: reachable at $url; the PostgreSQL half of the tests runs"
  exit 0
fi
cat >&2 <<MSG
################################################################################
#  PostgreSQL is NOT reachable at $url
#  Only the SQLite half of the tests will run. Start PostgreSQL or set
#  TEST_DATABASE_URL to run everything.
################################################################################
MSG
if [ "${CI:-}" = "true" ]; then
  echo "CI=true: refusing to skip the PostgreSQL tests" >&2
  exit 1
fi
exit 0
