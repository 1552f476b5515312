"""IFD scoring: the batched scorer vs Cherry LLM's one-example-at-a-time two-pass loop, on ShareGPT with SmolLM2.

Run: `.venv/bin/python bench/bench_ifd.py [--examples 256] [--max-length 512] [--json]`.

Prepares the packaged ShareGPT pool (`selbench data prepare --source sharegpt --input sharegpt`, cached), takes a
seeded sample of `--examples` conversations (first user/assistant pair), loads `smollm2-135m-instruct` once and
times, in the same process:

* naive: Cherry's `data_analysis.py --mod cherry --prompt alpaca` as its script runs it: per example, the prompt
  tokenized alone, then one forward pass for the direct text and one for the whole text (`model(ids,
  labels=labels)` with hidden states on, as Cherry loads the model), then the per-token log-softmax loop; then
  `data_by_IFD.py`'s spans and skip rules;
* batched: `selbench.scoring.ifd.ifd_columns` (length-sorted, padded batches; the head only on scored positions;
  no forward pass for examples the rules skip).

It checks that both give the same scores (max relative difference <= 1e-3 over the examples both score) and skip
the same examples, and prints each one's wall time, tokens/s, model FLOP/s, and that as a fraction of this
machine's fp32 matmul peak measured in the same run (best of several 2048^3 fp32 matmuls). Targets: on a CPU the
batched scorer at >= 0.8x the naive loop's speed (wall time of the same job); on a GPU >= 10x.

OMP_WAIT_POLICY defaults to PASSIVE: on a small shared CPU, spinning OpenMP threads slow every matmul down.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported, see the module docstring

CPU_TARGET, GPU_TARGET = 0.8, 10.0
NO_INPUT = ("Below is an instruction that describes a task. Write a response that appropriately completes the "
            "request.\n\n### Instruction:\n{instruction}\n\n### Response:")
WITH_INPUT = ("Below is an instruction that describes a task, paired with an input that provides further context. "
              "Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n"
              "### Input:\n{input}\n\n### Response:")


def matmul_peak(device: str, size: int = 2048, repeats: int = 5) -> float:
    """Best fp32 matmul FLOP/s of `repeats` timed `size^3` products (after a warm-up)."""
    import torch

    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    best = 0.0
    for i in range(repeats + 1):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        (a @ b).sum().item()
        seconds = time.perf_counter() - start
        if i:
            best = max(best, 2 * size**3 / seconds)
    return best


def naive_cherry(model, tok, examples, max_length):
    """Cherry's scripts, one example at a time. Returns (ifd list, tokens forwarded, head positions, attention pairs)."""
    import torch

    device = next(model.parameters()).device
    log_softmax = torch.nn.LogSoftmax(dim=-1)
    nll_loss = torch.nn.NLLLoss(reduction="none")
    scores, tokens, pairs = [], 0, 0

    def part(text, target, limit):
        nonlocal tokens, pairs
        input_ids = tok.encode(text, return_tensors="pt", truncation=True, max_length=limit).to(device)
        start_token = len(tok.encode(text[: text.rfind(target)]))
        labels = input_ids.clone()
        labels[0, :start_token] = -100
        with torch.no_grad():
            outputs = model(input_ids, labels=labels, output_hidden_states=True)
        losses = []
        for i in range(1, input_ids.shape[1]):  # Cherry's per-token loop
            token_loss = nll_loss(log_softmax(outputs.logits[0, i - 1]).unsqueeze(0), input_ids[0, i].unsqueeze(0))
            losses.append(token_loss.item())
        tokens += input_ids.shape[1]
        pairs += input_ids.shape[1] ** 2 // 2
        return input_ids, start_token, losses

    for ex in examples:
        prompt = (WITH_INPUT if ex["input"] else NO_INPUT).format_map(ex)
        output = ex["output"]
        ins_len = tok.encode(prompt, return_tensors="pt", truncation=True, max_length=max_length).shape[1]
        ids_1, start_1, losses_1 = part("### Response:" + output, output, max_length - ins_len + 4)
        ids_2, start_2, losses_2 = part(prompt + output, output, max_length)
        # data_by_IFD.py
        len_1, len_2 = ids_1.shape[1] - start_1, ids_2.shape[1] - start_2
        if max_length - ins_len <= 0 or len_1 <= 0 or len_2 <= 0 or ins_len + len_1 > max_length:
            scores.append(math.nan)
            continue
        mean_1 = float(sum(losses_1[start_1 - 1 : ids_1.shape[1] - 1])) / len_1
        mean_2 = float(sum(losses_2[start_2 - 1 : ids_2.shape[1] - 1])) / len_2
        scores.append(mean_2 / mean_1)
    return scores, tokens, tokens, pairs


def sample_sharegpt(n: int, seed: int):
    import tempfile

    import numpy as np

    from selbench.data.prepare import prepare
    from selbench.data.schema import read_examples

    folder = os.path.join(tempfile.gettempdir(), "selbench-bench-sharegpt")
    prepare("sharegpt", "sharegpt", folder)
    examples = read_examples(folder)
    picked = np.sort(np.random.default_rng(seed).choice(len(examples), n, replace=False))
    return [{"instruction": examples[i].instruction, "input": examples[i].input, "output": examples[i].output}
            for i in picked]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--examples", type=int, default=256)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-tokens", type=int, default=0, help="0 = the scorer's default")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args()

    import numpy as np
    import torch

    from selbench.assets import load_model
    from selbench.scoring.ifd import ifd_columns
    from selbench.scoring.ifd_text import plan_ifd

    examples = sample_sharegpt(args.examples, args.seed)
    model, tok = load_model(args.model)
    device = next(model.parameters()).device.type
    config = model.config
    linear = sum(p.numel() for n, p in model.named_parameters() if ".layers." in n and p.dim() == 2)
    head = config.hidden_size * config.vocab_size

    def flops(tokens, head_rows, pairs):  # matmuls: linear layers, head rows, attention (QK^T and AV)
        return 2 * linear * tokens + 2 * head * head_rows + 4 * config.num_hidden_layers * config.hidden_size * pairs

    ifd_columns(model, tok, examples[:2], args.max_length)  # warm-up
    peak = matmul_peak(device)

    start = time.perf_counter()
    columns = ifd_columns(model, tok, examples, args.max_length, batch_tokens=args.batch_tokens or None)
    ours_s = time.perf_counter() - start
    plan = plan_ifd(tok, examples, args.max_length)
    seqs = [plan.cond[i] for i in plan.cond] + [plan.uncond[i] for i in plan.uncond]
    ours_tokens = sum(len(ids) for ids, _ in seqs)
    ours_head = sum(max(0, end - start) for _, (start, end) in seqs)
    ours_pairs = sum(len(ids) ** 2 // 2 for ids, _ in seqs)

    start = time.perf_counter()
    naive, naive_tokens, naive_head, naive_pairs = naive_cherry(model, tok, examples, args.max_length)
    naive_s = time.perf_counter() - start

    ours, naive = columns["ifd"], np.array(naive)
    same_skips = bool((np.isnan(ours) == np.isnan(naive)).all())
    both = ~np.isnan(ours) & ~np.isnan(naive)
    max_rel = float(np.max(np.abs(ours[both] - naive[both]) / np.abs(naive[both]))) if both.any() else 0.0
    ours_flops, naive_flops = flops(ours_tokens, ours_head, ours_pairs), flops(naive_tokens, naive_head, naive_pairs)
    result = {
        "device": device, "threads": torch.get_num_threads(), "examples": len(examples), "max_length": args.max_length,
        "scored": int(both.sum()), "skipped": int(np.isnan(ours).sum()), "same_skipped": same_skips,
        "max_rel_diff": max_rel,
        "ours": {"seconds": ours_s, "tokens": ours_tokens, "tokens_per_s": ours_tokens / ours_s,
                 "gflops_per_s": ours_flops / ours_s / 1e9, "peak_fraction": ours_flops / ours_s / peak},
        "naive": {"seconds": naive_s, "tokens": naive_tokens, "tokens_per_s": naive_tokens / naive_s,
                  "gflops_per_s": naive_flops / naive_s / 1e9, "peak_fraction": naive_flops / naive_s / peak},
        "fp32_matmul_peak_gflops": peak / 1e9,
        "speedup": naive_s / ours_s,
        "target_speedup": GPU_TARGET if device == "cuda" else CPU_TARGET,
        "skip_reasons": {int(k): int(v) for k, v in zip(*np.unique(columns["ifd_skip"], return_counts=True), strict=True)},
    }
    ok = same_skips and max_rel <= 1e-3 and result["speedup"] >= result["target_speedup"]
    result["ok"] = ok
    for name in ("naive", "ours"):
        r = result[name]
        print(f"{name:>6}: {r['seconds']:8.1f} s  {r['tokens']:8d} tokens  {r['tokens_per_s']:8.1f} tok/s  "
              f"{r['gflops_per_s']:7.1f} GFLOP/s  ({100 * r['peak_fraction']:.0f}% of fp32 matmul peak)", file=sys.stderr)
    print(f"peak {result['fp32_matmul_peak_gflops']:.1f} GFLOP/s; speedup {result['speedup']:.2f}x "
          f"(target {result['target_speedup']}x); max rel diff {max_rel:.2e}; same skipped: {same_skips} "
          f"({result['skipped']} of {len(examples)})", file=sys.stderr)
    if args.json:
        print(json.dumps(result))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
