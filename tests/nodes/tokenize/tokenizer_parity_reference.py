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
The argument `unigram` (no file) trains the Unigram tokenizers
(train_unigram.py: unigram_spm.json, its byte_fallback variant
unigram_spm_bytes.json, and unigram_hf.json) into OUT_DIR and writes their
ids; it needs `sentencepiece` too. For each of them it also writes
NAME.examples.jsonl: on every 16th text, the full encoding (ids, type ids,
byte offsets) of the text alone and of the pair (text, next text).
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


def byte_starts(text):
    """starts[i]: the UTF-8 byte offset of character i of text."""
    starts = [0]
    for c in text:
        starts.append(starts[-1] + len(c.encode("utf-8")))
    return starts


def write_examples(tok, texts, path):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for i in range(0, len(texts) - 1, 16):
            a, b = texts[i], texts[i + 1]
            starts = {0: byte_starts(a), 1: byte_starts(b)}
            single = tok.encode(a)
            pair = tok.encode(a, b)
            # Hugging Face's offsets count characters; a pair's point into a
            # or b, as sequence_ids tells (None: a template token).
            pair_offsets = [[starts[seq][s], starts[seq][e]] if seq is not None else [0, 0]
                            for seq, (s, e) in zip(pair.sequence_ids, pair.offsets)]
            f.write(json.dumps({
                "a": a, "b": b,
                "ids": single.ids, "type_ids": single.type_ids,
                "offsets": [[starts[0][s], starts[0][e]] for s, e in single.offsets],
                "pair_ids": pair.ids, "pair_type_ids": pair.type_ids,
                "pair_offsets": pair_offsets,
            }, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out_dir = sys.argv[1]
    args = sys.argv[2:]
    with_unigram = "unigram" in args
    pairs = [a.split("=", 1) for a in args if a != "unigram"]
    unigram_names = ["unigram_spm", "unigram_spm_bytes", "unigram_hf"] if with_unigram else []
    os.makedirs(out_dir, exist_ok=True)
    for name in (["corpus.jsonl", "bpe_prefix.ids"] + [f"{n}.ids" for n, _ in pairs] +
                 [f"{n}.{ext}" for n in unigram_names for ext in ("ids", "json", "examples.jsonl")]):
        try:
            os.remove(os.path.join(out_dir, name))
        except FileNotFoundError:
            pass
    try:
        from tokenizers import Tokenizer
    except ImportError:
        print("skipped: Python package tokenizers is missing (scripts/setup installs it)")
        sys.exit(SKIP)
    if with_unigram:
        try:
            import sentencepiece  # noqa: F401
        except ImportError:
            print("skipped: Python package sentencepiece is missing (scripts/setup installs it)")
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
    if with_unigram:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import train_unigram

        t1 = time.time()
        for name, path in train_unigram.train_all(texts, out_dir):
            pairs.append([name, path])
        print(f"unigram training: {time.time() - t1:.1f} s")
    for name, path in pairs:
        tok = Tokenizer.from_file(path)
        tok.no_padding()
        encodings = tok.encode_batch(texts)
        tmp = os.path.join(out_dir, f"{name}.ids.tmp")
        with open(tmp, "w") as f:
            for e in encodings:
                f.write(" ".join(map(str, e.ids)) + "\n")
        os.replace(tmp, os.path.join(out_dir, f"{name}.ids"))
        if name in unigram_names:
            write_examples(tok, texts, os.path.join(out_dir, f"{name}.examples.jsonl"))
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
