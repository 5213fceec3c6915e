#!/usr/bin/env python3
"""Exports a Hugging Face encoder folder to a TorchScript file that nlpflow's
TorchScriptModel (nodes/infer/torchscript_model.h) loads.

The module's forward takes (input_ids, attention_mask[, token_type_ids]),
int64 tensors of shape [batch, seq_len], right-padded, and returns one float
tensor of shape [batch, dim]: here the sentence embedding (mean pooling over
the real tokens, then L2 normalization, as sentence-transformers'
all-MiniLM-L6-v2 does). Any module with that signature and return works: write
your own wrapper class in place of SentenceEmbedding below for another
architecture or head.

Use the same torch as nlpflow's LibTorch (Debian's 1.13: the .venv that
scripts/setup makes):
  .venv/bin/python nodes/infer/export_torchscript.py MODEL_DIR OUT.pt [--no-normalize]

Tracing records the ops for one example input; the wrapper has no
data-dependent Python control flow, so the traced graph serves any batch size
and length up to the model's max_position_embeddings.
"""

import argparse
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from transformers import AutoModel  # noqa: E402


class SentenceEmbedding(torch.nn.Module):
    def __init__(self, encoder: torch.nn.Module, normalize: bool):
        super().__init__()
        self.encoder = encoder
        self.normalize = normalize

    def forward(self, input_ids, attention_mask, token_type_ids):
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids)[0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        if self.normalize:
            pooled = torch.nn.functional.normalize(pooled, p=2.0, dim=1)
        return pooled


def export(model_dir: str, out: str, normalize: bool = True) -> torch.jit.ScriptModule:
    encoder = AutoModel.from_pretrained(model_dir, torchscript=True).eval()
    module = SentenceEmbedding(encoder, normalize).eval()
    ids = torch.tensor([[2, 5, 6, 3], [2, 7, 3, 0]], dtype=torch.long)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.long)
    types = torch.zeros_like(ids)
    with torch.no_grad():
        traced = torch.jit.trace(module, (ids, mask, types))
    traced.save(out)
    return traced


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("out")
    parser.add_argument("--no-normalize", action="store_true")
    args = parser.parse_args()
    export(args.model_dir, args.out, normalize=not args.no_normalize)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
