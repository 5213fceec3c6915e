#!/usr/bin/env python3
"""all-MiniLM-L6-v2 sentence embeddings: nlpflow fp32 and int8 against ONNX
Runtime (fp32, and its own int8: quantize_dynamic) and sentence-transformers,
batch 1/8/32/64 x sequence 16/64/128.

The runtimes are interleaved shape by shape (nlpflow, ONNX Runtime fp32, ONNX
Runtime int8, sentence-transformers for one shape, then the next shape), so a
neighbour's load on the shared machine lands on all of them alike, and the
ratios of one shape are measured within the same minute.

Writes bench/results/runtimes.md and bench/results/runtimes.json with the
command, the machine's measured fp32 peak and, per runtime and shape:
sentences/s and GFLOP/s (wall clock), the same per CPU-second of the process,
and the fraction of the peak. FLOPs per token (shared/FACTS.md):
L * (2 * (4 d^2 + 2 d d_ff) + 4 s d), L = 6, d = 384, d_ff = 1536.

Why per CPU-second: the machine is shared (2 cores, other builds running), so
wall-clock rates measure the neighbours as much as the code. With one thread
per runtime, process CPU time is the time the runtime actually had a core;
the peak (bench/fma_peak.cc) is measured the same way.

Every runtime gets the same inputs (random ids, no padding, attention mask all
1s), the same thread count (--threads, default 1: LibTorch + OpenBLAS for
nlpflow and sentence-transformers, intra_op_num_threads for ONNX Runtime) and
does the same work: encoder, mean pooling, L2 normalization.

  .venv/bin/python bench/compare_runtimes.py --build build [--min-seconds 1]
"""

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "nodes", "infer"))
from export_torchscript import SentenceEmbedding  # noqa: E402

BATCHES = [1, 8, 32, 64]
SEQS = [16, 64, 128]


def flop_per_token(seq: int) -> float:
    return 6 * (2 * (4.0 * 384 * 384 + 2.0 * 384 * 1536) + 4.0 * seq * 384)


def inputs(batch: int, seq: int):
    rng = np.random.default_rng(7)
    ids = rng.integers(1000, 30000, size=(batch, seq), dtype=np.int64)
    return ids, np.ones_like(ids), np.zeros_like(ids)


def timed(fn, min_seconds: float):
    fn()  # warm-up
    n, wall0, cpu0 = 0, time.perf_counter(), time.process_time()
    while n < 3 or time.perf_counter() - wall0 < min_seconds:
        fn()
        n += 1
    return (time.perf_counter() - wall0) / n, (time.process_time() - cpu0) / n


def cpu_description() -> dict:
    """The CPU of the run, as /proc/cpuinfo says: every figure is tied to it."""
    info = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            if ":" not in line:
                if info:
                    break
                continue
            key, value = (x.strip() for x in line.split(":", 1))
            info.setdefault(key, value)
    flags = info.get("flags", "").split()
    wanted = ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni",
              "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16"]
    return {"model_name": info.get("model name", platform.processor()),
            "family": int(info.get("cpu family", 0)), "model": int(info.get("model", 0)),
            "instruction_sets": [f for f in wanted if f in flags],
            "cores": os.cpu_count()}


def measure_peak(cpu: dict) -> tuple:
    """The fp32 FMA peak of one core (bench/fma_peak.cc), with AVX2 and, where the
    CPU has it, AVX-512; the larger, and which ISA gave it."""
    best, isa = 0.0, ""
    variants = [("avx2", ["-mavx2", "-mfma"])]
    if "avx512f" in cpu["instruction_sets"]:
        variants.append(("avx512", ["-mavx512f", "-mfma"]))
    for name, flags in variants:
        exe = os.path.join(tempfile.mkdtemp(), "fma_peak")
        subprocess.run(["c++", "-O2", *flags, os.path.join(HERE, "fma_peak.cc"), "-o", exe],
                       check=True)
        for _ in range(3):
            out = subprocess.run([exe, "300000000"], check=True, capture_output=True,
                                 text=True).stdout
            rate = float(re.search(r"([\d.]+) GFLOP per CPU-s", out).group(1))
            if rate > best:
                best, isa = rate, name
    return best, isa


def run_nlpflow(args, shapes):
    exe = os.path.join(args.build, "bench", "embedding_model_bench")
    cmd = [exe, "--model", args.model, "--threads", str(args.threads), "--linear",
           "auto,int8", "--min-seconds", str(args.min_seconds), "--shapes",
           ",".join(f"{b}x{s}" for b, s in shapes)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    out = done.stdout
    # The load log names what the encoder program runs (oneDNN implementation
    # and ISA, the attention kernel).
    program = re.search(r"encoder program: (.*?); CPU", done.stderr + done.stdout)
    if program:
        run_nlpflow.program = program.group(1)
    rows = []
    for line in out.splitlines():
        f = line.split()
        if len(f) == 9 and f[1].isdigit():
            rows.append({"runtime": "nlpflow int8" if f[0] == "int8" else f"nlpflow fp32 ({f[0]})",
                         "batch": int(f[1]), "seq": int(f[2]),
                         "wall_s": float(f[3]) / 1e3, "cpu_s": float(f[4]) / 1e3})
    return rows


def export_onnx(model_dir: str, path: str) -> None:
    """The ONNX export every ONNX Runtime figure uses (also bench/ort_profile.py):
    encoder, mean pooling and L2 normalization, opset 14, dynamic batch and seq."""
    from transformers import AutoModel
    module = SentenceEmbedding(AutoModel.from_pretrained(model_dir, torchscript=True).eval(),
                               normalize=True).eval()
    ids, mask, types = (torch.from_numpy(x) for x in inputs(2, 16))
    with torch.no_grad():
        torch.onnx.export(module, (ids, mask, types), path, opset_version=14,
                          input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=["sentence_embedding"],
                          dynamic_axes={n: {0: "batch", 1: "seq"} for n in
                                        ("input_ids", "attention_mask", "token_type_ids")})


def ort_session_options(threads: int):
    """Graph optimizations on, `threads` intra-op threads, sequential."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return so


def onnxruntime_sessions(args, tmp):
    """ONNX Runtime fp32 and its own dynamic int8 (quantize_dynamic, QInt8
    weights per channel as ONNX Runtime recommends for transformers on x86)."""
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic
    path = os.path.join(tmp, "minilm.onnx")
    export_onnx(args.model, path)
    int8_path = os.path.join(tmp, "minilm.int8.onnx")
    quantize_dynamic(path, int8_path, weight_type=QuantType.QInt8, per_channel=True)
    sessions = {}
    for name, p in [("fp32", path), ("int8 (quantize_dynamic)", int8_path)]:
        sessions[f"onnxruntime {ort.__version__} {name}"] = ort.InferenceSession(
            p, ort_session_options(args.threads), providers=["CPUExecutionProvider"])
    return sessions


def run_onnxruntime(args, sessions, b, s):
    rows = []
    ids, mask, types = inputs(b, s)
    feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    for name, session in sessions.items():
        wall, cpu = timed(lambda: session.run(None, feed), args.min_seconds)
        rows.append({"runtime": name, "batch": b, "seq": s, "wall_s": wall, "cpu_s": cpu})
    return rows


def run_sentence_transformers(args, model, shapes):
    import sentence_transformers
    rows = []
    for b, s in shapes:
        ids, mask, types = (torch.from_numpy(x) for x in inputs(b, s))
        features = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}

        def step():
            with torch.inference_mode():
                model(dict(features))["sentence_embedding"]
        wall, cpu = timed(step, args.min_seconds)
        rows.append({"runtime": f"sentence-transformers {sentence_transformers.__version__} "
                                f"(torch {torch.__version__})", "batch": b, "seq": s,
                     "wall_s": wall, "cpu_s": cpu})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default="build")
    parser.add_argument("--model", default=os.path.join(ROOT, "models", "all-MiniLM-L6-v2"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--min-seconds", type=float, default=1.0)
    parser.add_argument("--out", default=os.path.join(HERE, "results", "runtimes"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
    shapes = [(b, s) for b in BATCHES for s in SEQS]

    cpu = cpu_description()
    peak, peak_isa = measure_peak(cpu)
    print(f"CPU {cpu}; fp32 FMA peak: {peak:.1f} GFLOP per CPU-s (one core, {peak_isa})",
          flush=True)
    from sentence_transformers import SentenceTransformer
    st_model = SentenceTransformer(args.model, device="cpu").eval()
    rows = []
    run_nlpflow.program = ""
    with tempfile.TemporaryDirectory() as tmp:
        sessions = onnxruntime_sessions(args, tmp)
        for b, s in shapes:
            print(f"shape {b} x {s}", flush=True)
            rows += run_nlpflow(args, [(b, s)])
            rows += run_onnxruntime(args, sessions, b, s)
            rows += run_sentence_transformers(args, st_model, [(b, s)])
    for r in rows:
        flop = r["batch"] * r["seq"] * flop_per_token(r["seq"])
        r["sentences_per_s"] = r["batch"] / r["wall_s"]
        r["sentences_per_cpu_s"] = r["batch"] / r["cpu_s"]
        r["gflop_per_s"] = flop / r["wall_s"] / 1e9
        r["gflop_per_cpu_s"] = flop / r["cpu_s"] / 1e9
        r["fraction_of_peak"] = r["gflop_per_cpu_s"] / peak

    def find(runtime_prefix, b, s):
        return next(r for r in rows if r["runtime"].startswith(runtime_prefix)
                    and r["batch"] == b and r["seq"] == s)
    ratios = []
    for b, s in shapes:
        fp32, int8 = find("nlpflow fp32", b, s), find("nlpflow int8", b, s)
        ort_row = next(r for r in rows if r["runtime"].startswith("onnxruntime")
                       and r["runtime"].endswith("fp32") and r["batch"] == b and r["seq"] == s)
        ort_int8 = next(
            r for r in rows if r["runtime"].startswith("onnxruntime") and "int8" in r["runtime"]
            and r["batch"] == b and r["seq"] == s)
        st = find("sentence-transformers", b, s)
        ratios.append({"batch": b, "seq": s,
                       "fp32_over_onnxruntime": ort_row["cpu_s"] / fp32["cpu_s"],
                       "int8_over_fp32": fp32["cpu_s"] / int8["cpu_s"],
                       "int8_over_onnxruntime_int8": ort_int8["cpu_s"] / int8["cpu_s"],
                       "fp32_over_sentence_transformers": st["cpu_s"] / fp32["cpu_s"]})
    command = " ".join(shlex.quote(a) for a in [".venv/bin/python", "bench/compare_runtimes.py"]
                       + sys.argv[1:])
    doc = {"command": command, "date": datetime.datetime.utcnow().isoformat() + "Z",
           "machine": {"cpu": cpu["model_name"], "cpu_family": cpu["family"],
                       "cpu_model": cpu["model"], "instruction_sets": cpu["instruction_sets"],
                       "shared": True,
                       "load_average": os.getloadavg(), "threads": args.threads,
                       "fp32_peak_gflop_per_cpu_s": peak, "fp32_peak_isa": peak_isa,
                       "nlpflow_program": run_nlpflow.program},
           "rows": rows, "ratios": ratios}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out + ".json", "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    with open(args.out + ".md", "w") as f:
        f.write(f"# all-MiniLM-L6-v2 embeddings: runtimes compared\n\n`{command}`\n\n"
                f"{doc['date']}, CPU {cpu['model_name']} (family {cpu['family']} model "
                f"{cpu['model']}; {' '.join(cpu['instruction_sets'])}), {args.threads} "
                f"thread(s), load average "
                f"{' '.join(f'{x:.1f}' for x in doc['machine']['load_average'])} (machine shared "
                f"with other engineers' builds and tests; runtimes interleaved shape by shape). "
                f"nlpflow fp32 runs {run_nlpflow.program}. "
                f"fp32 peak of one core, measured (bench/fma_peak.cc, {peak_isa} FMA): "
                f"{peak:.1f} GFLOP per CPU-second. \"per CPU-s\": per second of the process's "
                f"CPU time; fraction of peak uses it.\n\n")
        f.write("| runtime | batch | seq | sentences/s | sentences per CPU-s | GFLOP/s | "
                "GFLOP per CPU-s | fraction of peak |\n|---|---|---|---|---|---|---|---|\n")
        for r in rows:
            f.write(f"| {r['runtime']} | {r['batch']} | {r['seq']} | {r['sentences_per_s']:.1f} | "
                    f"{r['sentences_per_cpu_s']:.1f} | {r['gflop_per_s']:.1f} | "
                    f"{r['gflop_per_cpu_s']:.1f} | {100 * r['fraction_of_peak']:.0f}% |\n")
        f.write("\nRatios of CPU time per batch (speed-ups: > 1 means the first is faster):\n\n"
                "| batch | seq | nlpflow fp32 vs ONNX Runtime fp32 | nlpflow int8 vs nlpflow fp32 | "
                "nlpflow int8 vs ONNX Runtime int8 | nlpflow fp32 vs sentence-transformers |\n"
                "|---|---|---|---|---|---|\n")
        for r in ratios:
            f.write(f"| {r['batch']} | {r['seq']} | {r['fp32_over_onnxruntime']:.2f}x | "
                    f"{r['int8_over_fp32']:.2f}x | {r['int8_over_onnxruntime_int8']:.2f}x | "
                    f"{r['fp32_over_sentence_transformers']:.2f}x |\n")
    print(open(args.out + ".md").read())
    return 0


if __name__ == "__main__":
    sys.exit(main())
