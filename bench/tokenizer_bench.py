#!/usr/bin/env python3
"""Tokenizer benchmark: nlpflow's tokenizers against Hugging Face tokenizers,
measured in the same run on the same texts.

  .venv/bin/python bench/tokenizer_bench.py [--build build] [--seconds 5]

For the WordPiece model (all-MiniLM-L6-v2), the byte-level BPE fixture and
two Unigram tokenizers (trained by tests/nodes/tokenize/train_unigram.py, as
the parity test does: SentencePiece nmt_nfkc converted by transformers'
XLMRobertaTokenizerFast, and one trained by tokenizers' UnigramTrainer):
  - nlpflow: build/bench/tokenizer_bench (one thread; two threads through
    tbb::parallel_for; allocations per record);
  - Hugging Face: Tokenizer.encode_batch over the same texts, in a child
    process with RAYON_NUM_THREADS=1 (one thread) and with 2.
The machine is shared and noisy: each measurement is taken in --rounds
interleaved rounds (nlpflow, HF 1 thread, HF 2 threads, again) and the best
round of each is kept. Both sides use a copy of the tokenizer.json with truncation and padding
removed, so that both tokenize every text completely and produce the same
tokens (the parity tests check the ids; here the token counts are compared).
The texts are the parity corpus (tests/fixtures/make_tokenizer_corpus.py).
Writes bench/results/tokenizer_bench.json and .md with the command.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures"))
import make_tokenizer_corpus  # noqa: E402

TOKENIZERS = {
    "WordPiece (all-MiniLM-L6-v2)": os.path.join(ROOT, "models", "all-MiniLM-L6-v2", "tokenizer.json"),
    "byte-level BPE (fixture)": os.path.join(ROOT, "tests", "fixtures", "bpe_tokenizer.json"),
}

HF_CHILD = r"""
import json, sys, time
from tokenizers import Tokenizer
path, texts_path, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
texts = [json.loads(l)["text"] for l in open(texts_path, encoding="utf-8")]
t = Tokenizer.from_file(path)
t.encode_batch(texts[:1000])
records = tokens = 0
start = time.perf_counter()
while True:
    tokens += sum(len(e.ids) for e in t.encode_batch(texts))
    records += len(texts)
    elapsed = time.perf_counter() - start
    if elapsed >= seconds:
        break
print(json.dumps({"records": records, "tokens": tokens, "seconds": elapsed,
                  "tokens_per_s": tokens / elapsed, "records_per_s": records / elapsed}))
"""


def hf(path, texts_path, seconds, threads):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="true")
    out = subprocess.run([sys.executable, "-c", HF_CHILD, path, texts_path, str(seconds)],
                         env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    args = parser.parse_args()
    bench = os.path.join(args.build, "bench", "tokenizer_bench")
    import tokenizers

    tmp = tempfile.mkdtemp()
    all_texts = make_tokenizer_corpus.build_corpus()
    sys.path.insert(0, os.path.join(ROOT, "tests", "nodes", "tokenize"))
    import train_unigram  # noqa: E402

    trained = dict(train_unigram.train_all(all_texts, tmp))
    TOKENIZERS["Unigram (SentencePiece nmt_nfkc, XLM-R converter)"] = trained["unigram_spm"]
    TOKENIZERS["Unigram (tokenizers UnigramTrainer)"] = trained["unigram_hf"]
    # The whole corpus, and its texts of at most 512 bytes (sentences and
    # short paragraphs, what a serving request looks like; long e-mail
    # bodies cost Hugging Face more per token).
    corpora = {"all": all_texts,
               "<= 512 bytes": [t for t in all_texts if len(t.encode("utf-8")) <= 512]}

    results = []
    for (corpus_name, texts), (name, path) in (
            (c, t) for c in corpora.items() for t in TOKENIZERS.items()):
        texts_path = os.path.join(tmp, f"texts{len(results)}.jsonl")
        with open(texts_path, "w", encoding="utf-8") as f:
            for t in texts:
                f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
        spec["truncation"] = None
        spec["padding"] = None
        plain = os.path.join(tmp, f"{len(results)}.json")
        with open(plain, "w", encoding="utf-8") as f:
            json.dump(spec, f, ensure_ascii=False)
        best = lambda a, b: a if a and a["tokens_per_s"] >= b["tokens_per_s"] else b
        ours = hf1 = hf2 = None
        for _ in range(args.rounds):
            run = json.loads(subprocess.run(
                [bench, "--tokenizer", plain, "--texts", texts_path, "--seconds",
                 str(args.seconds), "--threads", "2"],
                check=True, capture_output=True, text=True).stdout)
            if ours is None:
                ours = run
            else:
                ours["one_thread"] = best(ours["one_thread"], run["one_thread"])
                ours["n_threads"] = best(ours["n_threads"], run["n_threads"])
            hf1 = best(hf1, hf(plain, texts_path, args.seconds, 1))
            hf2 = best(hf2, hf(plain, texts_path, args.seconds, 2))
        results.append({
            "tokenizer": name,
            "texts": corpus_name,
            "num_texts": len(texts),
            "nlpflow_one_thread": ours["one_thread"],
            "nlpflow_two_threads": ours["n_threads"],
            "nlpflow_allocations_per_record": ours["allocations_per_record"],
            "nlpflow_tokens_per_pass": ours["tokens_per_pass"],
            "hf_one_thread": hf1,
            "hf_two_threads": hf2,
            "hf_tokens_per_pass": hf1["tokens"] // (hf1["records"] // len(texts)),
            "ratio_one_thread": ours["one_thread"]["tokens_per_s"] / hf1["tokens_per_s"],
            "ratio_two_threads": ours["n_threads"]["tokens_per_s"] / hf2["tokens_per_s"],
        })

    report = {
        "command": "bench/tokenizer_bench.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "hf_tokenizers_version": tokenizers.__version__,
        "texts": len(all_texts),
        "bytes": sum(len(t.encode("utf-8")) for t in all_texts),
        "seconds_per_measurement": args.seconds,
        "rounds": args.rounds,
        "load_average_at_start": os.getloadavg(),
        "results": results,
    }
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "tokenizer_bench.json"), "w") as f:
        json.dump(report, f, indent=2)
    lines = [
        "# Tokenizer benchmark",
        "",
        f"Command: `{report['command']}` ({report['date']}, {report['machine']}).",
        f"{report['texts']} texts ({report['bytes']} bytes) of the parity corpus, and its texts of at most",
        "512 bytes; no truncation,",
        f"no padding; Hugging Face tokenizers {report['hf_tokenizers_version']} `encode_batch`",
        "(RAYON_NUM_THREADS=1 for one thread, 2 for two), measured in the same run: best of",
        f"{report['rounds']} interleaved rounds of {report['seconds_per_measurement']} s each; nlpflow's",
        "two threads are tbb::parallel_for over the texts. Load average at the start:",
        f"{report['load_average_at_start'][0]:.1f} (the 2 cores are shared: treat absolute numbers as noisy).",
        "",
        "| tokenizer | texts | nlpflow 1 thread (tokens/s) | HF 1 thread | ratio | nlpflow 2 threads | HF 2 threads | ratio | allocations/record |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['tokenizer']} | {r['texts']} ({r['num_texts']}) | "
            f"{r['nlpflow_one_thread']['tokens_per_s']:,.0f} | "
            f"{r['hf_one_thread']['tokens_per_s']:,.0f} | {r['ratio_one_thread']:.2f}x | "
            f"{r['nlpflow_two_threads']['tokens_per_s']:,.0f} | "
            f"{r['hf_two_threads']['tokens_per_s']:,.0f} | {r['ratio_two_threads']:.2f}x | "
            f"{r['nlpflow_allocations_per_record']:.2f} |")
    lines += ["", "Tokens per pass (must agree): " + "; ".join(
        f"{r['tokenizer']}, {r['texts']}: nlpflow {r['nlpflow_tokens_per_pass']}, "
        f"HF {r['hf_tokens_per_pass']}"
        for r in results), ""]
    with open(os.path.join(args.out, "tokenizer_bench.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
