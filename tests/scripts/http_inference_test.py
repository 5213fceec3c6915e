"""HTTP inference against a running `nlpflow run` (pipeline/http_inference.h).

First HTTP only (kafka.input_topics: [], no broker): the OpenAI Python client
and plain HTTP on /v1/embeddings, /embed, /tokenize (ids equal to Hugging Face
tokenizers'), and every error code: 400, 413, 422, 429 with Retry-After, 404
with http.inference off, the per-endpoint histograms on /metrics. Then on a
real broker (scripts/kafka): texts produced to the input topic while the same
texts are asked over HTTP, under stream load; the vectors are equal, bit for
bit, and the output topic holds the stream's results only.

Usage: .venv/bin/python tests/scripts/http_inference_test.py --nlpflow build/nlpflow
Prints "N passed, N failed"; exits 1 on any failure.
"""

import argparse
import base64
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import openai
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from tokenizers import Tokenizer

ROOT = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))
CONFIG = os.path.join(ROOT, "configs", "minilm-embed.yaml")
MODEL = os.path.join(ROOT, "models", "all-MiniLM-L6-v2")
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name}{': ' + str(detail)[:1500] if detail else ''}")


def post(address, path, body, raw=False):
    """(status, headers, parsed JSON body) of a POST."""
    data = body if raw else json.dumps(body).encode()
    req = urllib.request.Request(f"http://{address}{path}", data=data,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, dict(r.headers), json.loads(r.read())
    except urllib.error.HTTPError as e:
        text = e.read()
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = text
        return e.code, dict(e.headers), parsed


def get(address, path):
    with urllib.request.urlopen(f"http://{address}{path}", timeout=30) as r:
        return r.read().decode()


def start_nlpflow(nlpflow, sets, log_path):
    """Starts `nlpflow run`; (process, metrics address) once it is ready."""
    log = open(log_path, "w+")
    args = [nlpflow, "run", "--config", CONFIG, "--set", "metrics.listen=127.0.0.1:0"]
    for s in sets:
        args += ["--set", s]
    app = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    started = time.monotonic()
    text = ""
    while app.poll() is None and time.monotonic() - started < 120:
        log.seek(0)
        text = log.read()
        if "nlpflow ready" in text:
            break
        time.sleep(0.2)
    address = re.search(r"metrics listening on (\S+)", text)
    if app.poll() is not None or address is None:
        check("nlpflow started", False, text[-2000:])
        app.kill()
        return None, None, log
    return app, address.group(1), log


def stop_nlpflow(app, log, what):
    app.terminate()
    app.wait(60)
    log.seek(0)
    check(f"{what}: nlpflow stopped cleanly", app.returncode == 0, log.read()[-2000:])


def f32(v):
    """The float32 values of a vector read from JSON (or decoded from base64):
    vectors compared this way are equal bit for bit. (The OpenAI client asks
    for base64 and hands back the exact float32 values; the JSON answers and
    the stream's results write the shortest decimal that reads back as the
    same float32, which as a Python float is a neighbour of it.)"""
    return list(struct.unpack(f"<{len(v)}f", struct.pack(f"<{len(v)}f", *v)))


def metric(text, name, labels=""):
    m = re.search(r"^" + re.escape(name + labels) + r" (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def http_only(nlpflow, tmp):
    app, address, log = start_nlpflow(
        nlpflow, ["kafka.input_topics=[]", "http.max_concurrent_requests=1",
                  "http.max_body_bytes=200000"], os.path.join(tmp, "http-only.log"))
    if app is None:
        return
    try:
        check("HTTP only: ready without a broker", get(address, "/readyz").strip() == "ready")
        client = openai.OpenAI(base_url=f"http://{address}/v1", api_key="unused", max_retries=0)
        texts = ["A short query about trains.", "Cats sleep most of the day.", "héllo wörld"]
        one = client.embeddings.create(input=texts[0], model="all-MiniLM-L6-v2")
        check("openai: one input, 384 floats, index 0",
              len(one.data) == 1 and len(one.data[0].embedding) == 384 and one.data[0].index == 0)
        many = client.embeddings.create(input=texts, model="all-MiniLM-L6-v2")
        vectors = [f32(d.embedding) for d in many.data]
        check("openai: a list gives one vector per input, in order",
              [d.index for d in many.data] == [0, 1, 2] and vectors[0] == f32(one.data[0].embedding))
        hf = Tokenizer.from_file(os.path.join(MODEL, "tokenizer.json"))
        hf.no_padding()  # the file pads to 128; a request's encoding is not padded
        want_tokens = sum(len(hf.encode(t).ids) for t in texts)
        check("openai: usage counts the tokens, special tokens included",
              many.usage.prompt_tokens == want_tokens and many.usage.total_tokens == want_tokens,
              (many.usage, want_tokens))
        check("openai: model is the served model's name", many.model == "all-MiniLM-L6-v2", many.model)
        # The client asks for base64 itself when numpy is there; ask explicitly.
        status, _, b64 = post(address, "/v1/embeddings",
                              {"input": texts, "model": "m", "encoding_format": "base64"})
        decoded = [list(struct.unpack("<384f", base64.b64decode(d["embedding"])))
                   for d in b64.get("data", [])] if status == 200 else []
        status, _, floats = post(address, "/v1/embeddings", {"input": texts, "model": "m"})
        check("base64: little-endian float32 equal to the float answer",
              decoded == vectors and [f32(d["embedding"]) for d in floats["data"]] == vectors,
              status)
        status, _, embed = post(address, "/embed", {"inputs": texts})
        check("/embed: [[floats]] equal to /v1/embeddings'",
              status == 200 and [f32(v) for v in embed] == vectors,
              status)
        status, _, raw = post(address, "/embed", {"inputs": texts[1], "normalize": False})
        check("/embed normalize false: the model's (unit-length) vector",
              [f32(v) for v in raw] == [vectors[1]])
        status, _, toks = post(address, "/tokenize", {"inputs": texts})
        check("/tokenize: the ids of Hugging Face tokenizers",
              status == 200 and [[t["id"] for t in row] for row in toks] ==
              [hf.encode(t).ids for t in texts], toks)
        status, _, toks = post(address, "/tokenize",
                               {"inputs": "trains", "add_special_tokens": False})
        check("/tokenize without special tokens: text and byte offsets",
              toks == [[{"id": hf.encode("trains").ids[1], "text": "trains", "special": False,
                         "start": 0, "stop": 6}]], toks)

        status, _, body = post(address, "/embed", b"{not json", raw=True)
        check("400 malformed JSON, with a JSON error",
              status == 400 and body == {"error": "malformed JSON in the request body",
                                         "error_type": "invalid_request_error"}, (status, body))
        status, _, body = post(address, "/embed", {"inputs": [1, 2]})
        check("400 inputs not strings", status == 400 and "'inputs' must be" in body["error"], body)
        try:
            client.embeddings.create(input=[], model="m")
            check("openai: empty input is a BadRequestError", False)
        except openai.BadRequestError as e:
            check("openai: empty input is a BadRequestError", e.status_code == 400 and
                  "'input' must be a string or a non-empty list" in str(e), e)
        status, _, body = post(address, "/predict", {"inputs": "x"})
        check("422 /predict on an embedding model", status == 422 and body["error"] ==
              "/predict needs a sequence-classification model; the model's task is embedding",
              (status, body))
        status, _, body = post(address, "/rerank", {"query": "q", "texts": ["a"]})
        check("422 /rerank on an embedding model", status == 422 and
              body["error"] == "/rerank needs a cross-encoder; the model's task is embedding", body)
        status, _, body = post(address, "/embed", b'{"inputs": "' + b"a" * 250000 + b'"}', raw=True)
        check("413 over http.max_body_bytes, with a JSON error", status == 413 and
              body.get("error") == "request body over http.max_body_bytes (200000)", (status, body))

        # 429: one request at a time (http.max_concurrent_requests=1); a long
        # one holds the place while a second arrives.
        long_texts = [" ".join(f"word{i}x{j}" for j in range(300)) for i in range(48)]
        first = {}
        worker = threading.Thread(
            target=lambda: first.update(r=post(address, "/embed", {"inputs": long_texts})))
        worker.start()
        time.sleep(0.3)
        status, headers, body = post(address, "/embed", {"inputs": "a"})
        worker.join()
        check("429 with Retry-After while the one allowed request runs",
              status == 429 and headers.get("Retry-After") == "1" and
              "http.max_concurrent_requests 1" in body["error"], (status, headers, body))
        check("the long request itself succeeded",
              first.get("r", (0,))[0] == 200 and len(first["r"][2]) == 48, first.get("r", (0,))[0])

        m = get(address, "/metrics")
        check("metrics: /v1/embeddings latency histogram counts every request",
              metric(m, "nlpflow_http_request_seconds_count", '{endpoint="/v1/embeddings"}') == 5,
              metric(m, "nlpflow_http_request_seconds_count", '{endpoint="/v1/embeddings"}'))
        check("metrics: /embed, /tokenize, /predict, /rerank histograms",
              all(metric(m, "nlpflow_http_request_seconds_count", f'{{endpoint="{e}"}}')
                  for e in ("/embed", "/tokenize", "/predict", "/rerank")))
        check("metrics: one rejection", metric(m, "nlpflow_http_rejected_total") == 1,
              metric(m, "nlpflow_http_rejected_total"))
    finally:
        stop_nlpflow(app, log, "HTTP only")

    off = subprocess.run([nlpflow, "validate-config", CONFIG, "--set",
                          "kafka.input_topics=[]", "--set", "http.inference=false"],
                         capture_output=True, text=True, timeout=60)
    check("no topics and HTTP off: exit 2, one line",
          off.returncode == 2 and "nothing to serve" in off.stderr, (off.returncode, off.stderr))


def with_stream(nlpflow, tmp):
    kafka = os.path.join(ROOT, "scripts", "kafka")
    start = subprocess.run(["bash", kafka, "start", "--dir", os.path.join(tmp, "kafka"), "--owner",
                            str(os.getpid())], capture_output=True, text=True, timeout=300)
    if start.returncode != 0:
        check("scripts/kafka start", False, start.stderr[-2000:])
        return
    bootstrap = start.stdout.strip().splitlines()[-1]
    app = None
    try:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for future in admin.create_topics([NewTopic("http-texts", 2, 1)]).values():
            future.result(30)
        del admin
        app, address, log = start_nlpflow(nlpflow, [
            f"kafka.bootstrap_servers={bootstrap}", "kafka.input_topics=[http-texts]",
            "kafka.output_topic=http-results", "kafka.dead_letter_topic=http-texts.dlq",
            "kafka.group_id=http-test", "kafka.consumer.auto.offset.reset=earliest"],
            os.path.join(tmp, "stream.log"))
        if app is None:
            return
        # Stream load: background texts, then the texts asked over HTTP too.
        texts = [f"query number {i} about {'cats' if i % 2 else 'trains'}" for i in range(20)]
        load = [f"background record {i} " + "filler " * (i % 40) for i in range(400)]
        producer = Producer({"bootstrap.servers": bootstrap})
        for i, t in enumerate(load):
            producer.produce("http-texts", t.encode(), key=f"load{i}".encode())
        for i, t in enumerate(texts):
            producer.produce("http-texts", t.encode(), key=f"q{i}".encode())
        producer.flush(30)
        client = openai.OpenAI(base_url=f"http://{address}/v1", api_key="unused", max_retries=0)
        # One request per text, while the stream is being worked.
        http_vectors = [f32(client.embeddings.create(input=t, model="m").data[0].embedding)
                        for t in texts]
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "http-test-reader",
                             "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
        consumer.subscribe(["http-results"])
        by_key = {}
        count = 0
        deadline = time.monotonic() + 90
        while count < len(load) + len(texts) and time.monotonic() < deadline:
            m = consumer.poll(0.5)
            if m is not None and m.error() is None:
                count += 1
                by_key[m.key().decode() if m.key() else None] = json.loads(m.value())
        # A result of an HTTP request would show up by now.
        extra_deadline = time.monotonic() + 2
        while time.monotonic() < extra_deadline:
            m = consumer.poll(0.2)
            if m is not None and m.error() is None:
                count += 1
        consumer.close()
        check("the output topic holds the stream's results only (no HTTP request's)",
              count == len(load) + len(texts) and len(by_key) == count, (count, len(by_key)))
        equal = [f32(by_key.get(f"q{i}", {}).get("embedding", [])) == http_vectors[i]
                 for i in range(len(texts))]
        check("under load each HTTP vector equals the stream's for the same text, bit for bit",
              all(equal), equal)
        solo = "one text on an idle stream"
        producer.produce("http-texts", solo.encode(), key=b"solo")
        producer.flush(30)
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "http-test-solo",
                             "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
        consumer.subscribe(["http-results"])
        stream_solo = None
        deadline = time.monotonic() + 60
        while stream_solo is None and time.monotonic() < deadline:
            m = consumer.poll(0.5)
            if m is not None and m.error() is None and m.key() == b"solo":
                stream_solo = json.loads(m.value())["embedding"]
        consumer.close()
        http_solo = client.embeddings.create(input=solo, model="m").data[0].embedding
        check("alone in its batch, the HTTP vector equals the stream's bit for bit",
              stream_solo is not None and f32(stream_solo) == f32(http_solo))
        status, _, embed = post(address, "/embed", {"inputs": texts})
        check("/embed under the stream gives the same vectors",
              status == 200 and [f32(v) for v in embed] == http_vectors)
        stop_nlpflow(app, log, "stream")
        app = None
    finally:
        if app is not None:
            app.kill()
        subprocess.run(["bash", kafka, "stop", "--dir", os.path.join(tmp, "kafka"), "--grace", "0"],
                       capture_output=True, timeout=60)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nlpflow", default=os.path.join(ROOT, "build", "nlpflow"))
    parser.add_argument("--no-kafka", action="store_true", help="the HTTP-only part only")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="nlpflow-http-")
    http_only(args.nlpflow, tmp)
    if not args.no_kafka:
        with_stream(args.nlpflow, tmp)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
