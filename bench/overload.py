#!/usr/bin/env python3
"""Overload through a real Kafka broker: offered load far above what the
pipeline sustains, then how it recovers.

One command (after scripts/setup and a build), on a quiet machine:

  .venv/bin/python bench/overload.py [--quick] [--out-dir bench/results]

starts a real Kafka broker (scripts/kafka) and nlpflow (configs/minilm-embed.yaml,
the dynamic batcher, two model instances of one thread), then
  1. the sustainable rate R: unless --rate is given, the maximum throughput on
     a backlog, measured as bench/e2e_latency.py does;
  2. 1x: Poisson arrivals at R for --baseline-s; the pipeline's resident
     memory (VmRSS, sampled every 0.5 s) over that phase, after its first
     10 s, is the reference;
  3. overload: arrivals at --factor x R (10 by default) for --overload-s
     (300); VmRSS sampled the same way; peak RSS against the 1x RSS (goal:
     at most 1.5x: backpressure bounds what is held, pipeline.max_in_flight);
  4. drain: the generator stops; every second the number of input records
     without a result or dead letter yet (the lag) is recorded until it is 0
     or --drain-timeout-s passed.
Records lost: input records (distinct keys) with neither a result nor a dead
letter at the end (goal 0); duplicates: results beyond one per key.

Writes overload.json and overload.md to --out-dir. The figures depend on the
machine: the CPU (from /proc/cpuinfo) and the load average at start and end
go into the report; run it on a quiet machine (a shared one makes R, and so
every phase, noisy).
"""

import argparse
import json
import multiprocessing as mp
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_latency as e2e  # noqa: E402  (the broker, pipeline and generator helpers)


def log(msg):
    print(f"[overload {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class KeyCounter:
    """Counts, per input key, the results and dead letters that came back."""

    def __init__(self, bootstrap, topics):
        from confluent_kafka import Consumer, TopicPartition
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"ovl-{time.time_ns()}",
                           "enable.auto.commit": False, "fetch.wait.max.ms": 100})
        md = self.c.list_topics(timeout=10)
        self.c.assign([TopicPartition(t, p, -2) for t in topics for p in md.topics[t].partitions])
        self.lock = threading.Lock()
        self.seen = {}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping.is_set():
            for m in self.c.consume(num_messages=1000, timeout=0.05):
                if m.error() or m.key() is None:
                    continue
                k = m.key().decode("utf-8", "replace")
                with self.lock:
                    self.seen[k] = self.seen.get(k, 0) + 1

    def distinct(self, prefix):
        with self.lock:
            return sum(1 for k in self.seen if k.startswith(prefix))

    def duplicates(self, prefix):
        with self.lock:
            return sum(n - 1 for k, n in self.seen.items() if k.startswith(prefix))

    def close(self):
        self.stopping.set()
        self.thread.join()
        self.c.close()


def offered_phase(name, pipe, bootstrap, topic, rate, duration_s, texts, args, prefix):
    """Poisson arrivals at `rate` for `duration_s` (e2e's generator, in a
    process of its own) while VmRSS is sampled. Returns the phase's figures."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    gen = ctx.Process(target=e2e.generator, daemon=True,
                      args=(bootstrap, topic, rate, duration_s, args.long_fraction, 17, prefix,
                            texts, q))
    start = time.time()
    gen.start()
    samples = []
    while gen.is_alive() and time.time() - start < duration_s + 120:
        pipe.check_alive()
        r = rss_mb(pipe.proc.pid)
        if r is not None:
            samples.append((time.time() - start, r))
        time.sleep(0.5)
    sent, lag_ms = q.get(timeout=120)
    gen.join(30)
    settled = [r for t, r in samples if t >= 10] or [r for _, r in samples]
    log(f"{name}: {sent} records offered at {rate:.1f}/s for {duration_s:.0f} s "
        f"(generator at most {lag_ms:.0f} ms behind); RSS max {max(settled):.0f} MB")
    return {"rate_per_s": rate, "duration_s": duration_s, "sent": sent,
            "generator_max_lag_ms": lag_ms, "rss_max_mb": max(settled),
            "rss_samples": samples[:: max(1, len(samples) // 200)]}


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


def main():
    parser = argparse.ArgumentParser(description="nlpflow overload benchmark")
    parser.add_argument("--out-dir", default=os.path.join(e2e.ROOT, "bench", "results"))
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    parser.add_argument("--rate", type=float, help="the sustainable rate (records/s); "
                        "measured on a backlog when not given")
    parser.add_argument("--factor", type=float, default=10)
    parser.add_argument("--baseline-s", type=float, default=60)
    parser.add_argument("--overload-s", type=float, default=300)
    parser.add_argument("--drain-timeout-s", type=float, default=1800)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--long-fraction", type=float, default=0.2)
    parser.add_argument("--backlog", type=int, default=1500)
    parser.add_argument("--max-phase-s", type=float, default=120)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the harness, not the numbers")
    args = parser.parse_args()
    if args.quick:
        args.baseline_s, args.overload_s, args.backlog = 15, 20, 200
    # What e2e's Pipeline reads from its arguments.
    args.fixed_delay_ms, args.dynamic_set = 50, []
    command = "python3 bench/overload.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if not os.path.exists(e2e.NLPFLOW):
        raise SystemExit(f"{e2e.NLPFLOW} is missing: build first")

    result = {"machine": e2e.machine_facts(), "command": command,
              "config": {k: v for k, v in vars(args).items() if k != "out_dir"},
              "loadavg_start": loadavg(), "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    texts = e2e.load_mix(2000, 600)
    workdir = tempfile.mkdtemp(prefix="nlpflow-overload-")
    kafka_dir = os.path.join(workdir, "kafka")
    bootstrap = args.bootstrap
    if not bootstrap:
        log("starting a Kafka broker (scripts/kafka)")
        bootstrap = subprocess.run(["bash", e2e.KAFKA, "start", "--dir", kafka_dir, "--owner",
                                    str(os.getpid())], check=True, capture_output=True,
                                   text=True).stdout.strip().splitlines()[-1]
    counter = None
    try:
        serial = int(time.time())
        rate = args.rate
        if not rate:
            rate = e2e.max_throughput("dynamic", bootstrap, texts, args, workdir,
                                      f"ovl-{serial}")["records_per_s"]
        result["sustainable_rate_per_s"] = rate
        topic_in, topic_out, topic_dlq = f"ovl-{serial}", f"ovl-{serial}.out", f"ovl-{serial}.dlq"
        e2e.create_topics(bootstrap, [topic_in, topic_out, topic_dlq], args.partitions)
        counter = KeyCounter(bootstrap, [topic_out, topic_dlq])
        pipe = e2e.Pipeline("dynamic", bootstrap, topic_in, topic_out, topic_dlq, workdir, args)
        result["1x"] = offered_phase("1x", pipe, bootstrap, topic_in, rate, args.baseline_s,
                                     texts, args, "a")
        result["overload"] = offered_phase(f"{args.factor:g}x", pipe, bootstrap, topic_in,
                                           args.factor * rate, args.overload_s, texts, args, "b")
        sent = result["1x"]["sent"] + result["overload"]["sent"]
        # The drain: lag every second until every record came back.
        drain, start = [], time.time()
        while time.time() - start < args.drain_timeout_s:
            pipe.check_alive()
            lag = sent - counter.distinct("a") - counter.distinct("b")
            drain.append((round(time.time() - start, 1), lag, rss_mb(pipe.proc.pid)))
            if lag <= 0:
                break
            time.sleep(1)
        time.sleep(3)  # late duplicates, if any
        pipe.stop()
        lost = sent - counter.distinct("a") - counter.distinct("b")
        result["drain"] = {"seconds": drain[-1][0], "complete": drain[-1][1] <= 0,
                           "lag_at_start": drain[0][1],
                           "samples": drain[:: max(1, len(drain) // 200)]}
        result["sent"] = sent
        result["lost"] = lost
        result["duplicates"] = counter.duplicates("a") + counter.duplicates("b")
        result["peak_rss_mb"] = pipe.peak_rss_mb  # VmHWM over the whole run
        result["rss_ratio"] = result["overload"]["rss_max_mb"] / result["1x"]["rss_max_mb"]
        result["loadavg_end"] = loadavg()
        log(f"RSS {result['overload']['rss_max_mb']:.0f} MB at {args.factor:g}x against "
            f"{result['1x']['rss_max_mb']:.0f} MB at 1x ({result['rss_ratio']:.2f}x, goal <= 1.5); "
            f"lost {lost} of {sent} (goal 0), duplicates {result['duplicates']}; lag "
            f"{drain[0][1]} drained in {drain[-1][0]:.0f} s")
    finally:
        if counter is not None:
            counter.close()
        for proc in e2e.RUNNING:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if not args.bootstrap:
            subprocess.run(["bash", e2e.KAFKA, "stop", "--dir", kafka_dir, "--grace", "0"], check=False)
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "overload.json"), "w") as f:
        json.dump(result, f, indent=1)
    m = result["machine"]
    with open(os.path.join(args.out_dir, "overload.md"), "w") as f:
        f.write(f"# Overload: {args.factor:g}x the sustainable rate for {args.overload_s:.0f} s\n\n")
        f.write(f"`{command}`, {result['started']}; CPU: {m.get('cpu', m)}; load average "
                f"{' '.join(result['loadavg_start'])} at start, {' '.join(result['loadavg_end'])} at end.\n\n")
        f.write("| figure | value | goal |\n|---|---|---|\n")
        f.write(f"| sustainable rate R | {rate:.1f} records/s | |\n")
        f.write(f"| RSS at 1x (max after 10 s) | {result['1x']['rss_max_mb']:.0f} MB | |\n")
        f.write(f"| RSS at {args.factor:g}x (max after 10 s) | {result['overload']['rss_max_mb']:.0f} MB | |\n")
        f.write(f"| ratio | {result['rss_ratio']:.2f} | <= 1.5 |\n")
        f.write(f"| records lost | {lost} of {sent} | 0 |\n")
        f.write(f"| duplicates | {result['duplicates']} | |\n")
        f.write(f"| lag when the overload ended | {result['drain']['lag_at_start']} records | |\n")
        f.write(f"| drained in | {result['drain']['seconds']:.0f} s"
                f"{'' if result['drain']['complete'] else ' (not complete)'} | |\n")


if __name__ == "__main__":
    main()
