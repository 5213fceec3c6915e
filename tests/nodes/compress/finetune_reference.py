#!/usr/bin/env python3
"""transformers' view of a folder that `nlpflow finetune` wrote, for
tests/nodes/compress/finetune_parity_test.cc.

Usage: finetune_reference.py MODEL_DIR TEXTS_JSON OUT_JSON MAX_LENGTH

Loads MODEL_DIR with AutoModelForSequenceClassification (eval mode, fp32)
and AutoTokenizer (the folder's tokenizer.json), encodes every text of
TEXTS_JSON (a JSON list of strings) one at a time, truncated to MAX_LENGTH
tokens, and writes OUT_JSON:
  {"architecture", "id2label", "num_labels", "missing", "unexpected",
   "ids": [[...] per text], "logits": [[...] per text]}
"missing"/"unexpected" are the weight names from_pretrained did not find in
model.safetensors / found but did not use: both empty for a complete
BertForSequenceClassification checkpoint.
Run with the venv whose torch is Debian's 1.13 (.venv/bin/python).
"""
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from transformers import AutoModelForSequenceClassification, AutoTokenizer  # noqa: E402


def main() -> int:
    model_dir, texts_path, out_path, max_length = sys.argv[1:5]
    torch.set_num_threads(1)
    with open(texts_path, encoding="utf-8") as f:
        texts = json.load(f)
    model, info = AutoModelForSequenceClassification.from_pretrained(
        model_dir, output_loading_info=True)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    ids, logits = [], []
    with torch.no_grad():
        for text in texts:
            enc = tokenizer(text, truncation=True, max_length=int(max_length),
                            return_tensors="pt")
            ids.append(enc["input_ids"][0].tolist())
            logits.append(model(**enc).logits[0].tolist())
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump({"architecture": type(model).__name__,
                   "id2label": {str(k): v for k, v in model.config.id2label.items()},
                   "num_labels": model.config.num_labels,
                   "missing": sorted(info["missing_keys"]),
                   "unexpected": sorted(info["unexpected_keys"]),
                   "ids": ids, "logits": logits}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
