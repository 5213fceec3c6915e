#!/usr/bin/env python3
"""The compression report: builds every variant with the nlpflow commands,
evaluates each with `nlpflow eval`, and writes bench/results/compression.md,
compression.json and compression.png (spam F1 against throughput).

Rows: teacher (all-MiniLM-L6-v2, fp32); distilled (3 of 6 layers); FFN
pruned 30% and 50% (structured, with a short recovery distillation); dynamic
int8; static int8 (calibrated); distilled + int8 (dynamic and static).

Every command line run is printed and recorded in the JSON. Run from the
repository root after scripts/setup and a build:
    /usr/bin/python3 bench/compression_report.py [--quick]
--quick shrinks every set (a smoke test of the script, not a measurement).
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


def run(args, log):
    print("+ " + " ".join(shlex.quote(a) for a in args), file=sys.stderr, flush=True)
    start = time.time()
    p = subprocess.run(args, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(args)}")
    out = json.loads(p.stdout.strip().splitlines()[-1])
    log.append({"command": " ".join(shlex.quote(a) for a in args),
                "seconds": round(time.time() - start, 1)})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "compression"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--render", help="only rewrite .md/.png from this report .json")
    a = ap.parse_args()
    if a.render:
        with open(a.render) as f:
            j = json.load(f)
        stem = a.render[: -len(".json")]
        write_markdown(stem + ".md", j["results"], j["builds"], j["commands"], j["sizes"],
                       j["max_length"], j.get("written"))
        plot(stem + ".png", j["results"])
        print(open(stem + ".md").read())
        return
    q = a.quick
    # distill: e-mails (all that the split leaves: about 5,350), each giving
    # up to `windows` texts (compression_data.py --distill-windows).
    sizes = dict(distill=200 if q else 8000, train=150 if q else 400, test=100 if q else 300,
                 windows=1 if q else 3)
    data = os.path.join(a.work, "data")
    models = os.path.join(a.work, "models")
    log = []
    subprocess.run([sys.executable, os.path.join(ROOT, "bench", "compression_data.py"), data,
                    "--distill", str(sizes["distill"]), "--train", str(sizes["train"]),
                    "--test", str(sizes["test"]), "--distill-windows", str(sizes["windows"])],
                   check=True, stdout=sys.stderr)
    with open(os.path.join(data, "distill.jsonl")) as f:
        sizes["distill_texts"] = sum(1 for _ in f)
    common = ["-c", CONFIG, "--set", f"tokenizer.max_length={a.max_length}",
              "--set", "logging.level=warn"]
    # Training: both cores for LibTorch. Evaluation: one model instance on one
    # thread, the same for every variant.
    train = common + ["--set", "model.threads=2", "--set", "model.instances=1"]
    evalset = common + ["--set", "model.threads=1", "--set", "model.instances=1"]
    distill_texts = os.path.join(data, "distill.jsonl")
    epochs = "1" if q else "3"

    def path(name):
        return os.path.join(models, name)

    builds = {}
    builds["distilled"] = run([NLPFLOW, "distill", *train, "--texts", distill_texts,
                               "--out", path("distilled"), "--layers", "3", "--epochs", epochs,
                               "--lr", "5e-4", "--token-loss", "1",
                               "--checkpoints", path("distilled-checkpoints")],
                              log)
    for pct in (30, 50):
        builds[f"pruned-ffn-{pct}"] = run(
            [NLPFLOW, "prune", *train, "--texts", distill_texts, "--out", path(f"pruned-ffn-{pct}"),
             "--method", "ffn", "--amount", str(pct / 100), "--recover-epochs", "1",
             "--max-texts", "200" if q else "400", "--lr", "2e-4"], log)
    builds["l1-30"] = run([NLPFLOW, "prune", *train, "--out", path("l1-30"), "--method", "l1",
                           "--amount", "0.3"], log)
    builds["int8-dynamic"] = run([NLPFLOW, "quantize", *train, "--mode", "dynamic",
                                  "--out", path("int8-dynamic")], log)
    static = ["--mode", "static", "--activation-bits", "7", "--row-bound", "2"]
    builds["int8-static"] = run([NLPFLOW, "quantize", *train, *static,
                                 "--texts", distill_texts, "--calibration-texts", "256",
                                 "--out", path("int8-static")], log)
    student = ["--set", "model.path=" + path("distilled")]
    builds["distilled-int8-dynamic"] = run([NLPFLOW, "quantize", *train, *student, "--mode",
                                            "dynamic", "--out", path("distilled-int8-dynamic")],
                                           log)
    builds["distilled-int8-static"] = run([NLPFLOW, "quantize", *train, *student, *static,
                                           "--texts", distill_texts,
                                           "--calibration-texts", "256",
                                           "--out", path("distilled-int8-static")], log)

    rows = [("teacher (fp32)", TEACHER), ("distilled 3/6 layers", path("distilled")),
            ("pruned FFN 30%", path("pruned-ffn-30")), ("pruned FFN 50%", path("pruned-ffn-50")),
            ("L1 unstructured 30%", path("l1-30")),
            ("dynamic int8", path("int8-dynamic")), ("static int8", path("int8-static")),
            ("distilled + dynamic int8", path("distilled-int8-dynamic")),
            ("distilled + static int8", path("distilled-int8-static"))]
    results = []
    for name, folder in rows:
        r = run([NLPFLOW, "eval", *evalset, "--variant", folder,
                 "--train", os.path.join(data, "train.jsonl"),
                 "--test", os.path.join(data, "test.jsonl"), "--rate", "5" if q else "20"], log)
        r["name"] = name
        results.append(r)
    base = results[0]
    for r in results:
        r["speedup"] = r["throughput"]["records_per_s"] / base["throughput"]["records_per_s"]
        r["f1_delta_points"] = 100 * (r["spam"]["f1"] - base["spam"]["f1"])

    written = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    os.makedirs(a.out, exist_ok=True)
    stem = os.path.join(a.out, "compression" + ("-quick" if q else ""))
    with open(stem + ".json", "w") as f:
        json.dump({"written": written, "sizes": sizes, "max_length": a.max_length, "builds": builds,
                   "results": results, "commands": log}, f, indent=1)
    write_markdown(stem + ".md", results, builds, log, sizes, a.max_length, written)
    plot(stem + ".png", results)
    print(open(stem + ".md").read())


def write_markdown(path, results, builds, log, sizes, max_length, written=None):
    # The time of the measurement (kept in the JSON), not of a --render.
    written = written or time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())
    by = {r["name"]: r for r in results}
    lines = ["# Compression variants of all-MiniLM-L6-v2", "",
             f"Written by `bench/compression_report.py` ({written}). "
             f"SpamAssassin texts (subject + start of body), truncated to {max_length} tokens; "
             f"{sizes.get('distill_texts', sizes['distill'])} unlabeled texts for distillation "
             f"(the e-mails left after the two labeled splits, up to {sizes.get('windows', 1)} "
             "windows of 600 characters each; recovery and calibration use the first 400 and 256, "
             "one per e-mail), "
             f"{sizes['train']} to train the spam head on the teacher's embeddings, "
             f"{sizes['test']} held out for every number below. Throughput: all test texts "
             "through the embed graph (decode, tokenize, batch, infer, encode) at once, one model "
             "instance on one thread; p99: the same texts paced at the `paced` rate. The machine "
             "has 2 cores shared with other work: compare ratios within this run.", "",
             "| variant | precision | cosine to teacher (mean / p05) | spam acc | spam F1 | ΔF1 (pts) "
             "| weights MB | texts/s | speed-up | p50 / p99 at load (ms) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        paced = r.get("paced", {})
        lines.append(
            f"| {r['name']} | {r['precision']} | {r['cosine_to_teacher']['mean']:.4f} / "
            f"{r['cosine_to_teacher']['p05']:.4f} | {r['spam']['accuracy']:.4f} | "
            f"{r['spam']['f1']:.4f} | {r['f1_delta_points']:+.2f} | "
            f"{r['weights_bytes'] / 1e6:.1f} | {r['throughput']['records_per_s']:.1f} | "
            f"{r['speedup']:.2f}x | {paced.get('p50_us', 0) / 1000:.1f} / "
            f"{paced.get('p99_us', 0) / 1000:.1f} |")
    lines += ["", "## Goals", ""]

    def goal(text, ok):
        lines.append(f"- {'MET' if ok else 'NOT MET'}: {text}")

    d = by["distilled + dynamic int8"]
    ds = by["distilled + static int8"]
    best = max((d, ds), key=lambda r: r["speedup"])
    goal(f"distilled + int8 >= 4x teacher throughput, F1 within 1 point, cosine >= 0.95: "
         f"dynamic {d['speedup']:.2f}x / {d['f1_delta_points']:+.2f} pts / cos {d['cosine_to_teacher']['mean']:.4f}; "
         f"static {ds['speedup']:.2f}x / {ds['f1_delta_points']:+.2f} pts / cos {ds['cosine_to_teacher']['mean']:.4f}",
         any(r["speedup"] >= 4 and abs(r["f1_delta_points"]) <= 1 and
             r["cosine_to_teacher"]["mean"] >= 0.95 for r in (d, ds)))
    p = by["pruned FFN 30%"]
    goal(f"FFN 30% structured >= 1.25x with F1 within 1 point: {p['speedup']:.2f}x, "
         f"{p['f1_delta_points']:+.2f} pts", p["speedup"] >= 1.25 and abs(p["f1_delta_points"]) <= 1)
    s, dy = by["static int8"], by["dynamic int8"]
    goal(f"static int8 >= dynamic int8 in speed and accuracy: {s['throughput']['records_per_s']:.1f} vs "
         f"{dy['throughput']['records_per_s']:.1f} texts/s; F1 {s['spam']['f1']:.4f} vs {dy['spam']['f1']:.4f}; "
         f"cosine {s['cosine_to_teacher']['mean']:.4f} vs {dy['cosine_to_teacher']['mean']:.4f}",
         s["throughput"]["records_per_s"] >= dy["throughput"]["records_per_s"] and
         s["spam"]["f1"] >= dy["spam"]["f1"] and
         s["cosine_to_teacher"]["mean"] >= dy["cosine_to_teacher"]["mean"])
    notes = os.path.join(ROOT, "bench", "compression_notes.md")
    if os.path.exists(notes):
        lines += ["", open(notes).read().rstrip()]
    lines += ["", "## Builds", ""]
    for name, b in builds.items():
        keep = {k: v for k, v in b.items() if k not in ("sites",)}
        lines.append(f"- {name}: `{json.dumps(keep)}`")
    lines += ["", "## Commands (as run)", "", "```"]
    lines += [f"{c['command']}   # {c['seconds']} s" for c in log]
    lines += ["```", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines).replace(ROOT + "/", ""))


def plot(path, results):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (apt-get install python3-matplotlib): no plot",
              file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(8, 5))
    for i, r in enumerate(results):
        x, y = r["throughput"]["records_per_s"], r["spam"]["f1"]
        ax.scatter([x], [y])
        ax.annotate(r["name"], (x, y), textcoords="offset points",
                    xytext=(4, 4 if i % 2 == 0 else -12), fontsize=8)
    ax.set_xlabel("throughput through the embed graph (texts/s, 1 instance, 1 thread)")
    ax.set_ylabel("spam F1 (held out; head trained on the teacher)")
    ax.set_title("all-MiniLM-L6-v2 compression variants: accuracy vs throughput")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
