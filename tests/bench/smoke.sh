#!/usr/bin/env bash
# ctest bench_smoke: billing-bench end to end with small numbers.
#   smoke.sh BILLINGD BILLING_BENCH
# Needs BILLING_TEST_DATABASE_URL (a throwaway cluster; scripts/test sets
# it). Creates database bench_smoke_<pid> there, runs billingd migrate and
# serve --http-port=0, reads the port from its log line, runs billing-bench
# (must PASS), replays the same plan (must PASS again: every delivery is now
# a duplicate), then stops billingd and drops the database.
set -euo pipefail
billingd=${1:?usage: smoke.sh BILLINGD BILLING_BENCH}
bench=${2:?usage: smoke.sh BILLINGD BILLING_BENCH}
if [ -z "${BILLING_TEST_DATABASE_URL:-}" ]; then
  echo "bench_smoke: FAIL: BILLING_TEST_DATABASE_URL is unset; point it at a throwaway PostgreSQL" \
       "(scripts/test does: scripts/pg start DIR PORT)" >&2
  exit 1
fi

psql_bin=$(command -v psql || echo /usr/lib/postgresql/15/bin/psql)
base=${BILLING_TEST_DATABASE_URL%%\?*}
server=${base%/*}
db=bench_smoke_$$
db_url=$server/$db
work=$(mktemp -d "${TMPDIR:-/tmp}/bench_smoke.XXXXXX")
billingd_pid=
cleanup() {
  if [ -n "$billingd_pid" ]; then
    kill "$billingd_pid" 2>/dev/null || true
    wait "$billingd_pid" 2>/dev/null || true
  fi
  "$psql_bin" "$server/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

"$psql_bin" "$server/postgres" -qc "CREATE DATABASE $db" >/dev/null
secret=whsec_smoke_$$_$RANDOM
export BILLING_DATABASE_URL=$db_url BILLING_WEBHOOK_SECRETS=$secret
BILLING_SECRET_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export BILLING_SECRET_KEY
"$billingd" migrate >"$work/migrate.log" 2>&1 || { cat "$work/migrate.log" >&2; exit 1; }
# An API key for billing-bench's setup and the admin listener.
keys_out=$("$billingd" keys new bench --scopes invoices:write,invoices:read,admin)
BILLING_BENCH_API_KEY=$(printf '%s\n' "$keys_out" | sed -n 's/^  \(bk_[A-Za-z0-9_-]*\)$/\1/p')
BILLING_API_KEYS=$(printf '%s\n' "$keys_out" | sed -n 's/^  \(name=.*\)$/\1/p')
export BILLING_BENCH_API_KEY BILLING_API_KEYS

"$billingd" serve --http-port=0 --admin-port=0 --grpc-port=0 --log-level=warn >"$work/billingd.log" 2>&1 &
billingd_pid=$!
port=
for _ in $(seq 1 200); do
  port=$(sed -n 's/.*billingd listening on http:\/\/[0-9.]*:\([0-9]*\).*/\1/p' "$work/billingd.log" | head -n 1)
  admin_port=$(sed -n 's/.*billingd admin listening on http:\/\/[0-9.]*:\([0-9]*\).*/\1/p' "$work/billingd.log" | head -n 1)
  [ -n "$port" ] && break
  if ! kill -0 "$billingd_pid" 2>/dev/null; then
    echo "bench_smoke: FAIL: billingd exited before listening:" >&2
    cat "$work/billingd.log" >&2
    exit 1
  fi
  sleep 0.1
done
if [ -z "$port" ]; then
  echo "bench_smoke: FAIL: no 'billingd listening on' line within 20 s:" >&2
  tail -n 20 "$work/billingd.log" >&2
  exit 1
fi
echo "bench_smoke: billingd on port $port, database $db"

args=(--url "http://127.0.0.1:$port" --admin-url "http://127.0.0.1:$admin_port" --database-url "$db_url" --webhook-secret "$secret" --connections 8 --retries 3 --quiet)
rc=0
"$bench" "${args[@]}" --invoices 50 --events 500 --dup-rate 0.1 --shuffle \
  --plan-out "$work/plan.txt" --json "$work/run1.json" || rc=$?
if [ "$rc" -ne 0 ]; then
  echo "bench_smoke: FAIL: billing-bench exited $rc (1 = verification FAIL, 2 = setup, 3 = errors)" >&2
  tail -n 20 "$work/billingd.log" >&2
  exit 1
fi
grep -q '"result": "PASS"' "$work/run1.json" || { echo "bench_smoke: FAIL: no PASS in the JSON report" >&2; exit 1; }

# The same plan again: setup is idempotent, every delivery is a duplicate now.
"$bench" "${args[@]}" --plan-in "$work/plan.txt" --json "$work/run2.json" || rc=$?
if [ "$rc" -ne 0 ]; then
  echo "bench_smoke: FAIL: replaying the plan: billing-bench exited $rc" >&2
  exit 1
fi
grep -q '"ignored-duplicate": 500' "$work/run2.json" \
  || { echo "bench_smoke: FAIL: the replay should answer every delivery ignored-duplicate" >&2; exit 1; }
echo "bench_smoke: PASS"
