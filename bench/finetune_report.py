#!/usr/bin/env python3
"""The fine-tuned spam classifier against the compression report's baseline.

Both read the compression report's SpamAssassin split (bench/compression_data.py:
the same seed and sizes, so the same 400 training and 300 held-out e-mails,
subject + start of body, truncated to 64 tokens):
  baseline    `nlpflow eval` on all-MiniLM-L6-v2: a logistic-regression head
              trained on the frozen model's sentence embeddings of the 400
              (the compression report's teacher row), measured again here;
  fine-tuned  `nlpflow finetune` from all-MiniLM-L6-v2 on the 400: every weight
              but the word embeddings trained, BertForSequenceClassification's
              head; the metrics of its last epoch on the 300 (no epoch chosen
              by them).
The fine-tuned folder is then loaded in transformers (tests/nodes/compress/
finetune_reference.py, .venv) and its predictions on the 300 recomputed there:
the report says whether they agree.

Writes bench/results/finetune.json and finetune.md; the folder goes to
build/spam-classifier (what configs/spam-classify.yaml serves). Run from the
repository root after scripts/setup and a build:
    /usr/bin/python3 bench/finetune_report.py [--epochs 3] [--quick]
--quick: 60 training texts, 1 epoch (a smoke test of the script, not a result).
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
NLPFLOW = os.path.join(ROOT, "build", "nlpflow")
CONFIG = os.path.join(ROOT, "configs", "minilm-embed.yaml")
TEACHER = os.path.join(ROOT, "models", "all-MiniLM-L6-v2")
PYTHON = os.path.join(ROOT, ".venv", "bin", "python")


def run(args, log):
    print("+ " + " ".join(shlex.quote(a) for a in args), file=sys.stderr, flush=True)
    start = time.time()
    p = subprocess.run(args, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(args)}")
    log.append({"command": " ".join(shlex.quote(a) for a in args),
                "seconds": round(time.time() - start, 1)})
    lines = p.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else None


def cpu():
    info = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key in ("model name", "cpu family", "model") and key not in info:
                info[key] = value
            if key == "flags" and "flags" not in info:
                flags = value.split()
                info["flags"] = [x for x in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16")
                                 if x in flags]
    info["cores"] = os.cpu_count()
    return info


def load_average():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def binary(truth, predicted):
    tp = sum(1 for t, p in zip(truth, predicted) if t == 1 and p == 1)
    fp = sum(1 for t, p in zip(truth, predicted) if t == 0 and p == 1)
    fn = sum(1 for t, p in zip(truth, predicted) if t == 1 and p == 0)
    tn = len(truth) - tp - fp - fn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"accuracy": (tp + tn) / len(truth), "precision": precision, "recall": recall,
            "f1": f1, "confusion": {"tp": tp, "fp": fp, "tn": tn, "fn": fn}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", default="1e-4")
    ap.add_argument("--batch-size", default="16")
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "finetune"))
    ap.add_argument("--model-out", default=os.path.join(ROOT, "build", "spam-classifier"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--render", help="only rewrite the .md from this report .json")
    a = ap.parse_args()
    if a.render:
        with open(a.render) as f:
            write_markdown(a.render[: -len(".json")] + ".md", json.load(f))
        return
    epochs = 1 if a.quick else a.epochs
    data = os.path.join(a.work, "data")
    log = []
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_before = load_average()
    # The compression report's sizes: the split depends on --test and --train only.
    subprocess.run([sys.executable, os.path.join(ROOT, "bench", "compression_data.py"), data,
                    "--distill", "0", "--train", "400", "--test", "300"],
                   check=True, stdout=sys.stderr)
    train, test = os.path.join(data, "train.jsonl"), os.path.join(data, "test.jsonl")
    common = ["-c", CONFIG, "--set", f"tokenizer.max_length={a.max_length}",
              "--set", "logging.level=warn", "--set", "model.instances=1"]
    max_texts = ["--max-texts", "60"] if a.quick else []

    baseline = run([NLPFLOW, "eval", *common, "--set", "model.threads=1", "--variant", TEACHER,
                    "--train", train, "--test", test, *max_texts], log)
    finetuned = run([NLPFLOW, "finetune", *common, "--set", "model.threads=2",
                     "--train", train, "--eval", test, "--out", a.model_out,
                     "--labels", "ham,spam", "--epochs", str(epochs), "--lr", a.lr,
                     "--batch-size", a.batch_size, *max_texts], log)

    # transformers' predictions of the same folder on the same texts.
    with open(test) as f:
        rows = [json.loads(line) for line in f][: 60 if a.quick else None]
    texts_path, ref_path = os.path.join(a.work, "texts.json"), os.path.join(a.work, "hf.json")
    with open(texts_path, "w") as f:
        json.dump([r["text"] for r in rows], f)
    run([PYTHON, os.path.join(ROOT, "tests", "nodes", "compress", "finetune_reference.py"),
         a.model_out, texts_path, ref_path, str(a.max_length)], log)
    with open(ref_path) as f:
        hf = json.load(f)
    hf_predicted = [max(range(len(l)), key=lambda i: l[i]) for l in hf["logits"]]
    transformers = binary([r["label"] for r in rows], hf_predicted)
    transformers["missing_weights"] = hf["missing"]
    transformers["unexpected_weights"] = hf["unexpected"]

    report = {
        "started": started,
        "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "quick": a.quick,
        "cpu": cpu(),
        "load_average": {"before": load_before, "after": load_average()},
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                 stdout=subprocess.PIPE, text=True).stdout.strip(),
        "split": {"train": finetuned["train_texts"], "test": finetuned["eval_texts"],
                  "max_length": a.max_length},
        "baseline": {"name": "logistic regression on frozen all-MiniLM-L6-v2 embeddings",
                     "spam": baseline["spam"], "train_texts": baseline["train_texts"],
                     "test_texts": baseline["test_texts"]},
        "finetuned": finetuned,
        "transformers_check": transformers,
        "commands": log,
    }
    os.makedirs(a.out, exist_ok=True)
    stem = os.path.join(a.out, "finetune" + ("-quick" if a.quick else ""))
    with open(stem + ".json", "w") as f:
        json.dump(report, f, indent=1)
    write_markdown(stem + ".md", report)
    print(open(stem + ".md").read())


def write_markdown(path, r):
    b, f, t = r["baseline"]["spam"], r["finetuned"], r["transformers_check"]
    spam_f1 = f["eval"]["f1"]["spam"]
    c = r["cpu"]
    lines = [
        "# Fine-tuned spam classifier (all-MiniLM-L6-v2) against the logistic-regression head",
        "",
        f"Written by `bench/finetune_report.py` (run {r['started']} to {r['finished'][-9:]}, "
        f"commit {r['commit']}"
        f"{', QUICK: not a result' if r['quick'] else ''}). The compression report's "
        f"SpamAssassin split: {r['split']['train']} e-mails to train, {r['split']['test']} held "
        f"out for every number below; subject + start of body, truncated to "
        f"{r['split']['max_length']} tokens.",
        "",
        f"CPU: {c.get('model name')} (family {c.get('cpu family')}, model {c.get('model')}; "
        f"{', '.join(c.get('flags', []))}), {c.get('cores')} cores shared with other work "
        f"(load average {r['load_average']['before'][0]:.1f} before, "
        f"{r['load_average']['after'][0]:.1f} after). Kept small on purpose on a shared "
        f"machine: {f['epochs']} epochs over {f['train_texts']} texts, batch {f['batch_size']}, "
        f"peak learning rate {f['learning_rate']:g}, {f['steps']} steps in "
        f"{f['seconds']:.0f} s on 2 threads (a time under that load, not a speed figure).",
        "",
        "| model | spam accuracy | spam F1 | ham F1 | macro F1 |",
        "|---|---|---|---|---|",
        f"| baseline: logistic regression on frozen MiniLM embeddings (`nlpflow eval`) | "
        f"{b['accuracy']:.4f} | {b['f1']:.4f} | | |",
        f"| fine-tuned MiniLM (`nlpflow finetune`, last epoch) | {f['eval']['accuracy']:.4f} | "
        f"{spam_f1:.4f} | {f['eval']['f1']['ham']:.4f} | {f['eval']['macro_f1']:.4f} |",
        "",
        f"ΔF1 (spam): {100 * (spam_f1 - b['f1']):+.2f} points; accuracy "
        f"{100 * (f['eval']['accuracy'] - b['accuracy']):+.2f} points.",
        "",
        f"The baseline's precision / recall: {b['precision']:.4f} / {b['recall']:.4f}; the "
        f"fine-tuned model's (from transformers' predictions below): {t['precision']:.4f} / "
        f"{t['recall']:.4f}, confusion {json.dumps(t['confusion'])}.",
        "",
        "## Per epoch (held-out texts; reported, not used to choose)",
        "",
        "| epoch | train loss | eval loss | accuracy | spam F1 |",
        "|---|---|---|---|---|",
    ]
    for i, (loss, e) in enumerate(zip(f["epoch_losses"], f["epoch_eval"]), 1):
        lines.append(f"| {i} | {loss:.4f} | {e['loss']:.4f} | {e['accuracy']:.4f} | "
                     f"{e['f1']['spam']:.4f} |")
    agree = abs(t["accuracy"] - f["eval"]["accuracy"]) < 1e-9 and abs(t["f1"] - spam_f1) < 1e-9
    lines += [
        "",
        "## The folder in transformers",
        "",
        f"`AutoModelForSequenceClassification` loaded the folder with "
        f"{len(t['missing_weights'])} missing and {len(t['unexpected_weights'])} unexpected "
        f"weights; its predictions on the held-out texts give accuracy {t['accuracy']:.4f}, "
        f"spam F1 {t['f1']:.4f}: {'the same as' if agree else 'DIFFERENT from'} nlpflow's.",
        "",
        "## Commands (as run)",
        "",
        "```",
    ]
    lines += [f"{x['command']}   # {x['seconds']} s" for x in r["commands"]]
    lines += ["```", ""]
    with open(path, "w") as out:
        out.write("\n".join(lines).replace(ROOT + "/", ""))


if __name__ == "__main__":
    main()
