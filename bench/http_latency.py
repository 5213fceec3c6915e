#!/usr/bin/env python3
"""HTTP latency of one short text: nlpflow's /v1/embeddings against a
sentence-transformers + FastAPI baseline, at idle and under stream load, in
the same run.

  .venv/bin/python bench/http_latency.py [--requests 200] [--out bench/results/http_latency.md]

nlpflow: `nlpflow run` with configs/minilm-embed.yaml on its embedded broker.
Under load, a backlog of short texts sits in the input topic and the stream
works on it while the requests are sent: requests ride at high priority in
the same batcher, so each waits for at most the batch running ahead of it.
Baseline (bench/http_baseline_app.py): FastAPI on uvicorn, one
SentenceTransformer model; under load a thread of the same process encodes
the same backlog in batches of 32 (a Python service doing both jobs with one
model), while the requests go to POST /embed.

Requests are sent one at a time on one keep-alive connection; latency is
request sent to answer read. The stream's progress during the loaded window
is recorded for both, so a load that ran out shows. The machine is shared:
compare the ratios, not the absolute numbers.
"""

import argparse
import http.client
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.realpath(os.path.join(os.path.dirname(__file__), ".."))
TEXT = "How do I reset my password?"


def percentile(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q / 100 * (len(v) - 1))))]


def measure(host, port, path, body, n):
    conn = http.client.HTTPConnection(host, port, timeout=60)
    payload = json.dumps(body)
    for _ in range(5):  # warm the connection and the path
        conn.request("POST", path, payload, {"Content-Type": "application/json"})
        conn.getresponse().read()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("POST", path, payload, {"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        out.append((time.perf_counter() - t0) * 1000)
        if r.status != 200:
            raise RuntimeError(f"{path}: HTTP {r.status}")
    conn.close()
    return out


def wait_log(log, pattern, proc, timeout=180):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        log.seek(0)
        m = re.search(pattern, log.read())
        if m:
            return m
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    log.seek(0)
    raise RuntimeError(f"no '{pattern}' in the log:\n{log.read()[-3000:]}")


def backlog_texts(count):
    return [f"stream record {i}: a short support question about item {i % 97}" for i in range(count)]


def scrape(address, name):
    with __import__("urllib.request").request.urlopen(f"http://{address}/metrics") as r:
        m = re.search(rf"^{name} (\S+)$", r.read().decode(), re.M)
    return float(m.group(1)) if m else 0.0


def run_nlpflow(args, tmp):
    from confluent_kafka import Producer
    log = open(os.path.join(tmp, "nlpflow.log"), "w+")
    proc = subprocess.Popen([args.nlpflow, "run", "--config", os.path.join(ROOT, "configs",
                             "minilm-embed.yaml"), "--set", "metrics.listen=127.0.0.1:0"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        address = wait_log(log, r"metrics listening on (\S+)", proc).group(1)
        bootstrap = wait_log(log, r"nlpflow ready: consuming \S+ from (\S+)", proc).group(1)
        host, port = address.rsplit(":", 1)
        body = {"input": TEXT, "model": "all-MiniLM-L6-v2"}
        idle = measure(host, int(port), "/v1/embeddings", body, args.requests)
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        for t in backlog_texts(args.backlog):
            producer.produce("texts", t.encode())
            producer.poll(0)
        producer.flush(60)
        time.sleep(1)  # the stream is running
        before = scrape(address, "nlpflow_records_out_total")
        t0 = time.monotonic()
        loaded = measure(host, int(port), "/v1/embeddings", body, args.requests)
        window = time.monotonic() - t0
        stream = scrape(address, "nlpflow_records_out_total") - before
        # Records of the stream only: the requests' own records count too.
        stream -= args.requests
        return idle, loaded, stream / window
    finally:
        proc.terminate()
        proc.wait(60)


def run_baseline(args, tmp):
    log = open(os.path.join(tmp, "baseline.log"), "w+")
    port = args.baseline_port
    env = dict(os.environ, NLPFLOW_MODEL=os.path.join(ROOT, "models", "all-MiniLM-L6-v2"),
               BENCH_BACKLOG=str(args.backlog))
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "http_baseline_app:app", "--port",
                             str(port), "--log-level", "warning", "--app-dir",
                             os.path.join(ROOT, "bench")], stdout=log, stderr=subprocess.STDOUT,
                            env=env)
    try:
        start = time.monotonic()
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                c.request("GET", "/health")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() - start > 180:
                log.seek(0)
                raise RuntimeError("baseline did not start:\n" + log.read()[-3000:])
            time.sleep(0.3)
        body = {"inputs": TEXT}
        idle = measure("127.0.0.1", port, "/embed", body, args.requests)
        def call(method, path):  # a fresh connection: uvicorn drops idle ones after 5 s
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            c.request(method, path, "{}" if method == "POST" else None)
            out = json.loads(c.getresponse().read())
            c.close()
            return out
        call("POST", "/stream/start")
        time.sleep(1)
        before = call("GET", "/stream/done")["done"]
        t0 = time.monotonic()
        loaded = measure("127.0.0.1", port, "/embed", body, args.requests)
        window = time.monotonic() - t0
        stream = call("GET", "/stream/done")["done"] - before
        return idle, loaded, stream / window
    finally:
        proc.terminate()
        proc.wait(60)


def cpu():
    facts = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            k, _, v = line.partition(":")
            k = k.strip()
            if k in ("model name", "cpu family", "model") and k not in facts:
                facts[k] = v.strip()
            if k == "flags" and "flags" not in facts:
                flags = v.split()
                facts["flags"] = " ".join(x for x in flags if x.startswith(("avx", "fma", "amx")))
    return facts


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nlpflow", default=os.path.join(ROOT, "build", "nlpflow"))
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--backlog", type=int, default=30000)
    p.add_argument("--baseline-port", type=int, default=18571)
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "http_latency.md"))
    args = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="nlpflow-http-bench-")
    rows = {"nlpflow /v1/embeddings": run_nlpflow(args, tmp),
            "sentence-transformers + FastAPI /embed": run_baseline(args, tmp)}
    f = cpu()
    lines = ["# HTTP latency of one short text, idle and under stream load", "",
             f"Command: `{' '.join(['.venv/bin/python', 'bench/http_latency.py'] + sys.argv[1:])}`",
             f"Text: \"{TEXT}\"; {args.requests} requests one at a time per cell; backlog "
             f"{args.backlog} short texts. Machine shared with other work: compare ratios.",
             f"CPU: {f.get('model name')} (family {f.get('cpu family')}, model {f.get('model')}), "
             f"{os.cpu_count()} cores; {f.get('flags')}; Python {platform.python_version()}", "",
             "| server | idle p50 ms | idle p99 ms | loaded p50 ms | loaded p99 ms | stream records/s during the loaded window |",
             "|---|---|---|---|---|---|"]
    for name, (idle, loaded, rate) in rows.items():
        lines.append(f"| {name} | {percentile(idle, 50):.2f} | {percentile(idle, 99):.2f} | "
                     f"{percentile(loaded, 50):.2f} | {percentile(loaded, 99):.2f} | {rate:.0f} |")
    (n_idle, n_loaded, _), (b_idle, b_loaded, _) = rows.values()
    lines += ["", "Ratios baseline / nlpflow (above 1: nlpflow is faster): "
              f"idle p50 {percentile(b_idle, 50) / percentile(n_idle, 50):.2f}x, "
              f"idle p99 {percentile(b_idle, 99) / percentile(n_idle, 99):.2f}x, "
              f"loaded p50 {percentile(b_loaded, 50) / percentile(n_loaded, 50):.2f}x, "
              f"loaded p99 {percentile(b_loaded, 99) / percentile(n_loaded, 99):.2f}x.", ""]
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as out:
        out.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
