#!/usr/bin/env python3
"""Runs JMH benchmarks in alternation, round after round, and reports ratios per round.

On a shared machine the noise drifts over minutes: two benchmarks run one after the other (as JMH runs the values of
a @Param) can see different machines. Alternating short runs and taking the median of the per-round ratios keeps the
drift out of the ratio; the spread of the rounds shows how far to trust it.

Example (from the repository root, after building guard-benchmarks/target/benchmarks.jar):

    python3 guard-benchmarks/paired.py --rounds 6 --out guard-benchmarks/results/redis-paired \\
        --jmh "-f 1 -wi 2 -i 3 -w 1s -r 1s" \\
        --run guard="RedisTokenBucketBenchmark.oneLimit_1thread -p impl=guard" \\
        --run bucket4j="RedisTokenBucketBenchmark.oneLimit_1thread -p impl=bucket4j" \\
        --ratio guard/bucket4j

Each run's JMH JSON goes to OUT/<name>-<round>.json, and the summary to OUT/summary.json. A ratio a/b divides a's
primary score by b's from the same round (for throughput, how many times faster a is; for a latency comparison of
throughput scores, put the baseline first).
"""

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jar", default="guard-benchmarks/target/benchmarks.jar")
    parser.add_argument("--jar-for", action="append", default=[], metavar="NAME=JAR",
                        help="another jar for one run (the code before a change, say), instead of --jar")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", required=True, help="folder for the runs' JSON and the summary")
    parser.add_argument("--jmh", default="", help="JMH options common to every run")
    parser.add_argument("--run", action="append", required=True, metavar="NAME=ARGS",
                        help="a named run: benchmark pattern and its own options")
    parser.add_argument("--ratio", action="append", default=[], metavar="A/B", help="a ratio of two runs' scores")
    args = parser.parse_args()
    runs = []
    for spec in args.run:
        name, sep, rest = spec.partition("=")
        if not sep or not name or not rest.strip():
            parser.error("--run must be NAME=ARGS but was '%s'" % spec)
        runs.append((name, shlex.split(rest)))
    names = [name for name, _ in runs]
    if len(set(names)) != len(names):
        parser.error("run names must differ but were %s" % names)
    ratios = []
    for spec in args.ratio:
        a, sep, b = spec.partition("/")
        if not sep or a not in names or b not in names:
            parser.error("--ratio must be A/B with A and B among the runs %s but was '%s'" % (names, spec))
        ratios.append((a, b))
    jars = {}
    for spec in args.jar_for:
        name, sep, jar = spec.partition("=")
        if not sep or name not in names or not jar:
            parser.error("--jar-for must be NAME=JAR with NAME among the runs %s but was '%s'" % (names, spec))
        jars[name] = jar
    args.jars = jars
    if args.rounds < 1:
        parser.error("--rounds must be at least 1 but was %d" % args.rounds)
    return args, runs, ratios


def score(path):
    with open(path) as f:
        results = json.load(f)
    if len(results) != 1:
        sys.exit("%s: expected one benchmark result but found %d; make each run's pattern and params select one"
                 % (path, len(results)))
    metric = results[0]["primaryMetric"]
    return metric["score"], metric["scoreUnit"]


def main():
    args, runs, ratios = parse_args()
    os.makedirs(args.out, exist_ok=True)
    scores = {name: [] for name, _ in runs}
    units = {}
    for round_ in range(1, args.rounds + 1):
        for name, run_args in runs:
            path = os.path.join(args.out, "%s-%d.json" % (name, round_))
            command = ["java", "-jar", args.jars.get(name, args.jar)] + run_args + shlex.split(args.jmh) + ["-rf", "json", "-rff", path]
            result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if result.returncode != 0:
                sys.exit("run %s, round %d failed (%s):\n%s" % (name, round_, " ".join(command), result.stderr))
            value, unit = score(path)
            scores[name].append(value)
            units[name] = unit
            print("round %d  %-12s %12.1f %s" % (round_, name, value, unit), flush=True)
    summary = {"rounds": args.rounds, "jmh": args.jmh,
               "runs": {name: {"args": " ".join(a), "jar": args.jars.get(name, args.jar), "unit": units[name],
                               "scores": scores[name]} for name, a in runs},
               "ratios": {}}
    for a, b in ratios:
        per_round = [x / y for x, y in zip(scores[a], scores[b])]
        summary["ratios"]["%s/%s" % (a, b)] = {
            "per_round": per_round, "median": statistics.median(per_round),
            "min": min(per_round), "max": max(per_round)}
        print("%s/%s: median %.2fx, rounds %s" % (a, b, statistics.median(per_round),
                                                   " ".join("%.2f" % r for r in per_round)))
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
