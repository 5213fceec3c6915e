#!/usr/bin/env python3
"""Send texts to nlpflow as Protobuf nlpflow.v1.InputRecord messages.

For a pipeline with `input.format: protobuf`. One text per line of stdin (or
--text, repeatable); each gets the id "<prefix><n>" and the attributes given
with --attribute k=v. Prints one JSON line per delivered record with its id,
partition, offset and Kafka timestamp: what the result (or dead letter) will
carry in its "source".

    examples/python/produce.py --bootstrap 127.0.0.1:9092 --topic texts < texts.txt

Needs confluent-kafka and protobuf (both in .venv) and protoc.
"""

import argparse
import json
import sys

from confluent_kafka import Producer

import nlpflow_schemas


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True, help="host:port[,host:port]")
    parser.add_argument("--topic", required=True, help="an input topic of the pipeline")
    parser.add_argument("--text", action="append", help="a text (repeatable); default: stdin lines")
    parser.add_argument("--id-prefix", default="", help="ids are <prefix><n>")
    parser.add_argument("--attribute", action="append", default=[], help="k=v, copied to every result")
    args = parser.parse_args()

    pb = nlpflow_schemas.load()
    texts = args.text if args.text is not None else [l.rstrip("\n") for l in sys.stdin]
    attributes = dict(a.split("=", 1) for a in args.attribute)
    producer = Producer({"bootstrap.servers": args.bootstrap, "enable.idempotence": True,
                         "linger.ms": 1})
    failures = []

    def report(err, msg):
        if err is not None:
            failures.append(str(err))
            return
        _, timestamp = msg.timestamp()
        print(json.dumps({"id": msg.key().decode(), "partition": msg.partition(),
                          "offset": msg.offset(), "timestamp_ms": timestamp}), flush=True)

    for n, text in enumerate(texts):
        record = pb.input_record.InputRecord(text=text, id=f"{args.id_prefix}{n}")
        record.attributes.update(attributes)
        # The id as the key: a partitioner keeps one id's records in order.
        producer.produce(args.topic, value=record.SerializeToString(), key=record.id,
                         on_delivery=report)
        producer.poll(0)
    if producer.flush(30) != 0:
        failures.append("not every record was delivered within 30 s")
    for f in failures:
        print(f"produce.py: {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
