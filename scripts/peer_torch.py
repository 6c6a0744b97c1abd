#!/usr/bin/env python3
"""PyTorch twins of topkformer's benchmarks, for honest ratios on the same machine.

(a) attention: one torch.nn.MultiheadAttention layer (batch_first, d_model 256,
    4 heads, with its input and output projections, as `topkformer bench
    attention`), forward + backward with an all-ones output gradient, per
    sequence length; median of --repeats timed runs after --warmup runs. Rows go
    to stdout and, with --csv, to a CSV with the columns of `bench attention`
    (variant=torch; k, chunk_size and peak_reserved_bytes empty) and `threads`.
(b) lm: the training step of the small decoder LM of configs/bench/lm_small.yaml
    (embedding 16384 x 256, learned positions, 4 pre-LN blocks with GELU
    feed-forward 1024, final LayerNorm, untied output projection, AdamW, dropout
    0, batch 8 x 512 random tokens), as `topkformer bench train` times it:
    --lm-steps timed steps after --lm-warmup. The last line printed is
    `N tokens/s`, as bench train's; --lm-csv writes bench train's columns.

    /usr/bin/python3 scripts/peer_torch.py --threads 2 --lengths 1024,2048,4096 --causal \
        --csv torch_attention.csv --lm-config configs/bench/lm_small.yaml

peak_bytes is exact: the running total of the CPU allocator's allocations and
frees during one extra forward + backward under torch.profiler
(profile_memory=True), above what was held before it (inputs and weights;
gradients are freed between runs, as topkformer's benchmark frees them). It is
the same quantity as topkformer's allocator peak. peak_rss_bytes is the
process' resident-set high-water mark over the timed runs above the resident
size before them (Linux /proc/self/clear_refs); glibc keeps freed memory, so
it is a coarse figure.

Needs the Debian package python3-torch, and for lm a built topkformer (--tool),
which prints --lm-config's effective config; see docs/plots.md.
"""

import argparse
import csv
import math
import os
import statistics
import sys
import time

# Debian's python3-torch runs its own loops on OpenMP (libgomp) but calls
# libblas.so.3, which is usually OpenBLAS's pthreads build with a thread pool of
# its own. With libgomp's default spin-waiting, the idle OpenMP workers compete
# with the BLAS threads for the cores: on a 2-core machine a causal attention
# layer at L = 1024 took 115 ms instead of 53 ms. Passive waiting (set before
# torch loads libgomp) removes that; an OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from effective_config import effective_config  # noqa: E402

# The columns of `topkformer bench attention` and `bench train`, then threads.
MEASURED = ["time_median_s", "time_min_s", "time_max_s", "peak_bytes", "peak_reserved_bytes",
            "peak_rss_bytes", "threads"]
ATTENTION_COLUMNS = ["variant", "length", "batch", "d_model", "heads", "k", "chunk_size", "causal",
                     "backward"] + MEASURED
LM_COLUMNS = ["config", "task", "layers", "d_model", "heads", "d_ff", "attention", "batch",
              "length", "vocab", "parameters", "recompute", "last_loss"] + MEASURED


# --------------------------------------------------------------------------- measurement


def timed_runs(run, warmup, repeats):
    """Median (the upper one for an even count, as src/app/timing.h), min and max seconds."""
    for _ in range(warmup):
        run()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    seconds.sort()
    return seconds[len(seconds) // 2], seconds[0], seconds[-1]


def profiled_peak_bytes(run):
    """Peak of the CPU allocator's live bytes during run(), above those held before it."""
    try:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            run()
        events = prof.profiler.kineto_results.events()
        memory = [e for e in events if e.name() == "[memory]" and e.device_type() ==
                  torch.autograd.DeviceType.CPU]
        memory.sort(key=lambda e: e.start_us())  # stable: same-microsecond events keep order
        total = peak = 0
        for event in memory:
            total += event.nbytes()
            peak = max(peak, total)
        return peak if memory else None
    except Exception as error:  # a PyTorch without these internals: leave the column empty
        print(f"peer_torch: no allocator peak ({type(error).__name__}: {error})", file=sys.stderr)
        return None


def _status_kib(field):
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_rss_peak():
    """Resets VmHWM (Linux >= 4.0); returns the resident bytes now, or None."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return None
    rss = _status_kib("VmRSS")
    return None if rss is None else rss * 1024


def rss_peak_since(rss_before):
    if rss_before is None:
        return None
    hwm = _status_kib("VmHWM")
    return None if hwm is None else max(hwm * 1024 - rss_before, 0)


def blas_libraries():
    """The BLAS libraries mapped into this process (after torch is loaded)."""
    found = set()
    try:
        with open("/proc/self/maps") as handle:
            for line in handle:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                name = os.path.basename(path)
                if "blas" in name or "mkl" in name:
                    found.add(os.path.realpath(path))
    except OSError:
        pass
    return sorted(found)


def set_blas_threads(threads):
    """torch.set_num_threads does not reach a generic libblas (BLAS_INFO=generic):
    give OpenBLAS the same count, so --threads N means N threads everywhere."""
    import ctypes

    done = []
    for path in blas_libraries():
        try:
            library = ctypes.CDLL(path)
            setter = getattr(library, "openblas_set_num_threads", None)
            if setter is not None:
                setter(ctypes.c_int(threads))
                done.append(os.path.basename(path))
        except OSError:
            continue
    return done


# --------------------------------------------------------------------------- (a) attention


def bench_attention(args):
    rows = []
    generator = torch.Generator().manual_seed(1)
    layer = nn.MultiheadAttention(args.d_model, args.heads, batch_first=True)
    layer.train()
    header = (f"{'variant':<10}{'length':>8}{'median_ms':>12}{'min_ms':>12}{'max_ms':>12}"
              f"{'peak_MiB':>12}{'rss_MiB':>10}")
    print(header, flush=True)
    for length in args.lengths:
        x = torch.randn(args.batch, length, args.d_model, generator=generator,
                        requires_grad=True)
        mask = (torch.triu(torch.ones(length, length, dtype=torch.bool), diagonal=1)
                if args.causal else None)

        def run():
            out, _ = layer(x, x, x, attn_mask=mask, need_weights=False)
            out.backward(torch.ones_like(out))
            x.grad = None
            layer.zero_grad(set_to_none=True)

        for _ in range(args.warmup):
            run()
        rss_before = reset_rss_peak()
        median, fastest, slowest = timed_runs(run, 0, args.repeats)
        rss_peak = rss_peak_since(rss_before)
        peak = profiled_peak_bytes(run)
        row = {
            "variant": "torch", "length": length, "batch": args.batch, "d_model": args.d_model,
            "heads": args.heads, "k": "", "chunk_size": "", "causal": int(args.causal),
            "backward": 1, "time_median_s": f"{median:.6f}", "time_min_s": f"{fastest:.6f}",
            "time_max_s": f"{slowest:.6f}", "peak_bytes": "" if peak is None else peak,
            "peak_reserved_bytes": "",  # no caching allocator on the CPU
            "peak_rss_bytes": "" if rss_peak is None else rss_peak,
            "threads": torch.get_num_threads(),
        }
        rows.append(row)
        mib = lambda value: "-" if value in ("", None) else f"{value / 2**20:.1f}"  # noqa: E731
        print(f"{'torch':<10}{length:>8}{median * 1e3:>12.2f}{fastest * 1e3:>12.2f}"
              f"{slowest * 1e3:>12.2f}{mib(peak):>12}{mib(rss_peak):>10}", flush=True)
    if args.csv:
        write_csv(args.csv, ATTENTION_COLUMNS, rows)


def write_csv(path, columns, rows):
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {path}", flush=True)


# --------------------------------------------------------------------------- (b) language model


class Block(nn.Module):
    """Pre-LN block as topkformer's TransformerBlock: x + attn(LN(x)), x + ff(LN(x))."""

    def __init__(self, d_model, heads, d_ff, activation):
        super().__init__()
        self.attention_norm = nn.LayerNorm(d_model)
        self.attention = nn.MultiheadAttention(d_model, heads, batch_first=True)
        self.feed_forward_norm = nn.LayerNorm(d_model)
        self.fc1 = nn.Linear(d_model, d_ff)
        self.fc2 = nn.Linear(d_ff, d_model)
        self.activation = activation

    def forward(self, x, mask):
        h = self.attention_norm(x)
        x = x + self.attention(h, h, h, attn_mask=mask, need_weights=False)[0]
        h = self.fc1(self.feed_forward_norm(x))
        h = F.gelu(h) if self.activation == "gelu" else F.relu(h)
        return x + self.fc2(h)


class LanguageModel(nn.Module):
    def __init__(self, vocab, max_length, d_model, heads, d_ff, layers, activation, tied):
        super().__init__()
        self.embedding = nn.Embedding(vocab, d_model)
        self.positions = nn.Parameter(torch.empty(max_length, d_model))
        self.blocks = nn.ModuleList(Block(d_model, heads, d_ff, activation)
                                    for _ in range(layers))
        self.final_norm = nn.LayerNorm(d_model)
        self.output = None if tied else nn.Linear(d_model, vocab, bias=False)
        # topkformer's initialisation: weights normal(0, 0.02), biases 0, LayerNorm gains 1,
        # the projections into the residual stream scaled by 1/sqrt(2 * layers).
        for name, parameter in self.named_parameters():
            if "norm" in name:
                continue
            if name.endswith("bias"):
                nn.init.zeros_(parameter)
            else:
                nn.init.normal_(parameter, 0.0, 0.02)
        with torch.no_grad():
            for block in self.blocks:
                block.attention.out_proj.weight.mul_(1.0 / math.sqrt(2 * layers))
                block.fc2.weight.mul_(1.0 / math.sqrt(2 * layers))

    def forward(self, tokens):
        length = tokens.size(1)
        x = self.embedding(tokens) + self.positions[:length]
        mask = torch.triu(torch.ones(length, length, dtype=torch.bool), diagonal=1)
        for block in self.blocks:
            x = block(x, mask)
        x = self.final_norm(x)
        if self.output is not None:
            return self.output(x)
        return x @ self.embedding.weight.t()


def lm_settings(args):
    """The LM's shape and optimiser: the effective config of --lm-config (lm_small.yaml), as
    `topkformer config` (--tool) prints it, then the --lm-* options. The vocabulary is bench
    train's --vocab-size default (a config's comes from its tokenizer)."""
    c = effective_config(args.tool, args.lm_config)
    settings = dict(vocab=16384, length=int(c["data.max_length"]),
                    batch=int(c["train.batch_size"]), d_model=int(c["model.d_model"]),
                    heads=int(c["model.heads"]), d_ff=int(c["model.d_ff"]),
                    layers=int(c["model.layers"]), activation=c["feedforward.activation"],
                    tied=c["model.tie_embeddings"] == "true",
                    max_length=int(c["model.max_length"]),
                    segment_length=int(c["eval.segment_length"]))
    for key in ("learning_rate", "weight_decay", "beta1", "beta2", "eps", "clip_norm"):
        settings[key] = float(c[f"optimizer.{key}"])
    differences = []
    if c["model.pre_layer_norm"] == "false":
        differences.append("post-LN")
    if c["model.positions"] != "learned":
        differences.append(f"positions {c['model.positions']}")
    if c["attention.kind"] != "vanilla":
        differences.append(f"attention {c['attention.kind']}")
    if c["feedforward.kind"] != "dense":
        differences.append(f"feed-forward {c['feedforward.kind']}")
    if float(c["model.dropout"]) > 0 or float(c["attention.dropout"]) > 0:
        differences.append("dropout")
    if int(c["train.accumulation"]) != 1:
        differences.append("gradient accumulation")
    if c["train.recompute_layers"] == "true":
        differences.append("activation recomputation")
    if differences:
        print(f"peer_torch: {args.lm_config} has {', '.join(differences)}; the PyTorch twin "
              "is pre-LN, learned positions, vanilla attention, dense feed-forward, no "
              "dropout, no accumulation or recomputation", file=sys.stderr)
    if args.lm_vocab:
        settings["vocab"] = args.lm_vocab
    if args.lm_batch:
        settings["batch"] = args.lm_batch
    if args.lm_length:
        settings["length"] = args.lm_length
    if not settings["max_length"]:  # as topkformer: data.max_length, or the eval segment if longer
        settings["max_length"] = max(settings["length"], settings["segment_length"])
    return settings


def bench_lm(args):
    """As `topkformer bench train`: one synthetic batch drawn once and reused, forward +
    backward, gradient-norm clipping and the AdamW update per step; --lm-warmup untimed
    steps, then --lm-steps timed ones; tokens/s = tokens per step x steps / their time."""
    s = lm_settings(args)
    torch.manual_seed(0)
    model = LanguageModel(s["vocab"], s["max_length"], s["d_model"], s["heads"], s["d_ff"],
                          s["layers"], s["activation"], s["tied"])
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=s["learning_rate"],
                                  betas=(s["beta1"], s["beta2"]), eps=s["eps"],
                                  weight_decay=s["weight_decay"])
    parameters = sum(p.numel() for p in model.parameters())
    print(f"lm: {s['layers']} layers, d_model {s['d_model']}, {s['heads']} heads, d_ff {s['d_ff']} "
          f"({s['activation']}), vocab {s['vocab']}, {'tied' if s['tied'] else 'untied'} output, "
          f"batch {s['batch']} x {s['length']} tokens, {parameters} parameters, "
          f"{torch.get_num_threads()} threads", flush=True)
    generator = torch.Generator().manual_seed(1)
    inputs = torch.randint(0, s["vocab"], (s["batch"], s["length"]), generator=generator)
    targets = torch.randint(0, s["vocab"], (s["batch"], s["length"]), generator=generator)
    max_norm = s["clip_norm"] if s["clip_norm"] > 0 else float("inf")  # the norm is always measured
    last_loss = [math.nan]

    def step():
        logits = model(inputs)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        last_loss[0] = loss.item()

    for _ in range(args.lm_warmup):
        step()
    rss_before = reset_rss_peak()
    seconds = []
    for index in range(args.lm_steps):
        start = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - start)
        print(f"lm step {index + 1}/{args.lm_steps}: {seconds[-1]:.3f} s, loss {last_loss[0]:.4f}",
              flush=True)
    rss_peak = rss_peak_since(rss_before)
    peak = profiled_peak_bytes(step) if args.lm_csv else None
    ordered = sorted(seconds)
    tokens_per_step = s["batch"] * s["length"]
    if args.lm_csv:
        name = os.path.splitext(os.path.basename(args.lm_config))[0]
        write_csv(args.lm_csv, LM_COLUMNS, [{
            "config": name, "task": "lm", "layers": s["layers"], "d_model": s["d_model"],
            "heads": s["heads"], "d_ff": s["d_ff"], "attention": "torch", "batch": s["batch"],
            "length": s["length"], "vocab": s["vocab"], "parameters": parameters,
            "recompute": 0, "last_loss": f"{last_loss[0]:.4f}",
            "time_median_s": f"{ordered[len(ordered) // 2]:.6f}",
            "time_min_s": f"{ordered[0]:.6f}", "time_max_s": f"{ordered[-1]:.6f}",
            "peak_bytes": "" if peak is None else peak, "peak_reserved_bytes": "",
            "peak_rss_bytes": "" if rss_peak is None else rss_peak,
            "threads": torch.get_num_threads()}])
    print(f"{tokens_per_step} tokens per step, {len(seconds)} timed steps after "
          f"{args.lm_warmup} warm-up steps, {torch.get_num_threads()} threads; median step "
          f"{statistics.median(seconds):.3f} s", flush=True)
    print(f"{tokens_per_step * len(seconds) / sum(seconds):.1f} tokens/s", flush=True)


# --------------------------------------------------------------------------- main


def integer_list(text):
    return [int(v) for v in text.split(",") if v.strip()]


def main():
    parser = argparse.ArgumentParser(
        description="PyTorch twins of `topkformer bench attention` and `bench train` (lm_small).")
    parser.add_argument("--part", choices=("attention", "lm", "both"), default="both")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch intra-op threads (0: every core this process may use, as "
                             "topkformer --threads 0)")
    parser.add_argument("--repeats", type=int, default=3, help="attention: timed runs")
    parser.add_argument("--warmup", type=int, default=1, help="attention: untimed runs first")
    parser.add_argument("--lengths", type=integer_list, default=[1024, 2048, 4096],
                        help="attention: sequence lengths (comma-separated)")
    parser.add_argument("--batch", type=int, default=1, help="attention: batch size")
    parser.add_argument("--d-model", type=int, default=256, help="attention: model width")
    parser.add_argument("--heads", type=int, default=4, help="attention: heads")
    parser.add_argument("--causal", action="store_true", help="attention: causal mask")
    parser.add_argument("--csv", help="attention: also write the rows to this CSV file")
    parser.add_argument("--lm-steps", type=int, default=20,
                        help="lm: timed training steps (0: no LM; default 20 as bench train)")
    parser.add_argument("--lm-warmup", type=int, default=3,
                        help="lm: untimed steps first (default 3 as bench train)")
    parser.add_argument("--lm-csv", help="lm: also write the row (bench train's columns, "
                                         "with the allocator peak of one more step) to this CSV")
    parser.add_argument("--lm-config", default="configs/bench/lm_small.yaml",
                        help="lm: the topkformer config whose shape and optimiser to build")
    parser.add_argument("--tool", default="build/src/topkformer",
                        help="lm: the topkformer binary that reads --lm-config")
    parser.add_argument("--lm-vocab", type=int, help="lm: vocabulary size (default 16384)")
    parser.add_argument("--lm-batch", type=int, help="lm: sequences per step (default 8)")
    parser.add_argument("--lm-length", type=int, help="lm: tokens per sequence (default 512)")
    args = parser.parse_args()

    threads = args.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    set_blas_threads(threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, "
          f"BLAS {', '.join(blas_libraries()) or 'unknown'}", flush=True)
    if args.part in ("attention", "both") and args.lengths:
        bench_attention(args)
    if args.part in ("lm", "both") and args.lm_steps > 0:
        bench_lm(args)


if __name__ == "__main__":
    main()
