#!/usr/bin/env python3
"""Hugging Face reference ids for the tokenizer parity corpus.

Run by ctest (tests/nodes/tokenize/CMakeLists.txt) before
tokenizer_corpus_parity_test:

  tokenizer_parity_reference.py OUT_DIR NAME=TOKENIZER_JSON [NAME=TOKENIZER_JSON ...]

Builds the corpus (tests/fixtures/make_tokenizer_corpus.py) and writes
  OUT_DIR/corpus.jsonl   one {"text": ...} per line
  OUT_DIR/NAME.ids       line i: the ids of text i, space-separated, from
                         Tokenizer.from_file(TOKENIZER_JSON).encode(text).ids
                         (the file's own special tokens and truncation;
                         padding off: the library returns unpadded
                         encodings, `nlpflow tokenize` pads and is tested
                         on its own)
For a tokenizer named bpe it also writes OUT_DIR/bpe_prefix.json, the same
file with the ByteLevel pre-tokenizer's add_prefix_space set (GPT-2/RoBERTa
files come both ways), and OUT_DIR/bpe_prefix.ids.
Exits 77 (ctest: skipped) when `tokenizers`, a tokenizer file or the
e-mails are missing, after removing stale outputs so the C++ test skips too.
"""

import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures"))

SKIP = 77


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out_dir = sys.argv[1]
    pairs = [a.split("=", 1) for a in sys.argv[2:]]
    os.makedirs(out_dir, exist_ok=True)
    for name in ["corpus.jsonl", "bpe_prefix.ids"] + [f"{n}.ids" for n, _ in pairs]:
        try:
            os.remove(os.path.join(out_dir, name))
        except FileNotFoundError:
            pass
    try:
        from tokenizers import Tokenizer
    except ImportError:
        print("skipped: Python package tokenizers is missing (scripts/setup installs it)")
        sys.exit(SKIP)
    import make_tokenizer_corpus

    if not os.path.isdir(make_tokenizer_corpus.DEFAULT_CORPUS_DIR):
        print(f"skipped: {make_tokenizer_corpus.DEFAULT_CORPUS_DIR} is missing (scripts/setup)")
        sys.exit(SKIP)
    for name, path in pairs:
        if not os.path.isfile(path):
            print(f"skipped: {path} is missing")
            sys.exit(SKIP)

    t0 = time.time()
    texts = make_tokenizer_corpus.build_corpus()
    for name, path in list(pairs):
        if name == "bpe":
            with open(path, encoding="utf-8") as f:
                spec = json.load(f)
            spec["pre_tokenizer"]["add_prefix_space"] = True
            variant = os.path.join(out_dir, "bpe_prefix.json")
            with open(variant, "w", encoding="utf-8") as f:
                json.dump(spec, f, ensure_ascii=False)
            pairs.append(["bpe_prefix", variant])
    for name, path in pairs:
        tok = Tokenizer.from_file(path)
        tok.no_padding()
        encodings = tok.encode_batch(texts)
        tmp = os.path.join(out_dir, f"{name}.ids.tmp")
        with open(tmp, "w") as f:
            for e in encodings:
                f.write(" ".join(map(str, e.ids)) + "\n")
        os.replace(tmp, os.path.join(out_dir, f"{name}.ids"))
    # The corpus last: the C++ test needs it and every ids file.
    tmp = os.path.join(out_dir, "corpus.jsonl.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
    os.replace(tmp, os.path.join(out_dir, "corpus.jsonl"))
    print(f"{len(texts)} texts, tokenizers {', '.join(n for n, _ in pairs)}, "
          f"{time.time() - t0:.1f} s -> {out_dir}")


if __name__ == "__main__":
    main()
