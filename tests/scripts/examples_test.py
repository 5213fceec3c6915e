"""The client contract, end to end against a real broker (scripts/kafka):
examples/python/produce.py sends Protobuf InputRecords to a running
`nlpflow run`; examples/python/consume.py reads the results and dead letters
(JSON, then Protobuf); every one validates against schemas/*.schema.json and
carries the input's coordinates and Kafka timestamp. `nlpflow embed`'s lines
validate too, and a broken copy of each kind does not (the schemas can fail).

Usage: .venv/bin/python tests/scripts/examples_test.py --nlpflow build/nlpflow
Prints "N passed, N failed"; exits 1 on any failure.
"""

import argparse
import base64
import copy
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import jsonschema
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))
EXAMPLES = os.path.join(ROOT, "examples", "python")
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name}{': ' + str(detail) if detail else ''}")


def schema(name):
    with open(os.path.join(ROOT, "schemas", name)) as f:
        s = json.load(f)
    jsonschema.Draft202012Validator.check_schema(s)
    return jsonschema.Draft202012Validator(s)


def errors_of(validator, value):
    return [e.message for e in validator.iter_errors(value)]


def run_example(script, args, timeout=90):
    return subprocess.run([sys.executable, os.path.join(EXAMPLES, script)] + args,
                          capture_output=True, text=True, timeout=timeout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nlpflow", default=os.path.join(ROOT, "build", "nlpflow"))
    args = parser.parse_args()
    result_schema = schema("result.schema.json")
    dead_letter_schema = schema("dead_letter.schema.json")
    config = os.path.join(ROOT, "configs", "minilm-embed.yaml")

    # nlpflow embed: offline lines, no broker.
    embed = subprocess.run([args.nlpflow, "embed", "--config", config], input="a short text\n\n",
                           capture_output=True, text=True, timeout=120)
    lines = [json.loads(l) for l in embed.stdout.splitlines()]
    check("nlpflow embed ran", embed.returncode == 0 and len(lines) == 2, embed.stderr[-500:])
    if len(lines) == 2:
        check("embed result validates", not errors_of(result_schema, lines[0]),
              errors_of(result_schema, lines[0]))
        check("embed dead letter validates", not errors_of(dead_letter_schema, lines[1]),
              errors_of(dead_letter_schema, lines[1]))
        check("embed result has no Kafka timestamp (-1)", lines[0]["source"]["timestamp_ms"] == -1)
        for what, value, validator in (("result", lines[0], result_schema),
                                       ("dead letter", lines[1], dead_letter_schema)):
            broken = copy.deepcopy(value)
            broken.pop("topic" if what == "dead letter" else "model")
            broken["unexpected"] = 1
            check(f"a broken {what} does not validate", len(errors_of(validator, broken)) == 2)

    tmp = tempfile.mkdtemp(prefix="nlpflow-examples-")
    kafka = os.path.join(ROOT, "scripts", "kafka")
    start = subprocess.run(["bash", kafka, "start", "--dir", os.path.join(tmp, "kafka"), "--owner",
                            str(os.getpid())], capture_output=True, text=True, timeout=300)
    if start.returncode != 0:
        check("scripts/kafka start", False, start.stderr[-2000:])
        print(f"{passed} passed, {failed} failed")
        return 1
    bootstrap = start.stdout.strip().splitlines()[-1]
    app = None
    try:
        topics = {"in": "ex-texts", "out": "ex-results", "dlq": "ex-texts.dlq"}
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for future in admin.create_topics([NewTopic(topics["in"], 2, 1)]).values():
            future.result(30)
        del admin  # no reconnect attempts (and log lines) once the broker stops
        for fmt in ("json", "protobuf"):
            out, dlq, group = f"{topics['out']}-{fmt}", f"{topics['dlq']}-{fmt}", f"ex-{fmt}"
            log = open(os.path.join(tmp, f"nlpflow-{fmt}.log"), "w+")
            app = subprocess.Popen(
                [args.nlpflow, "run", "--config", config, "--set", f"kafka.bootstrap_servers={bootstrap}",
                 "--set", f"kafka.input_topics=[{topics['in']}]", "--set", f"kafka.output_topic={out}",
                 "--set", f"kafka.dead_letter_topic={dlq}", "--set", f"kafka.group_id={group}",
                 "--set", "input.format=protobuf", "--set", f"output.format={fmt}",
                 "--set", "metrics.listen=''", "--set", "kafka.consumer.auto.offset.reset=earliest"],
                stdout=log, stderr=subprocess.STDOUT)
            started = time.monotonic()
            while app.poll() is None and time.monotonic() - started < 90:
                log.seek(0)
                if "nlpflow ready" in log.read():
                    break
                time.sleep(0.2)
            log.seek(0)
            if app.poll() is not None:
                check(f"[{fmt}] nlpflow started", False, log.read()[-2000:])
                app = None
                continue
            # The first pass produces; the second reads the same input again
            # (a new group, from the earliest offset) with the other format.
            if fmt == "json":
                produced = run_example("produce.py", [
                    "--bootstrap", bootstrap, "--topic", topics["in"], "--id-prefix", "ex-",
                    "--attribute", "lang=en", "--text", "The first example text.",
                    "--text", "A second one, a bit longer than the first.", "--text", ""])
                check("produce.py delivered 3 records", produced.returncode == 0 and
                      len(produced.stdout.splitlines()) == 3, produced.stderr)
                delivered = {d["id"]: d for d in map(json.loads, produced.stdout.splitlines())}
            consumed = run_example("consume.py", [
                "--bootstrap", bootstrap, "--output-topic", out, "--dead-letter-topic", dlq,
                "--format", fmt, "--results", "2", "--dead-letters", "1", "--timeout", "90"], timeout=120)
            app.terminate()
            app.wait(60)
            log.seek(0)
            check(f"[{fmt}] nlpflow stopped cleanly", app.returncode == 0, log.read()[-2000:])
            app = None
            check(f"[{fmt}] consume.py read 2 results and 1 dead letter", consumed.returncode == 0,
                  consumed.stderr)
            messages = [json.loads(l) for l in consumed.stdout.splitlines()]
            results = [m["value"] for m in messages if m["kind"] == "result"]
            dead = [m["value"] for m in messages if m["kind"] == "dead_letter"]
            if fmt == "json":
                for r in results:
                    check(f"[json] result {r.get('id')} validates", not errors_of(result_schema, r),
                          errors_of(result_schema, r))
                    want = delivered.get(r.get("id"), {})
                    check(f"[json] result {r.get('id')} carries the input's partition, offset and "
                          f"Kafka timestamp",
                          r["source"] == {"topic": topics["in"], "partition": want.get("partition"),
                                          "offset": want.get("offset"),
                                          "timestamp_ms": want.get("timestamp_ms")},
                          (r["source"], want))
                    check(f"[json] result {r.get('id')} keeps the attributes",
                          r.get("attributes") == {"lang": "en"})
                for d in dead:
                    check("[json] dead letter validates", not errors_of(dead_letter_schema, d),
                          errors_of(dead_letter_schema, d))
                    want = delivered.get("ex-2", {})
                    check("[json] dead letter is the empty text, with its coordinates and timestamp",
                          d["reason"] == "empty text" and d["stage"] == "decode" and
                          (d["partition"], d["offset"], d["timestamp_ms"]) ==
                          (want.get("partition"), want.get("offset"), want.get("timestamp_ms")) and
                          base64.b64decode(d["key_base64"]) == b"ex-2", d)
                json_results = {r["id"]: r for r in results}
            else:
                # Protobuf: the same values as the JSON pass (same input, same model).
                for r in results:
                    j = json_results.get(r.get("id"), {})
                    check(f"[protobuf] result {r.get('id')} equals the JSON one",
                          r["model_name"] == j.get("model") and
                          int(r["source"]["timestamp_ms"]) == j.get("source", {}).get("timestamp_ms") and
                          [round(x, 5) for x in r["embedding"]] ==
                          [round(x, 5) for x in j.get("embedding", [])])
                check("[protobuf] dead letter reason", [d.get("reason") for d in dead] == ["empty text"], dead)
    finally:
        if app is not None:
            app.kill()
        subprocess.run(["bash", kafka, "stop", "--dir", os.path.join(tmp, "kafka"), "--grace", "0"],
                       capture_output=True, timeout=60)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
