#!/usr/bin/env python3
"""`nlpflow tokenize` against Hugging Face, as a user would compare them.

  tokenize_command_parity.py NLPFLOW_BINARY NAME=TOKENIZER_JSON [...]

For each tokenizer: the single-line texts of the parity corpus go through
`nlpflow tokenize --tokenizer PATH` on stdin; every output line's ids must
equal Tokenizer.from_file(PATH).encode(text).ids (padding, truncation and
special tokens from the file). Then an invalid UTF-8 line must give an error
object in place, the other lines their ids, and exit code 1. Prints the first
difference. Exits 77 (ctest: skipped) without `tokenizers` or the e-mails.
"""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures"))


def main():
    binary = sys.argv[1]
    pairs = [a.split("=", 1) for a in sys.argv[2:]]
    try:
        from tokenizers import Tokenizer
    except ImportError:
        print("skipped: Python package tokenizers is missing")
        sys.exit(77)
    import make_tokenizer_corpus

    if not os.path.isdir(make_tokenizer_corpus.DEFAULT_CORPUS_DIR):
        print("skipped: no corpus (scripts/setup)")
        sys.exit(77)
    texts = [t for t in make_tokenizer_corpus.build_corpus() if "\n" not in t and "\r" not in t]
    stdin = "".join(t + "\n" for t in texts).encode("utf-8")
    failed = False
    for name, path in pairs:
        want = [e.ids for e in Tokenizer.from_file(path).encode_batch(texts)]
        run = subprocess.run([binary, "tokenize", "--tokenizer", path], input=stdin,
                             capture_output=True, check=False)
        if run.returncode != 0:
            print(f"{name}: exit code {run.returncode}: {run.stderr.decode(errors='replace')}")
            failed = True
            continue
        got = [json.loads(line)["ids"] for line in run.stdout.decode("utf-8").splitlines()]
        if len(got) != len(texts):
            print(f"{name}: {len(got)} output lines for {len(texts)} input lines")
            failed = True
            continue
        same = sum(g == w for g, w in zip(got, want))
        print(f"{name}: {same}/{len(texts)} lines identical")
        if same != len(texts):
            i = next(i for i, (g, w) in enumerate(zip(got, want)) if g != w)
            print(f"  first difference, line {i}: {json.dumps(texts[i], ensure_ascii=False)}\n"
                  f"  Hugging Face: {want[i]}\n  nlpflow:      {got[i]}")
            failed = True

    name, path = pairs[0]
    run = subprocess.run([binary, "tokenize", "--tokenizer", path],
                         input=b"ok\nbad \xff byte\r\nok\n", capture_output=True, check=False)
    lines = run.stdout.decode("utf-8").splitlines()
    ok_ids = Tokenizer.from_file(path).encode("ok").ids
    if (run.returncode != 1 or len(lines) != 3 or json.loads(lines[0])["ids"] != ok_ids
            or json.loads(lines[1]) != {"error": "invalid UTF-8 at byte 4"}
            or json.loads(lines[2])["ids"] != ok_ids):
        print(f"invalid UTF-8 line: exit {run.returncode}, output {lines}")
        failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
