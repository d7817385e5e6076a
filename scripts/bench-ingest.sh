#!/usr/bin/env bash
# Runs, in one go, the ingest benchmarks recorded in docs/performance.md: bulk and batch endpoints on an
# empty database and on one already holding 10 million events, full against normal durability, and a
# historical backfill. The 10M database is built once (about two minutes) and reused.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -p tally-cli
tally="$target/release/tally"
big="${TALLY_BENCH_DB:-/tmp/tally-bench-10m.db}"

if [ ! -f "$big" ]; then
  echo "== building $big: 10,000,000 events preloaded through the store"
  "$tally" bench ingest --database "$big" --preload 10000000 --events 100000 | grep -E 'preloaded|stored after'
fi

run() {
  echo "== $*"
  "$tally" bench ingest "$@" | grep -E 'stored before|events  |throughput|latency p|accepted'
}

run --endpoint bulk --events 1000000
run --endpoint bulk --events 1000000 --database "$big"
run --endpoint batch --events 300000
run --endpoint batch --events 300000 --database "$big"
run --endpoint bulk --events 1000000 --durability normal
run --endpoint bulk --events 300000 --backfill-days 30
