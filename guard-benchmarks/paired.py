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
throughput scores, put the baseline first). The summary also names the processor and, for each run, the load
average before it and the share of CPU time the hypervisor gave to other machines during it (steal), since the same
code measured on another processor, or beside a busy neighbour, can give another ratio.
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


def cpu_model():
    """The processor's model name from /proc/cpuinfo, or None where there is none (not Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_times():
    """The machine's CPU time counters from /proc/stat (user ... steal), or None where there are none."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return [int(x) for x in fields[1:9]]
    except (OSError, ValueError, IndexError):
        return None


def steal_percent(before, after):
    """The share of CPU time that the hypervisor gave to others between two cpu_times() readings, in percent."""
    if before is None or after is None:
        return None
    deltas = [b - a for a, b in zip(before, after)]
    total = sum(deltas)
    return round(100.0 * deltas[7] / total, 1) if total > 0 else None


def main():
    args, runs, ratios = parse_args()
    os.makedirs(args.out, exist_ok=True)
    scores = {name: [] for name, _ in runs}
    units = {}
    # What the machine was: its processor, and per run the load average before it and the steal during it, so that
    # figures from different days can be told apart (the same code ran at different ratios on different processors).
    machine = {"cpu": cpu_model(), "cpus": os.cpu_count(), "runs": []}
    for round_ in range(1, args.rounds + 1):
        for name, run_args in runs:
            load = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
            before = cpu_times()
            path = os.path.join(args.out, "%s-%d.json" % (name, round_))
            command = ["java", "-jar", args.jars.get(name, args.jar)] + run_args + shlex.split(args.jmh) + ["-rf", "json", "-rff", path]
            result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if result.returncode != 0:
                sys.exit("run %s, round %d failed (%s):\n%s" % (name, round_, " ".join(command), result.stderr))
            steal = steal_percent(before, cpu_times())
            value, unit = score(path)
            scores[name].append(value)
            units[name] = unit
            machine["runs"].append({"round": round_, "run": name, "load_before": load, "steal_percent": steal})
            print("round %d  %-12s %12.1f %s  (load %s, steal %s%%)" % (round_, name, value, unit, load, steal),
                  flush=True)
    summary = {"rounds": args.rounds, "jmh": args.jmh, "machine": machine,
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
