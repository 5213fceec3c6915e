#!/usr/bin/env python3
"""End-to-end latency and throughput through a real Kafka broker.

One command (after scripts/setup and a build):

  .venv/bin/python bench/e2e_latency.py [--quick] [--out-dir bench/results]

starts a real Kafka broker (scripts/kafka), then for each variant
  dynamic   nlpflow's dynamic batcher (batch.policy dynamic, max 32 records)
  batch1    nlpflow with batch.max_batch_size 1
  fixed32   nlpflow with a fixed batch of 32 that waits up to --fixed-delay-ms
  python    bench/python_baseline.py (confluent-kafka + sentence-transformers)
measures
  1. the maximum sustainable throughput: a backlog of records is produced
     first, the pipeline started on it, and the rate at which results arrive
     from its first result to its last is the maximum (start-up is left
     out); the peak RSS of the pipeline while it
     works through the backlog (an overload far beyond 10x) is recorded;
  2. latency at 10%, 50% and 80% of that maximum: an open-loop generator
     produces records with Poisson arrivals, each stamped with its intended
     send time (header bench-sent-ns, so a generator that falls behind does
     not hide latency), and a consumer of the output topic takes latency =
     arrival of the result - intended send time. nlpflow's dynamic variant is
     also run at the Python baseline's three loads, so the two can be
     compared at common loads.
It also runs the model alone (build/bench/model_only_bench, no Kafka, same
config) at the variants' batch shapes, and at batch 1 for the single-record
model latency of the mix.

Text mix: SpamAssassin e-mail bodies (long; truncated by the tokenizer to the
model's 256 tokens) with probability --long-fraction, else e-mail subject
lines (short). Deterministic (fixed seeds).

Writes to --out-dir: e2e_latency.md (table, command, machine facts),
e2e_latency.json (the same figures, plus the goal ratios named in
bench/README.md), e2e_latency_cdf.png (latency CDF per variant at 50% load)
and e2e_latency_p99.png (p99 against offered load).
"""

import argparse
import datetime
import glob
import json
import multiprocessing as mp
import os
import platform
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NLPFLOW = os.path.join(ROOT, "build", "nlpflow")
MODEL_ONLY = os.path.join(ROOT, "build", "bench", "model_only_bench")
KAFKA = os.path.join(ROOT, "scripts", "kafka")
CORPUS = os.path.join(ROOT, ".deps", "spam-assassin", "data")
MODEL_DIR = os.path.join(ROOT, "models", "all-MiniLM-L6-v2")
SENT_HEADER = "bench-sent-ns"
LOAD_FRACTIONS = (0.1, 0.5, 0.8)
# The benchmark's own consumers' fetch.wait.max.ms (--consumer-fetch-wait-ms).
# A fetch returns as soon as a record is appended (fetch.min.bytes 1), so this
# is no latency floor; a small value only makes the broker answer empty
# fetches more often, on the cores the pipeline runs on.
FETCH_WAIT_MS = 100
VARIANTS = ("python", "dynamic", "dynamic_no_real_budget", "batch1", "fixed32")


def log(msg):
    print(f"[e2e {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- text mix

def load_mix(num_short, num_long):
    """Subject lines (short) and bodies (long) of the SpamAssassin e-mails."""
    files = sorted(glob.glob(os.path.join(CORPUS, "*", "*.json")))
    if not files:
        raise SystemExit(f"no e-mails under {CORPUS}: run scripts/setup")
    subjects, bodies = [], []
    for path in files:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)["text"]
        head, _, body = raw.partition("\n\n")
        for line in head.split("\n"):
            if line.lower().startswith("subject:"):
                subject = line[len("subject:"):].strip()
                if subject:
                    subjects.append(subject)
                break
        body = body.strip()
        if body:
            # The tokenizer keeps 256 tokens; 4 KB of text is more than that.
            bodies.append(body[:4096])
    rng = random.Random(7)
    return rng.sample(subjects, num_short), rng.sample(bodies, num_long)


class Mix:
    def __init__(self, short, long, long_fraction, seed):
        self.short, self.long, self.p = short, long, long_fraction
        self.rng = random.Random(seed)

    def next(self):
        pool = self.long if self.rng.random() < self.p else self.short
        return self.rng.choice(pool)


# ---------------------------------------------------------------- Kafka helpers

def admin(bootstrap):
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": bootstrap})


def create_topics(bootstrap, names, partitions):
    from confluent_kafka.admin import NewTopic
    client = admin(bootstrap)  # must outlive the futures
    futures = client.create_topics(
        [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names])
    for f in futures.values():
        f.result(30)


def produce_backlog(bootstrap, topic, mix, count):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20,
                  "enable.idempotence": True})
    for i in range(count):
        p.produce(topic, key=f"b{i}", value=mix.next().encode("utf-8"),
                  headers={SENT_HEADER: b"0"})
        if i % 1000 == 0:
            p.poll(0)
    if p.flush(60) != 0:
        raise SystemExit("backlog: records not acknowledged by the broker")


def receiver(bootstrap, topics, stop, out_queue, ready, fetch_wait_ms):
    """Consumes the output (and dead-letter) topics from the start; sends back
    a list of (topic, key, sent_ns, received_ns)."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"recv-{os.getpid()}",
                  "enable.auto.commit": False, "fetch.wait.max.ms": fetch_wait_ms,
                  "fetch.error.backoff.ms": 5})
    md = c.list_topics(timeout=10)
    assignment = []
    for t in topics:
        for p in md.topics[t].partitions:
            assignment.append(TopicPartition(t, p, -2))  # OFFSET_BEGINNING
    c.assign(assignment)
    ready.set()
    got = []
    while not stop.is_set():
        # poll returns as soon as one result is there; the consume(timeout=0)
        # after it takes what else is queued without waiting. (consume with
        # a timeout waits for all num_messages or the whole timeout, which
        # added up to 50 ms to every latency, ~25 ms at p50, before.)
        first = c.poll(0.05)
        if first is None:
            continue
        for m in [first] + c.consume(num_messages=500, timeout=0):
            if m.error():
                continue
            now = time.time_ns()
            sent, inside_us = 0, -1
            for k, v in m.headers() or []:
                if k == SENT_HEADER:
                    sent = int(v)
                elif k == "nlpflow.total_us":  # nlpflow: arrival in the graph to encoded
                    inside_us = int(v)
            # The result's CreateTime: when nlpflow's producer took it (ms).
            ts_type, ts_ms = m.timestamp()
            produced_ns = ts_ms * 1_000_000 if ts_type == 1 else -1
            got.append((m.topic(), (m.key() or b"").decode(), sent, now, inside_us, produced_ns))
    c.close()
    out_queue.put(got)


class Receiver:
    def __init__(self, bootstrap, topics):
        ctx = mp.get_context("spawn")
        self.stop = ctx.Event()
        ready = ctx.Event()
        self.queue = ctx.Queue()
        # Daemonic: an error elsewhere must not leave the run waiting for it.
        self.proc = ctx.Process(target=receiver, daemon=True,
                                args=(bootstrap, topics, self.stop, self.queue, ready, FETCH_WAIT_MS))
        self.proc.start()
        if not ready.wait(30):
            raise SystemExit("receiver did not start")

    def finish(self):
        self.stop.set()
        got = self.queue.get(timeout=120)
        self.proc.join(30)
        return got


def generator(bootstrap, topic, rate, duration_s, long_fraction, seed, prefix, texts, out_queue):
    """Open loop: Poisson arrivals at `rate`, each record stamped with its
    intended send time. Returns (sent, max lag behind schedule in ms)."""
    from confluent_kafka import Producer
    short, long = texts
    mix = Mix(short, long, long_fraction, seed)
    rng = random.Random(seed + 1)
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0,
                  "enable.idempotence": True})
    # Connect (metadata, broker connection, producer id) before the clock
    # starts: one record that no point counts (its key has no point's
    # prefix), delivered before the first scheduled one. Without this the
    # first records of each point waited for the producer's start-up, which
    # the latencies then showed as a tail outside the graph.
    p.produce(topic, key=f"gen-warmup-{prefix}", value=b"warm-up", headers={SENT_HEADER: b"0"})
    p.flush(30)
    start = time.time_ns()
    t = 0.0
    sent, max_lag_ns = 0, 0
    while True:
        t += rng.expovariate(rate)
        if t > duration_s:
            break
        due = start + int(t * 1e9)
        while True:
            now = time.time_ns()
            if now >= due:
                break
            time.sleep(min((due - now) / 1e9, 0.01))
            p.poll(0)
        max_lag_ns = max(max_lag_ns, time.time_ns() - due)
        p.produce(topic, key=f"{prefix}{sent}", value=mix.next().encode("utf-8"),
                  headers={SENT_HEADER: str(due).encode()})
        p.poll(0)
        sent += 1
    p.flush(60)
    out_queue.put((sent, max_lag_ns / 1e6))


def run_generator(bootstrap, topic, rate, duration_s, long_fraction, seed, prefix, texts):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    proc = ctx.Process(target=generator, daemon=True, args=(bootstrap, topic, rate, duration_s,
                                               long_fraction, seed, prefix, texts, q))
    proc.start()
    sent, lag_ms = q.get(timeout=duration_s + 120)
    proc.join(30)
    return sent, lag_ms


# ---------------------------------------------------------------- pipelines

NLPFLOW_VARIANTS = {
    # Same cores for every variant: two model instances of one thread each.
    # dynamic: the shipped config's batch section (policy dynamic, at most 32
    # records, 1,024 tokens counted as records x longest, 256 real tokens,
    # 5 ms delay).
    "dynamic": [],
    # The same without the budget on real tokens (the shipped config before
    # it had one): how much of the tail that budget removes, in the same run.
    "dynamic_no_real_budget": ["batch.max_batch_real_tokens=0"],
    "batch1": ["batch.max_batch_size=1", "batch.max_batch_tokens=0", "batch.max_batch_real_tokens=0"],
    "fixed32": ["batch.policy=fixed", "batch.max_batch_size=32", "batch.max_batch_tokens=0",
                "batch.max_batch_real_tokens=0"],
}


# Every pipeline process started, so that an error anywhere leaves none behind.
RUNNING = []


class Pipeline:
    """One running pipeline (nlpflow or the Python baseline) on one input topic."""

    def __init__(self, variant, bootstrap, topic_in, topic_out, topic_dlq, workdir, args):
        self.variant = variant
        self.log_path = os.path.join(workdir, f"{variant}-{topic_in}.log")
        logf = open(self.log_path, "w")
        if variant == "python":
            cmd = [sys.executable, os.path.join(ROOT, "bench", "python_baseline.py"),
                   "--bootstrap", bootstrap, "--input", topic_in, "--output", topic_out,
                   "--group", f"g-{topic_in}", "--model", MODEL_DIR, "--threads", "2"]
        else:
            sets = [
                f"kafka.bootstrap_servers={bootstrap}", f"kafka.group_id=g-{topic_in}",
                f"kafka.input_topics=[{topic_in}]", f"kafka.output_topic={topic_out}",
                f"kafka.dead_letter_topic={topic_dlq}", f"model.path={MODEL_DIR}",
                "model.threads=1", "model.instances=2", "logging.level=info",
                "metrics.listen=127.0.0.1:0",
            ] + NLPFLOW_VARIANTS[variant]
            if variant == "fixed32":
                sets.append(f"batch.max_queue_delay_us={int(args.fixed_delay_ms * 1000)}")
            if variant == "dynamic":
                sets += args.dynamic_set
            cmd = [NLPFLOW, "run", "--config", os.path.join(ROOT, "configs", "minilm-embed.yaml")]
            for s in sets:
                cmd += ["--set", s]
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, cwd=ROOT)
        self.peak_rss_mb = 0.0
        RUNNING.append(self.proc)

    def sample_rss(self):
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        self.peak_rss_mb = max(self.peak_rss_mb, int(line.split()[1]) / 1024)
        except OSError:
            pass

    def check_alive(self):
        if self.proc.poll() is not None:
            with open(self.log_path) as f:
                tail = f.read()[-3000:]
            raise SystemExit(f"{self.variant} exited with {self.proc.returncode}:\n{tail}")

    def stop(self):
        self.sample_rss()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Pids of the broker's JVMs (set in main when this benchmark started the broker).
BROKER_PIDS = []


def cpu_seconds(pid):
    """CPU time (user + system, all threads) of a running process; 0 if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    except (OSError, IndexError, ValueError):
        return 0.0


class CpuWindow:
    """CPU seconds of the pipeline and of the broker between two moments of a
    phase (its first and its last result), so that a throughput can be put
    against the cores each side actually had."""

    def __init__(self, pipeline):
        self.pipeline = pipeline
        self.start = None
        self.end = None

    def sample(self):
        return (time.time(), cpu_seconds(self.pipeline.proc.pid),
                sum(cpu_seconds(p) for p in BROKER_PIDS))

    def cores(self):
        if not self.start or not self.end or self.end[0] <= self.start[0]:
            return None, None
        wall = self.end[0] - self.start[0]
        return (self.end[1] - self.start[1]) / wall, (self.end[2] - self.start[2]) / wall


def wait_results(recv_snapshot_fn, want, timeout_s, pipeline, window=None):
    """Polls until `want` results arrived (via recv_snapshot_fn) or timeout.
    With a CpuWindow, samples CPU when the first result is seen and when the
    last one is."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        pipeline.check_alive()
        pipeline.sample_rss()
        n = recv_snapshot_fn()
        if window is not None and window.start is None and n > 0:
            window.start = window.sample()
        if n >= want:
            if window is not None:
                window.end = window.sample()
            return True
        time.sleep(0.05 if window is not None else 0.2)
    return False


class CountingConsumer:
    """Counts results on a topic from the start (for the warm-up and backlog
    phases, where only counts and arrival times matter). A thread of its own
    polls all the time, so arrival times are not those of the caller's polls."""

    def __init__(self, bootstrap, topics):
        import threading
        from confluent_kafka import Consumer, TopicPartition
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"cnt-{time.time_ns()}",
                           "enable.auto.commit": False, "fetch.wait.max.ms": FETCH_WAIT_MS})
        md = self.c.list_topics(timeout=10)
        self.c.assign([TopicPartition(t, p, -2) for t in topics for p in md.topics[t].partitions])
        self.arrivals = []
        self.dead = 0
        self.topics = topics
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping.is_set():
            for m in self.c.consume(num_messages=1000, timeout=0.02):
                if m.error():
                    continue
                if m.topic() == self.topics[0]:
                    self.arrivals.append(time.time())
                else:
                    self.dead += 1

    def poll(self):
        return len(self.arrivals)

    def close(self):
        self.stopping.set()
        self.thread.join()
        self.c.close()


def percentile(values, q):
    if not values:
        return None
    v = sorted(values)
    i = min(len(v) - 1, max(0, int(round(q / 100 * (len(v) - 1)))))
    return v[i]


# ---------------------------------------------------------------- phases

def max_throughput(variant, bootstrap, texts, args, workdir, serial):
    topic_in, topic_out, topic_dlq = f"max-{variant}-{serial}", f"max-{variant}-{serial}.out", f"max-{variant}-{serial}.dlq"
    create_topics(bootstrap, [topic_in, topic_out, topic_dlq], args.partitions)
    backlog = args.backlog_python if variant == "python" else args.backlog
    if variant == "batch1":
        backlog = args.backlog_batch1
    produce_backlog(bootstrap, topic_in, Mix(texts[0], texts[1], args.long_fraction, 11), backlog)
    counter = CountingConsumer(bootstrap, [topic_out, topic_dlq])
    pipe = Pipeline(variant, bootstrap, topic_in, topic_out, topic_dlq, workdir, args)
    log(f"{variant}: max throughput on a backlog of {backlog}")
    window = CpuWindow(pipe)
    done = wait_results(counter.poll, backlog, args.max_phase_s, pipe, window)
    pipeline_cores, broker_cores = window.cores()
    pipe.stop()
    arrivals = counter.arrivals
    counter.close()
    n = len(arrivals)
    if n < 20:
        raise SystemExit(f"{variant}: only {n} results from the backlog; see {pipe.log_path}")
    # From the first result to the last: start-up is left out, and the
    # results that came with the first one (a pipeline that publishes a
    # poll's worth at once) are not counted, as they took no measured time.
    first = arrivals[0]
    with_first = sum(1 for t in arrivals if t - first < 0.05)
    if n - with_first < 10:
        raise SystemExit(f"{variant}: the backlog came back in too few bursts to time "
                         f"({n} results, {with_first} with the first); make it larger")
    rate = (n - with_first) / (arrivals[-1] - first)
    log(f"{variant}: {rate:.1f} records/s ({n}/{backlog} results{'' if done else ', phase timed out'}), "
        f"peak RSS {pipe.peak_rss_mb:.0f} MB, cores: pipeline {fmt(pipeline_cores, 2)}, "
        f"broker {fmt(broker_cores, 2)}")
    return {"records_per_s": rate, "backlog": backlog, "results": n, "dead_letters": counter.dead,
            "complete": done, "peak_rss_mb": pipe.peak_rss_mb,
            "pipeline_cores": pipeline_cores, "broker_cores": broker_cores}


def latency_points(variant, bootstrap, texts, rates, args, workdir, serial):
    """Starts the pipeline once and runs an open-loop point at each rate."""
    topic_in, topic_out, topic_dlq = f"lat-{variant}-{serial}", f"lat-{variant}-{serial}.out", f"lat-{variant}-{serial}.dlq"
    create_topics(bootstrap, [topic_in, topic_out, topic_dlq], args.partitions)
    recv = Receiver(bootstrap, [topic_out, topic_dlq])
    pipe = Pipeline(variant, bootstrap, topic_in, topic_out, topic_dlq, workdir, args)
    # Warm-up: records until results come back, so the points do not measure start-up.
    from confluent_kafka import Producer
    warm = Producer({"bootstrap.servers": bootstrap})
    warm_counter = CountingConsumer(bootstrap, [topic_out, topic_dlq])
    for i in range(args.warmup):
        warm.produce(topic_in, key=f"w{i}", value=texts[0][i % len(texts[0])].encode(),
                     headers={SENT_HEADER: b"0"})
    warm.flush(30)
    if not wait_results(warm_counter.poll, args.warmup, 180, pipe):
        raise SystemExit(f"{variant}: warm-up results did not arrive; see {pipe.log_path}")
    warm_counter.close()
    points = []
    for n, (label, rate) in enumerate(rates):
        prefix = f"p{n}-"
        log(f"{variant}: {label} = {rate:.2f} records/s for {args.duration:.0f} s")
        sent, lag_ms = run_generator(bootstrap, topic_in, rate, args.duration, args.long_fraction,
                                     100 + n, prefix, texts)
        # Let the point's last records come back before the next starts.
        pipe.check_alive()
        points.append({"label": label, "offered_per_s": rate, "sent": sent,
                       "generator_max_lag_ms": lag_ms, "prefix": prefix})
        deadline = time.time() + args.drain_s
        while time.time() < deadline:
            pipe.sample_rss()
            time.sleep(0.5)
    pipe.stop()
    got = recv.finish()
    by_prefix = {}
    dead = 0
    inside = {}
    before, after = {}, {}
    for topic, key, sent_ns, recv_ns, inside_us, produced_ns in got:
        if topic.endswith(".dlq"):
            dead += 1
            continue
        for p in points:
            if key.startswith(p["prefix"]):
                by_prefix.setdefault(p["prefix"], []).append((recv_ns - sent_ns) / 1e6)
                if inside_us >= 0:
                    inside.setdefault(p["prefix"], []).append(inside_us / 1e3)
                if produced_ns > 0:
                    # Intended send to the result's produce call (input
                    # hop + graph), and produce call to arrival (output hop).
                    before.setdefault(p["prefix"], []).append((produced_ns - sent_ns) / 1e6)
                    after.setdefault(p["prefix"], []).append((recv_ns - produced_ns) / 1e6)
    out = []
    for p in points:
        lat = by_prefix.get(p["prefix"], [])
        out.append({
            "load": p["label"], "offered_per_s": round(p["offered_per_s"], 3), "sent": p["sent"],
            "received": len(lat), "generator_max_lag_ms": round(p["generator_max_lag_ms"], 2),
            "p50_ms": percentile(lat, 50), "p90_ms": percentile(lat, 90),
            "p99_ms": percentile(lat, 99), "p999_ms": percentile(lat, 99.9),
            "max_ms": max(lat) if lat else None, "latencies_ms": lat,
            # nlpflow only: time inside the graph (source hand-over to
            # encoded, the result's nlpflow.total_us header); the rest of the
            # latency is Kafka (produce, fetch, the result's produce and fetch).
            "inside_p50_ms": percentile(inside.get(p["prefix"], []), 50),
            "inside_p99_ms": percentile(inside.get(p["prefix"], []), 99),
            # Split at the result's produce call (its CreateTime, ms
            # resolution): the input side (produce, fetch, the graph) and
            # the output side (the result's produce and fetch).
            "to_result_produce_p50_ms": percentile(before.get(p["prefix"], []), 50),
            "to_result_produce_p99_ms": percentile(before.get(p["prefix"], []), 99),
            "result_produce_to_arrival_p50_ms": percentile(after.get(p["prefix"], []), 50),
            "result_produce_to_arrival_p99_ms": percentile(after.get(p["prefix"], []), 99),
        })
    return out, dead, pipe.peak_rss_mb


# ---------------------------------------------------------------- model only

def model_only(texts, args, workdir):
    path = os.path.join(workdir, "mix.jsonl")
    mix = Mix(texts[0], texts[1], args.long_fraction, 11)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(args.model_only_texts):
            f.write(json.dumps({"text": mix.next()}) + "\n")
    config = os.path.join(ROOT, "configs", "minilm-embed.yaml")
    results = {}
    # The shipped config's budget on real tokens per batch: the dynamic
    # variant's batch shape.
    with open(config, encoding="utf-8") as f:
        real = int((yaml.safe_load(f).get("batch") or {}).get("max_batch_real_tokens") or 0)
    # name: (batch, group window, instances, max real tokens). The pipeline's
    # variants run two instances of one thread; batch1_latency is the
    # single-record model latency of the mix (one record on one instance,
    # nothing else running).
    runs = {
        "batch1_latency": (1, 0, 1, 0),
        "batch1": (1, 0, 2, 0),
        "batch16": (16, 0, 2, 0),
        "batch32": (32, 0, 2, 0),
        "batch32_grouped": (32, args.group_window, 2, 0),
    }
    if real > 0:
        runs[f"batch32_grouped_real{real}"] = (32, args.group_window, 2, real)
    for name, (batch, window, instances, max_real) in runs.items():
        cmd = [MODEL_ONLY, "--config", config, "--set", f"model.path={MODEL_DIR}",
               "--set", "model.threads=1", "--texts", path, "--batch", str(batch),
               "--group-window", str(window), "--instances", str(instances),
               "--max-real-tokens", str(max_real), "--min-seconds", str(args.model_only_s)]
        log("model only: " + " ".join(shlex.quote(c) for c in cmd[1:]))
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout
        results[name] = json.loads(out.strip().splitlines()[-1])
    return results


# ---------------------------------------------------------------- report

def machine_facts():
    facts = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
             "cores": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    facts["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            facts["memory_gib"] = round(int(f.readline().split()[1]) / 2**20, 1)
        facts["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                         capture_output=True, text=True).stdout.strip()
        facts["load_average_at_start"] = os.getloadavg()
    except OSError:
        pass
    return facts


def fmt(v, digits=1):
    return "–" if v is None else f"{v:.{digits}f}"


def write_report(out_dir, result, command):
    os.makedirs(out_dir, exist_ok=True)
    slim = json.loads(json.dumps(result))
    for v in slim["variants"].values():
        for p in v.get("points", []):
            p.pop("latencies_ms", None)
    with open(os.path.join(out_dir, "e2e_latency.json"), "w") as f:
        json.dump(slim, f, indent=2)
        f.write("\n")

    g = result["goals"]
    lines = [
        "# End-to-end latency and throughput (real Kafka broker)",
        "",
        f"Command: `{command}`",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in result["machine"].items()),
        "",
        f"Text mix: SpamAssassin e-mail bodies with probability {result['config']['long_fraction']}, "
        "else their subject lines; all-MiniLM-L6-v2 fp32, max length 256; 2 cores for every variant "
        "(nlpflow: 2 model instances x 1 thread; Python: torch 2 threads).",
        "",
        "## Goals",
        "",
        "| ratio | measured | goal | met |",
        "|---|---|---|---|",
    ]
    for name, (value, goal, met) in g.items():
        lines.append(f"| `{name}` | {fmt(value, 3)} | {goal} | {'yes' if met else 'no'} |")
    lines += ["", "## Maximum sustainable throughput", "",
              "| variant | records/s | peak RSS MB (backlog) | backlog results | pipeline cores | broker cores | records per pipeline CPU-s |",
              "|---|---|---|---|---|---|---|"]
    for name, v in result["variants"].items():
        m = v["max"]
        cores = m.get("pipeline_cores")
        lines.append(f"| {name} | {fmt(m['records_per_s'])} | {fmt(m['peak_rss_mb'], 0)} | "
                     f"{m['results']}/{m['backlog']} | {fmt(cores, 2)} | {fmt(m.get('broker_cores'), 2)} | "
                     f"{fmt(m['records_per_s'] / cores if cores else None)} |")
    lines += ["", "Cores: CPU seconds per second of wall time from the first result to the last, "
              "of the pipeline's process (all its threads) and of the Kafka broker's JVM, which share "
              "the machine's 2 cores during the run."]
    lines += ["", "Model only (build/bench/model_only_bench: the same texts, tokenized up front, no Kafka; instances x 1 thread):", "",
              "| run | batch | max real tokens | instances | length-grouping window | records/s | cores | records per CPU-s | batch ms mean | batch ms p99 | padded/real tokens |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, m in result["model_only"].items():
        lines.append(f"| {name} | {m['batch']} | {m.get('max_real_tokens') or '-'} | {m['instances']} | {m['group_window'] or '-'} | "
                     f"{fmt(m['records_per_s'])} | {fmt(m['cpu_seconds'] / m['seconds'], 2)} | "
                     f"{fmt(m['records_per_cpu_s'])} | {fmt(m['batch_ms_mean'])} | {fmt(m['batch_ms_p99'])} | "
                     f"{fmt(m['mean_padded_tokens_per_batch'] / max(m['mean_real_tokens_per_batch'], 1e-9), 2)} |")
    lines += ["", "## Latency (ms) under open-loop Poisson load", "",
              "| variant | load | offered/s | received | p50 | p90 | p99 | p99.9 | max | in graph p50 / p99 | to the result's produce p50 / p99 | result's produce to arrival p50 / p99 |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, v in result["variants"].items():
        for p in v["points"]:
            lines.append(f"| {name} | {p['load']} | {fmt(p['offered_per_s'], 2)} | {p['received']}/{p['sent']} | "
                         f"{fmt(p['p50_ms'])} | {fmt(p['p90_ms'])} | {fmt(p['p99_ms'])} | {fmt(p['p999_ms'])} | "
                         f"{fmt(p['max_ms'])} | {fmt(p.get('inside_p50_ms'))} / {fmt(p.get('inside_p99_ms'))} | "
                         f"{fmt(p.get('to_result_produce_p50_ms'))} / {fmt(p.get('to_result_produce_p99_ms'))} | "
                         f"{fmt(p.get('result_produce_to_arrival_p50_ms'))} / {fmt(p.get('result_produce_to_arrival_p99_ms'))} |")
    lines += ["", "p99.9 from fewer than 1,000 samples is close to the maximum; the sample counts are in "
              "the received column. \"In graph\": nlpflow's own part of the latency (the source's hand-over "
              "to the encoded result, header nlpflow.total_us); the rest is Kafka on both sides. The last two "
              "columns split each latency at the result's produce call (the output record's CreateTime, "
              "ms resolution): the input side (the record's produce and fetch, and the graph) and the "
              "output side (the result's produce and its fetch by the benchmark's consumer).", ""]
    with open(os.path.join(out_dir, "e2e_latency.md"), "w") as f:
        f.write("\n".join(lines))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, v in result["variants"].items():
        for p in v["points"]:
            if p["load"] == "50%" and p["latencies_ms"]:
                lat = sorted(p["latencies_ms"])
                ax.plot(lat, [(i + 1) / len(lat) for i in range(len(lat))], label=f"{name} ({p['offered_per_s']:.1f}/s)")
    ax.set_xscale("log")
    ax.set_xlabel("latency, ms (log)")
    ax.set_ylabel("fraction of records")
    ax.set_title("Latency CDF at 50% of each variant's maximum throughput")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "e2e_latency_cdf.png"), dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, v in result["variants"].items():
        pts = sorted((p["offered_per_s"], p["p99_ms"]) for p in v["points"] if p["p99_ms"] is not None)
        if pts:
            ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", label=name)
    ax.set_yscale("log")
    ax.set_xlabel("offered load, records/s")
    ax.set_ylabel("p99 latency, ms (log)")
    ax.set_title("p99 latency against offered load")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "e2e_latency_p99.png"), dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------- main

def main():
    global FETCH_WAIT_MS
    parser = argparse.ArgumentParser(description="nlpflow end-to-end latency benchmark")
    parser.add_argument("--out-dir", default=os.path.join(ROOT, "bench", "results"))
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--long-fraction", type=float, default=0.2)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--backlog", type=int, default=1500)
    parser.add_argument("--backlog-batch1", type=int, default=800)
    parser.add_argument("--backlog-python", type=int, default=600)
    parser.add_argument("--max-phase-s", type=float, default=90)
    parser.add_argument("--duration", type=float, default=30, help="seconds per load point")
    parser.add_argument("--drain-s", type=float, default=8, help="seconds after each load point")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--fixed-delay-ms", type=float, default=50)
    parser.add_argument("--dynamic-set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra nlpflow config override for the dynamic variant")
    parser.add_argument("--group-window", type=int, default=256,
                        help="model-only: sort windows of this many texts by length")
    parser.add_argument("--model-only-texts", type=int, default=600)
    parser.add_argument("--model-only-s", type=float, default=20)
    parser.add_argument("--broker-warmup", type=int, default=4500,
                        help="records the dynamic variant takes through the broker, untimed, before "
                             "the first measured phase (a fresh broker's JVM is still compiling its "
                             "request paths, on the pipeline's cores)")
    parser.add_argument("--consumer-fetch-wait-ms", type=int, default=FETCH_WAIT_MS,
                        help="fetch.wait.max.ms of the benchmark's own consumers")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the harness, not the numbers")
    args = parser.parse_args()
    if args.quick:
        args.backlog, args.backlog_batch1, args.backlog_python = 200, 100, 300
        args.duration, args.drain_s, args.warmup = 6, 4, 4
        args.model_only_texts, args.model_only_s, args.max_phase_s = 60, 2, 60
        args.broker_warmup = 100
    FETCH_WAIT_MS = args.consumer_fetch_wait_ms
    command = "python3 bench/e2e_latency.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    variants = [v for v in args.variants.split(",") if v]
    for v in variants:
        if v not in VARIANTS:
            raise SystemExit(f"unknown variant {v}; known: {', '.join(VARIANTS)}")
    for path in (NLPFLOW, MODEL_ONLY):
        if not os.path.exists(path):
            raise SystemExit(f"{path} is missing: build first (scripts/test or build_nlpflow)")

    facts = machine_facts()
    texts = load_mix(2000, 600)
    workdir = tempfile.mkdtemp(prefix="nlpflow-e2e-")
    kafka_dir = os.path.join(workdir, "kafka")
    bootstrap = args.bootstrap
    if not bootstrap:
        log("starting a Kafka broker (scripts/kafka)")
        bootstrap = subprocess.run(["bash", KAFKA, "start", "--dir", kafka_dir, "--owner", str(os.getpid())],
                                   check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        BROKER_PIDS.append(int(subprocess.run(["bash", KAFKA, "node-pid", "--dir", kafka_dir, "1"],
                                              check=True, capture_output=True, text=True).stdout))
    try:
        result = {"machine": facts, "config": {k: v for k, v in vars(args).items() if k != "out_dir"},
                  "variants": {}}
        result["model_only"] = model_only(texts, args, workdir)
        serial = int(time.time())
        if args.broker_warmup > 0:
            log(f"broker warm-up: {args.broker_warmup} records through the dynamic variant, untimed")
            warm_args = argparse.Namespace(**vars(args))
            warm_args.backlog = args.broker_warmup
            warm_args.max_phase_s = max(args.max_phase_s, args.broker_warmup / 20)
            result["broker_warmup"] = max_throughput("dynamic", bootstrap, texts, warm_args, workdir,
                                                     f"warmup-{serial}")
        for v in variants:
            result["variants"][v] = {"max": max_throughput(v, bootstrap, texts, args, workdir, serial)}
        for v in variants:
            top = result["variants"][v]["max"]["records_per_s"]
            rates = [(f"{int(f * 100)}%", f * top) for f in LOAD_FRACTIONS]
            if v == "dynamic" and "python" in result["variants"]:
                py = result["variants"]["python"]["max"]["records_per_s"]
                rates += [(f"python {int(f * 100)}%", f * py) for f in LOAD_FRACTIONS]
            points, dead, rss = latency_points(v, bootstrap, texts, rates, args, workdir, serial)
            result["variants"][v]["points"] = points
            result["variants"][v]["latency_dead_letters"] = dead
            result["variants"][v]["latency_peak_rss_mb"] = rss
    finally:
        for proc in RUNNING:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if not args.bootstrap:
            subprocess.run(["bash", KAFKA, "stop", "--dir", kafka_dir, "--grace", "0"], check=False)

    result["goals"] = goals(result)
    write_report(args.out_dir, result, command)
    log(f"wrote {args.out_dir}/e2e_latency.{{md,json}} and the plots")
    for name, (value, goal, met) in result["goals"].items():
        print(f"{name}: {fmt(value, 3)} (goal {goal}) {'met' if met else 'NOT met'}")
    return 0


def goals(result):
    """The issue's goals, each one named ratio (bench/README.md explains them)."""
    out = {}
    vs = result["variants"]
    mo = result["model_only"]
    if "dynamic" in vs:
        dyn = vs["dynamic"]["max"]["records_per_s"]
        # The best the model alone did at any batch shape the pipeline uses.
        shapes = {k: m for k, m in mo.items() if k.startswith(("batch16", "batch32"))}
        best = max(shapes, key=lambda k: shapes[k]["records_per_s"])
        r = dyn / shapes[best]["records_per_s"]
        out["throughput_vs_model_only"] = (r, ">= 0.9", r >= 0.9)
        # The same per CPU second: the pipeline's records per second of its
        # own CPU time against the model's, at the same best shape. The broker
        # shares the 2 cores in this benchmark (not in a deployment), so this
        # separates what the pipeline costs from what the broker takes.
        cores = vs["dynamic"]["max"].get("pipeline_cores")
        if cores:
            r = (dyn / cores) / shapes[best]["records_per_cpu_s"]
            out["throughput_per_cpu_vs_model_only"] = (r, ">= 0.9 (not the goal)", r >= 0.9)
        half = next((p for p in vs["dynamic"].get("points", []) if p["load"] == "50%"), None)
        if half and half["p99_ms"] is not None:
            # The tail against the model's own tail on one record of the mix
            # (a long e-mail): what batching and queueing add on top of it.
            r = half["p99_ms"] / (2 * mo["batch1_latency"]["batch_ms_p99"] + 10)
            out["p99_at_half_load_vs_budget"] = (r, "<= 1.0", r <= 1.0)
            # The same against the mean single-record latency: stricter, as
            # the mix's long records alone take longer than twice the mean.
            r = half["p99_ms"] / (2 * mo["batch1_latency"]["batch_ms_mean"] + 10)
            out["p99_at_half_load_vs_mean_budget"] = (r, "<= 1.0 (not the goal)", r <= 1.0)
        if "python" in vs:
            r = dyn / vs["python"]["max"]["records_per_s"]
            out["throughput_vs_python"] = (r, ">= 3.0", r >= 3.0)
            worst = None
            for p in vs["python"].get("points", []):
                mine = next((q for q in vs["dynamic"].get("points", []) if q["load"] == "python " + p["load"]), None)
                if mine and mine["p99_ms"] and p["p99_ms"]:
                    ratio = mine["p99_ms"] / p["p99_ms"]
                    worst = ratio if worst is None else max(worst, ratio)
            if worst is not None:
                out["p99_vs_python_worst_common_load"] = (worst, "< 1.0", worst < 1.0)
    return out


if __name__ == "__main__":
    sys.exit(main())
