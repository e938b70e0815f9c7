#!/usr/bin/env bash
# Allocation per operation of the hot paths, from JMH's -prof gc: unlike time, it does not depend on the machine or
# its neighbours, so CI can hold it to a ceiling. Fails when a path allocates more than its ceiling (a boxed value
# or a per-call object that crept in). Ceilings, in bytes per operation:
#   TokenBucketBenchmark.oneThread, impl=guard-allows: 1 (the target is 0 B/op on the sync path; JMH's accounting
#     leaves a few thousandths);
#   ChainBenchmark.check, 100 users: 40 (37.6 B, 32 of them the benchmark's own message).
set -euo pipefail
cd "$(dirname "$0")/.."
jar=guard-benchmarks/target/benchmarks.jar
[ -f "$jar" ] || mvn -B -ntp -q -pl guard-benchmarks -am package -DskipTests
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

check() {
  local name=$1 ceiling=$2
  shift 2
  java -jar "$jar" "$@" -f 1 -wi 3 -i 2 -w 1s -r 1s -prof gc -rf json -rff "$out/$name.json" > "$out/$name.log" 2>&1 \
    || { cat "$out/$name.log"; echo "alloc-check: $name did not run"; exit 1; }
  python3 - "$out/$name.json" "$name" "$ceiling" <<'PY'
import json, sys
path, name, ceiling = sys.argv[1], sys.argv[2], float(sys.argv[3])
results = json.load(open(path))
if len(results) != 1:
    sys.exit("alloc-check: %s selected %d benchmarks, expected 1" % (name, len(results)))
norm = results[0]["secondaryMetrics"]["gc.alloc.rate.norm"]["score"]
print("alloc-check: %s allocates %.1f B/op (ceiling %.0f)" % (name, norm, ceiling))
if norm > ceiling:
    sys.exit("alloc-check: %s allocates %.1f B/op, above its ceiling of %.0f" % (name, norm, ceiling))
PY
}

check token-bucket-guard-allows 1 '\.TokenBucketBenchmark\.oneThread$' -p impl=guard-allows
check chain-100-users 40 '\.ChainBenchmark\.check$' -p users=100
