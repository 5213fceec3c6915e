#!/usr/bin/env python3
"""Makes the data sets of the compression report from the SpamAssassin corpus
(.deps/spam-assassin, fetched by scripts/setup).

Each e-mail becomes one text: its Subject line and the start of its body
(headers dropped, whitespace collapsed, at most --chars characters). The
e-mails are shuffled with a fixed seed and split three ways, with no e-mail
in two splits:
  distill.jsonl  unlabeled training text for distillation / recovery
                 (labels are kept in the file but never read by distill):
                 first every e-mail's text as above, then, with
                 --distill-windows N > 1, the next N - 1 windows of --chars
                 characters of the same e-mails' bodies (more text from the
                 same e-mails; none from the other splits)
  train.jsonl    trains the spam head (logistic regression on the teacher)
  test.jsonl     held out: every metric of the report
Usage: compression_data.py OUT_DIR [--distill N] [--train N] [--test N]
                           [--distill-windows N]
"""
import argparse
import email
import json
import os
import random
import re

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
GROUPS = {"easy-ham-1": 0, "easy-ham-2": 0, "hard-ham-1": 0, "spam-1": 1, "spam-2": 1}


def to_text(raw, chars, window=0):
    msg = email.message_from_string(raw)
    subject = str(msg.get("Subject", "") or "")
    body = ""
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            if payload is None:
                continue
            body = payload.decode("utf-8", errors="replace")
            if part.get_content_subtype() == "html":
                body = re.sub(r"<[^>]*>", " ", body)
            break
    text = re.sub(r"\s+", " ", (subject + " . " + body)).strip()
    if window > 0:  # the body only, from window x chars on
        text = re.sub(r"\s+", " ", body).strip()
        start = window * chars
        text = text[start:start + chars]
        # Start at a word, as a text would: drop the cut first word.
        return text.split(" ", 1)[1] if " " in text else text
    return text[:chars]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--distill", type=int, default=3000)
    p.add_argument("--train", type=int, default=1500)
    p.add_argument("--test", type=int, default=1000)
    p.add_argument("--chars", type=int, default=600)
    p.add_argument("--distill-windows", type=int, default=1)
    a = p.parse_args()
    data = os.path.join(ROOT, ".deps", "spam-assassin", "data")
    rows = []
    for group, label in sorted(GROUPS.items()):
        folder = os.path.join(data, group)
        for name in sorted(os.listdir(folder)):
            if not name.endswith(".json"):
                continue
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                raw = json.load(f)["text"]
            text = to_text(raw, a.chars)
            if text:
                rows.append({"text": text, "label": label, "id": group + "/" + name[:-5],
                             "raw": raw})
    random.Random(6).shuffle(rows)
    os.makedirs(a.out, exist_ok=True)
    splits = {"test": rows[: a.test], "train": rows[a.test : a.test + a.train],
              "distill": rows[a.test + a.train : a.test + a.train + a.distill]}
    extra = []
    for w in range(1, a.distill_windows):
        for r in splits["distill"]:
            text = to_text(r["raw"], a.chars, window=w)
            if len(text) >= 40:  # a window with a few words at least
                extra.append({"text": text, "label": r["label"], "id": f"{r['id']}#{w}"})
    splits["distill"] = splits["distill"] + extra
    for name, part in splits.items():
        with open(os.path.join(a.out, name + ".jsonl"), "w", encoding="utf-8") as f:
            for r in part:
                r = {k: v for k, v in r.items() if k != "raw"}
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        spam = sum(r["label"] for r in part)
        print(f"{name}: {len(part)} texts, {spam} spam")


if __name__ == "__main__":
    main()
