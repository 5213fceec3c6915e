#!/usr/bin/env python3
"""The Python pipeline a user would write instead of nlpflow: the baseline of
bench/e2e_latency.py.

A confluent-kafka consumer in a consumer group; each poll returns up to
--max-poll records, which sentence-transformers encodes in one call
(normalized embeddings, the model's own max_seq_length); each embedding goes
out as JSON with the input's key and headers; offsets are auto-committed
(confluent-kafka's default). Torch uses --threads intra-op threads, the same
number of cores that nlpflow is given.

  python_baseline.py --bootstrap HOST:PORT --input TOPIC --output TOPIC
                     [--group G] [--model DIR] [--threads N] [--max-poll N]

Runs until SIGTERM or SIGINT, then flushes the producer and closes the
consumer. Prints "ready" on stdout once the model is loaded and the consumer
subscribed.
"""

import argparse
import json
import signal
import sys

import torch
from confluent_kafka import Consumer, Producer
from sentence_transformers import SentenceTransformer


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--group", default="python-baseline")
    parser.add_argument("--model", default="models/all-MiniLM-L6-v2")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-poll", type=int, default=64)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    model = SentenceTransformer(args.model, device="cpu")
    model.eval()

    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "auto.offset.reset": "earliest",
    })
    producer = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 1})
    consumer.subscribe([args.input])

    stopping = False

    def stop(_signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("ready", flush=True)

    while not stopping:
        messages = consumer.consume(num_messages=args.max_poll, timeout=0.05)
        messages = [m for m in messages if m.error() is None]
        if not messages:
            producer.poll(0)
            continue
        texts = [m.value().decode("utf-8", errors="replace") for m in messages]
        with torch.inference_mode():
            embeddings = model.encode(texts, batch_size=len(texts),
                                      normalize_embeddings=True, convert_to_numpy=True)
        for message, embedding in zip(messages, embeddings):
            producer.produce(args.output, key=message.key(),
                             value=json.dumps({"embedding": embedding.tolist()}),
                             headers=message.headers())
        producer.poll(0)

    producer.flush(30)
    consumer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
