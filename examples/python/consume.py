#!/usr/bin/env python3
"""Read nlpflow's results and dead letters.

Subscribes to the output and dead-letter topics in a consumer group of its
own and prints one JSON line per message: {"kind": "result" | "dead_letter",
"topic", "partition", "offset", "value": <the message>}, where value is the
JSON object nlpflow wrote (output.format: json) or the Protobuf message as
JSON (--format protobuf; schemas/result.proto, schemas/dead_letter.proto).
Stops after --results results and --dead-letters dead letters, or --timeout.

    examples/python/consume.py --bootstrap 127.0.0.1:9092 --results 10

Needs confluent-kafka (and protobuf and protoc for --format protobuf).
"""

import argparse
import json
import sys
import time
import uuid

from confluent_kafka import Consumer


def decoder(fmt):
    if fmt == "json":
        return lambda kind, value: json.loads(value)
    import nlpflow_schemas
    from google.protobuf.json_format import MessageToDict

    pb = nlpflow_schemas.load()

    def decode(kind, value):
        message = pb.result.Result() if kind == "result" else pb.dead_letter.DeadLetter()
        message.ParseFromString(value)
        return MessageToDict(message, preserving_proto_field_name=True)

    return decode


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--output-topic", default="embeddings")
    parser.add_argument("--dead-letter-topic", default="texts.dlq")
    parser.add_argument("--group", default=None, help="default: a fresh group")
    parser.add_argument("--format", choices=["json", "protobuf"], default="json")
    parser.add_argument("--results", type=int, default=0, help="stop after this many results")
    parser.add_argument("--dead-letters", type=int, default=0, help="... and this many dead letters")
    parser.add_argument("--timeout", type=float, default=60, help="seconds")
    args = parser.parse_args()

    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group or f"nlpflow-example-{uuid.uuid4()}",
        "auto.offset.reset": "earliest",
        # Results of exactly-once pipelines: only committed transactions.
        "isolation.level": "read_committed",
    })
    kinds = {args.output_topic: "result", args.dead_letter_topic: "dead_letter"}
    consumer.subscribe(list(kinds))
    decode = decoder(args.format)
    seen = {"result": 0, "dead_letter": 0}
    deadline = time.monotonic() + args.timeout
    try:
        while time.monotonic() < deadline:
            if seen["result"] >= args.results and seen["dead_letter"] >= args.dead_letters and \
                    (args.results or args.dead_letters):
                break
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                print(f"consume.py: {msg.error()}", file=sys.stderr)
                continue
            kind = kinds[msg.topic()]
            seen[kind] += 1
            print(json.dumps({"kind": kind, "topic": msg.topic(), "partition": msg.partition(),
                              "offset": msg.offset(), "value": decode(kind, msg.value())}),
                  flush=True)
    finally:
        consumer.close()
    if seen["result"] < args.results or seen["dead_letter"] < args.dead_letters:
        print(f"consume.py: got {seen['result']} results and {seen['dead_letter']} dead letters "
              f"within {args.timeout:g} s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
