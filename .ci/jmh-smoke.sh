#!/usr/bin/env bash
# A very short run of every JMH benchmark: proves they start and finish, measures nothing worth quoting.
set -euo pipefail
cd "$(dirname "$0")/.."
jar=guard-benchmarks/target/benchmarks.jar
[ -f "$jar" ] || mvn -B -ntp -q -pl guard-benchmarks -am package -DskipTests
java -jar "$jar" -l | tail -n +2 | sed 's/^ *//' > /tmp/guard-benchmarks.txt || true
if [ ! -s /tmp/guard-benchmarks.txt ]; then
  echo "jmh-smoke: no benchmarks found"; exit 0
fi
java -jar "$jar" -f 1 -wi 0 -i 1 -w 100ms -r 100ms -foe true -p keys=1000 ${GUARD_JMH_SMOKE_ARGS:-}
