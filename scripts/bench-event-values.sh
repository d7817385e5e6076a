#!/usr/bin/env bash
# current_usage of one customer on a charge that reads each event's value (a unique count, or a
# percentage charge with a per-transaction minimum) while many customers send events of the same
# code: the cost of reading the customer's values. Usage:
#   scripts/bench-event-values.sh TALLY_BINARY [EVENTS] [CUSTOMERS] [REQUESTS] [unique|percentage]
# Starts TALLY_BINARY on a fresh database in a temporary folder (simulated clock at 2026-11-26), loads
# EVENTS events (default 300,000) spread over CUSTOMERS customers (default 1,000) from November 1st to
# 25th through `tally ingest`, then times REQUESTS (default 200) sequential current_usage requests
# with curl and prints the load rate, p50, p99 and the answer.
set -euo pipefail
bin=$1
events=${2:-300000}
customers=${3:-1000}
requests=${4:-200}
mode=${5:-unique}
case $mode in
    unique) aggregation=unique_count_agg
        properties='{"amount": "2"}'; charge_model=standard ;;
    percentage) aggregation=sum_agg
        properties='{"rate": "2.9", "per_transaction_min_amount": "0.30"}'; charge_model=percentage ;;
    *) echo "mode: unique or percentage" >&2; exit 2 ;;
esac
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
key="tally_bench_unique_key_0123456789abcdef"
port=$((20000 + RANDOM % 20000))
api="http://127.0.0.1:$port/api/v1"
"$bin" serve --database-url "sqlite://$dir/tally.db" --listen "127.0.0.1:$port" --api-key "$key" \
    --clock simulated --clock-start 2026-11-26T00:00:00Z --log warn >"$dir/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
post() { curl -sf -H "Authorization: Bearer $key" -H 'Content-Type: application/json' "$api/$1" -d "$2"; }
metric=$(post billable_metrics "{\"billable_metric\": {\"name\": \"Users\", \"code\": \"users\",
    \"aggregation_type\": \"$aggregation\", \"field_name\": \"user\"}}" | sed 's/.*"lago_id":"\([^"]*\)".*/\1/')
post plans "{\"plan\": {\"name\": \"Seats\", \"code\": \"seats\", \"interval\": \"monthly\",
    \"amount_cents\": 0, \"amount_currency\": \"USD\", \"pay_in_advance\": false,
    \"charges\": [{\"billable_metric_id\": \"$metric\", \"charge_model\": \"$charge_model\",
    \"properties\": $properties}]}}" >/dev/null
post customers '{"customer": {"external_id": "c0"}}' >/dev/null
post subscriptions '{"subscription": {"external_customer_id": "c0", "external_id": "s0",
    "plan_code": "seats", "subscription_at": "2026-11-01T00:00:00Z"}}' >/dev/null
# Customer c0's events name its subscription; the others' name only their (unknown) customer.
awk -v n="$events" -v c="$customers" 'BEGIN {
    for (i = 0; i < n; i++) {
        who = i % c; t = 1793491200 + int(i * (24 * 86400) / n);
        if (who == 0) party = "\"external_subscription_id\":\"s0\""; else party = "\"external_customer_id\":\"c" who "\"";
        printf "{\"transaction_id\":\"e%d\",%s,\"code\":\"users\",\"timestamp\":%d,\"properties\":{\"user\":\"%d\"}}\n", i, party, t, int(i / c) % 500
    } }' >"$dir/events.ndjson"
started=$(date +%s.%N)
"$bin" ingest --url "http://127.0.0.1:$port" --api-key "$key" --chunk 10000 "$dir/events.ndjson" >/dev/null 2>&1
loaded=$(awk -v a="$started" -v b="$(date +%s.%N)" -v n="$events" 'BEGIN { printf "%.0f", n / (b - a) }')
url="$api/customers/c0/current_usage?external_subscription_id=s0"
answer=$(curl -sf -H "Authorization: Bearer $key" "$url")
for _ in $(seq "$requests"); do
    curl -s -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $key" "$url"
done | sort -n >"$dir/times"
p50=$(awk -v n="$requests" 'NR == int(n * 0.5) { print $1 * 1000 }' "$dir/times")
p99=$(awk -v n="$requests" 'NR == int(n * 0.99) { print $1 * 1000 }' "$dir/times")
echo "$bin ($mode): $events events, $customers customers: loaded at $loaded events/s (tally ingest);" \
    "current_usage p50 ${p50} ms, p99 ${p99} ms; $(echo "$answer" | grep -o '"amount_cents":[0-9]*' | head -1)"
