#!/usr/bin/env python3
"""Where ONNX Runtime's time goes on all-MiniLM-L6-v2, per op type: the
counterpart of bench/encoder_profile.cc for bench/results/runtime_profile.md.

  .venv/bin/python bench/ort_profile.py [--shape 32x128] [--iterations 7]
                                        [--threads 1] [--peak 99.3]

Exports the model exactly as bench/compare_runtimes.py does (export_onnx:
encoder, mean pooling, L2 normalization; same session options: all graph
optimizations, 1 intra-op thread, sequential), then runs N unprofiled batches
(process CPU time per batch: the baseline) and N batches with
SessionOptions.enable_profiling. The profile's JSON has one "Node" event per
kernel run with its duration (wall clock, microseconds) and input shapes;
this script sums them per op type per batch and prints medians over the N
batches, the share of the median profiled run, that share of the profiled
run's median CPU time (an estimate of the op's CPU time), and for the GEMMs
(MatMul, FusedMatMul, Gemm: FLOPs from the recorded shapes, grouped by the
node's place in a layer) the GFLOP per estimated CPU-second as a fraction of
--peak (bench/fma_peak.cc's figure for one core).

Node times are wall clock (ONNX Runtime records no CPU time); the machine is
shared, so the shares and the per-CPU-second totals are what compare with
nlpflow's profile, not absolute milliseconds.
"""

import argparse
import collections
import json
import os
import re
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import compare_runtimes as cr  # noqa: E402


def prod(xs):
    p = 1
    for x in xs:
        p *= x
    return p


def shapes_of(args, key):
    return [list(d.values())[0] for d in args.get(key, [])]


def node_flops(op, inputs, outputs):
    """FLOPs (2 per multiply-add) of a GEMM node; 0 for other ops. The profile
    lists only the activation inputs (prepacked weights are not), so the
    output shape and the first input's last dimension (K) give the size."""
    if op in ("MatMul", "FusedMatMul", "Gemm", "FusedGemm") and inputs and outputs:
        return 2.0 * prod(outputs[0]) * inputs[0][-1]
    return 0.0


def group_key(event):
    """Op type; for the GEMMs also the node's place in a layer (query, key,
    intermediate, the attention's two products), the layer index dropped."""
    op = event["args"]["op_name"]
    if op not in ("MatMul", "FusedMatMul", "Gemm", "FusedGemm"):
        return op
    name = event["name"][:-len("_kernel_time")]
    name = re.sub(r"^.*/layer\.\d+/", "", name)
    if len(event["args"].get("input_type_shape", [])) >= 2:
        name += " (activations x activations)"
    return f"{op} {name}"


def main() -> int:
    import onnxruntime as ort
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.path.join(cr.ROOT, "models", "all-MiniLM-L6-v2"))
    parser.add_argument("--shape", default="32x128")
    parser.add_argument("--iterations", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--peak", type=float, default=99.3)
    args = parser.parse_args()
    batch, seq = (int(v) for v in args.shape.split("x"))
    ids, mask, types = cr.inputs(batch, seq)
    feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "minilm.onnx")
        cr.export_onnx(args.model, path)
        plain = ort.InferenceSession(path, cr.ort_session_options(args.threads),
                                     providers=["CPUExecutionProvider"])
        so = cr.ort_session_options(args.threads)
        so.enable_profiling = True
        so.profile_file_prefix = os.path.join(tmp, "ort_profile")
        profiled = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        plain.run(None, feed)
        profiled.run(None, feed)  # warm-up; its events are dropped below
        plain_cpu, plain_wall, prof_cpu = [], [], []
        for _ in range(args.iterations):
            c0, w0 = time.process_time(), time.perf_counter()
            plain.run(None, feed)
            plain_cpu.append(time.process_time() - c0)
            plain_wall.append(time.perf_counter() - w0)
            c0 = time.process_time()
            profiled.run(None, feed)
            prof_cpu.append(time.process_time() - c0)
        with open(profiled.end_profiling()) as f:
            events = json.load(f)

    runs = sorted((e for e in events if e.get("cat") == "Session" and e["name"] == "model_run"),
                  key=lambda e: e["ts"])[1:]  # the first is the warm-up
    nodes = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    per_run = []
    for r in runs:
        groups = collections.defaultdict(lambda: [0, 0.0, 0.0])  # calls, us, flops
        for e in nodes:
            if r["ts"] <= e["ts"] <= r["ts"] + r["dur"]:
                g = groups[group_key(e)]
                g[0] += 1
                g[1] += e["dur"]
                g[2] += node_flops(e["args"]["op_name"], shapes_of(e["args"], "input_type_shape"),
                                   shapes_of(e["args"], "output_type_shape"))
        groups["(outside kernels)"] = [1, r["dur"] - sum(g[1] for g in groups.values()), 0.0]
        per_run.append(groups)
    total_us = statistics.median(r["dur"] for r in runs)
    flop = batch * seq * cr.flop_per_token(seq)
    med_cpu = statistics.median(plain_cpu)
    print(f"## ONNX Runtime {ort.__version__} fp32, {batch}x{seq}, {args.threads} thread(s), "
          f"{args.iterations} batches\n")
    print(f"Per batch, median: unprofiled {1e3 * med_cpu:.1f} ms CPU "
          f"({1e3 * statistics.median(plain_wall):.1f} wall), profiled "
          f"{1e3 * statistics.median(prof_cpu):.1f} ms CPU ({total_us / 1e3:.1f} wall); model "
          f"{flop / 1e9:.2f} GFLOP = {flop / med_cpu / 1e9:.1f} GFLOP per CPU-s unprofiled = "
          f"{100 * flop / med_cpu / 1e9 / args.peak:.0f}% of {args.peak}.\n")
    # Node times are wall clock, which the neighbours inflate; spread the
    # profiled run's median CPU time over the ops by their wall-time share
    # (an estimate: it assumes the inflation is uniform across ops).
    prof_cpu_ms = 1e3 * statistics.median(prof_cpu)
    print("| op type | calls | wall ms | share of run | est. CPU ms | GFLOP | "
          "GFLOP per est. CPU-s | of peak |")
    print("|---|---|---|---|---|---|---|---|")
    ops = {op for r in per_run for op in r}
    rows = []
    for op in ops:
        us = statistics.median(r[op][1] if op in r else 0.0 for r in per_run)
        calls = max(r[op][0] for r in per_run if op in r)
        flops = max(r[op][2] for r in per_run if op in r)
        rows.append((us, op, calls, flops))
    for us, op, calls, flops in sorted(rows, reverse=True):
        cpu_ms = prof_cpu_ms * us / total_us
        line = f"| {op} | {calls} | {us / 1e3:.1f} | {100 * us / total_us:.1f}% | {cpu_ms:.1f} |"
        if flops > 0 and cpu_ms > 0:
            rate = flops / (cpu_ms / 1e3) / 1e9
            line += f" {flops / 1e9:.2f} | {rate:.1f} | {100 * rate / args.peak:.0f}% |"
        else:
            line += " | | |"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
