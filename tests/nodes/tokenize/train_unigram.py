#!/usr/bin/env python3
"""Trains the Unigram tokenizer.json files of the Unigram parity test.

  train_unigram.py OUT_DIR

(or train_all(texts, out_dir) from tokenizer_parity_reference.py) writes,
from every 8th text of the parity corpus (tests/fixtures/
make_tokenizer_corpus.py; the parity run also sees texts the models never
saw):
  OUT_DIR/unigram_spm.json   trained by the `sentencepiece` package
      (model_type unigram, normalization nmt_nfkc, byte_fallback on, XLM-R's
      special tokens) and converted by transformers' XLMRobertaTokenizerFast
      from the .model file: a Precompiled normalizer (then Strip right and
      Replace " {2,}"), Metaspace, a Unigram model whose vocabulary has the
      <0xXX> byte pieces but byte_fallback off (the converter drops it), the
      <mask> added token (normalized, lstrip) and XLM-R's TemplateProcessing
      pair template <s> A </s> </s> B </s>;
  OUT_DIR/unigram_spm_bytes.json   the same with model.byte_fallback set
      (the converter drops it; Llama-style files keep it), so characters
      the vocabulary lacks become <0xXX> byte pieces;
  OUT_DIR/unigram_hf.json    trained by `tokenizers`' own UnigramTrainer:
      NFKC, Replace (\\s+ and ``), Lowercase, Strip, then WhitespaceSplit and
      Metaspace (prepend_scheme "first"), unk only (no byte fallback) and a
      BERT-like TemplateProcessing, truncation to 128.
The parity test needs no determinism: its reference ids come from the files
it trains in the same run.
Exits 77 when a package or the e-mails are missing.
"""

import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures"))

SKIP = 77
SPM_VOCAB = 6000
HF_VOCAB = 4000


def train_sentencepiece(texts, out_path, vocab_size=SPM_VOCAB):
    import sentencepiece as spm
    from transformers import XLMRobertaTokenizerFast

    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, "spm")
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(t for t in texts if t.strip()),
            model_prefix=prefix,
            model_type="unigram",
            vocab_size=vocab_size,
            normalization_rule_name="nmt_nfkc",
            byte_fallback=True,
            character_coverage=0.995,
            num_threads=1,
            input_sentence_size=0,
            max_sentence_length=1 << 16,
            # XLM-R's ids: <s>=0 <pad>=1 </s>=2 <unk>=3.
            bos_id=0, pad_id=1, eos_id=2, unk_id=3,
            minloglevel=2,
        )
        tok = XLMRobertaTokenizerFast(vocab_file=prefix + ".model", model_max_length=512)
        tok.backend_tokenizer.save(out_path)


def train_tokenizers(texts, out_path):
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Sequence([
        normalizers.NFKC(),
        normalizers.Replace(Regex(r"\s+"), " "),
        normalizers.Replace("``", '"'),
        normalizers.Lowercase(),
        normalizers.Strip(),
    ])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(),
        pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first"),
    ])
    trainer = trainers.UnigramTrainer(
        vocab_size=HF_VOCAB,
        special_tokens=["[CLS]", "[SEP]", "[UNK]", "[PAD]"],
        unk_token="[UNK]",
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    tok.enable_truncation(128)
    tok.save(out_path)


def train_all(texts, out_dir):
    """Trains on texts[::8]; returns [(name, path)] of the files written."""
    # Every 8th text (4,000): enough for a vocabulary that covers the e-mails
    # and leaves unknown characters in the rest, and training stays well
    # under a minute of CI time.
    training = texts[::8]
    spm_path = os.path.join(out_dir, "unigram_spm.json")
    t0 = time.time()
    train_sentencepiece(training, spm_path)
    t1 = time.time()
    with open(spm_path, encoding="utf-8") as f:
        spec = json.load(f)
    spec["model"]["byte_fallback"] = True
    bytes_path = os.path.join(out_dir, "unigram_spm_bytes.json")
    with open(bytes_path, "w", encoding="utf-8") as f:
        json.dump(spec, f, ensure_ascii=False)
    hf_path = os.path.join(out_dir, "unigram_hf.json")
    train_tokenizers(training, hf_path)
    print(f"unigram training: sentencepiece {t1 - t0:.1f} s, tokenizers {time.time() - t1:.1f} s")
    return [("unigram_spm", spm_path), ("unigram_spm_bytes", bytes_path), ("unigram_hf", hf_path)]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    try:
        import sentencepiece  # noqa: F401
        import tokenizers  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as e:
        print(f"skipped: {e.name} is missing (scripts/setup installs it)")
        sys.exit(SKIP)
    import make_tokenizer_corpus

    if not os.path.isdir(make_tokenizer_corpus.DEFAULT_CORPUS_DIR):
        print(f"skipped: {make_tokenizer_corpus.DEFAULT_CORPUS_DIR} is missing (scripts/setup)")
        sys.exit(SKIP)
    for name, path in train_all(make_tokenizer_corpus.build_corpus(), out_dir):
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
