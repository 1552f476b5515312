"""Scale: `data prepare`, `score length` and `select longest/random/strict-random` at 100k and 1M examples.

Run: `.venv/bin/python bench/bench_scale.py [--sizes 100000,1000000] [--keep DIR]`. For each size it writes a
seeded synthetic Alpaca-like JSONL file (about 600 bytes a record: a short question, an input 40 % of the
time, a 20-200 word answer; Zipf-distributed English words, a few accented and non-Latin ones, 10 % of the
words random letters), then runs each command as the CLI (`python -m selbench.cli.main ...`) in its own
subprocess with its own step store, and reads that subprocess's peak RSS and wall time (`os.wait4`).

Prints per command and size: wall seconds, records/s, CPU seconds (user + system, every thread: less
sensitive than wall time to other work on a shared machine), peak RSS (MB) and the load average when it
started; and per command the 1M/100k ratios of time (linear is 10) and peak RSS. Targets (issue 15 item 9): peak RSS at the largest size <= 2x that at the
smallest, for every command; `data prepare` >= 10,000 records/s at the largest size. Exit code 1 when a
target is missed. Sizes smaller than the defaults work for a quick look (`--sizes 20000,200000`).

Commands, in order, on the same prepared pool: prepare (alpaca loader); score length (characters); select
longest --budget B (its scores are cached by then, so this is the selection alone); select random --budget
B; select random --budget B --against longest (the study's overlap-constrained random); select
strict-random --budget B --against longest; B = 10,000 (the study's reference budget), or n/10 if smaller.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RSS_RATIO_TARGET = 2.0
PREPARE_RATE_TARGET = 10_000.0

# Common English words (Zipf-weighted below), so token counts resemble real text rather than random letters.
_WORDS = (
    "the of and to a in is it you that he was for on are with as I his they be at one have this from or had by "
    "hot word but what some we can out other were all there when up use your how said an each she which do "
    "their time if will way about many then them write would like so these her long make thing see him two has "
    "look more day could go come did number sound no most people my over know water than call first who may "
    "down side been now find any new work part take get place made live where after back little only round man "
    "year came show every good me give our under name very through just form sentence great think say help low "
    "line differ turn cause much mean before move right boy old too same tell does set three want air well also "
    "play small end put home read hand port large spell add even land here must big high such follow act why ask "
    "men change went light kind off need house picture try us again animal point mother world near build self "
    "earth father head stand own page should country found answer school grow study still learn plant cover food "
    "sun four between state keep eye never last let thought city tree cross farm hard start might story saw far "
    "sea draw left late run while press close night real life few north open seem together next white children "
    "begin got walk example ease paper group always music those both mark often letter until mile river car feet "
    "care second book carry took science eat room friend began idea fish mountain stop once base hear horse cut "
    "sure watch color face wood main enough plain girl usual young ready above ever red list though feel talk "
    "bird soon body dog family direct pose leave song measure door product black short numeral class wind "
    "question happen complete ship area half rock order fire south problem piece told knew pass since top whole "
    "king space heard best hour better true during hundred five remember step early hold west ground interest "
    "reach fast verb sing listen six table travel less morning ten simple several vowel toward war lay against "
    "pattern slow center love person money serve appear road map rain rule govern pull cold notice voice unit "
    "power town fine certain fly fall lead cry dark machine note wait plan figure star box noun field rest "
    "correct able pound done beauty drive stood contain front teach week final gave green oh quick develop ocean "
    "warm free minute strong special mind behind clear tail produce fact street inch multiply nothing course stay "
    "wheel full force blue object decide surface deep moon island foot system busy test record boat common gold "
    "possible plane stead dry wonder laugh thousand ago ran check game shape equate miss brought heat snow tire "
    "bring yes distant fill east paint language among café naïve über façade jalapeño résumé 東京 数据 模型 "
    "данные модель 😀 Python function algorithm dataset neural network gradient optimize instruction response"
).split()


def generate(path: Path, n: int, seed: int = 0) -> int:
    """Write `n` synthetic Alpaca-like JSONL records to `path` (seeded); return the file's size in bytes."""
    import numpy as np

    rng = np.random.default_rng(seed)
    vocab = np.array(_WORDS, dtype=object)
    weights = 1.0 / np.arange(1, len(vocab) + 1) ** 1.05
    weights /= weights.sum()
    alphabet = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    chunk = 10_000
    with open(path, "w", encoding="utf-8") as fh:
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            n_instr = rng.integers(4, 16, m)
            n_input = np.where(rng.random(m) < 0.4, rng.integers(3, 20, m), 0)
            n_output = rng.integers(20, 200, m)
            total = int((n_instr + n_input + n_output).sum())
            words = vocab[rng.choice(len(vocab), size=total, p=weights)]
            odd = np.flatnonzero(rng.random(total) < 0.1)
            lengths = rng.integers(3, 10, len(odd))
            letters = alphabet[rng.integers(0, 26, int(lengths.sum()))]
            ends = np.cumsum(lengths)
            for i, end, k in zip(odd, ends, lengths, strict=True):
                words[i] = "".join(letters[end - k : end])
            lines = []
            pos = 0
            for a, b, c in zip(n_instr, n_input, n_output, strict=True):
                instruction = " ".join(words[pos : pos + a]).capitalize() + "?"
                pos += a
                input_ = " ".join(words[pos : pos + b])
                pos += b
                output = " ".join(words[pos : pos + c]).capitalize() + "."
                pos += c
                lines.append(json.dumps({"instruction": instruction, "input": input_, "output": output},
                                        ensure_ascii=False))
            fh.write("\n".join(lines) + "\n")
    return path.stat().st_size


def run_measured(args: list[str], env: dict[str, str]) -> tuple[float, float, float, str]:
    """Run `python -m selbench.cli.main ARGS` in a subprocess: (wall seconds, CPU seconds (user + system, all
    threads), peak RSS in MB, stdout)."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "selbench.cli.main", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # wait4 returns this child's own resource usage (ru_maxrss: KiB on Linux), unlike RUSAGE_CHILDREN,
    # which is the maximum over every child so far. The pipes are drained on threads so a chatty child
    # cannot block on a full pipe.
    import threading

    out: list[str] = []
    err: list[str] = []
    readers = [threading.Thread(target=lambda: out.append(proc.stdout.read())),
               threading.Thread(target=lambda: err.append(proc.stderr.read()))]
    for reader in readers:
        reader.start()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    for reader in readers:
        reader.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}:\n{''.join(err)[-3000:]}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0, "".join(out)


def bench_size(root: Path, n: int, env: dict[str, str]) -> dict[str, tuple[float, float]]:
    """Every command at pool size `n`: name -> (seconds, peak RSS MB)."""
    src = root / f"alpaca-{n}.jsonl"
    started = time.perf_counter()
    size = generate(src, n)
    print(f"n={n}: generated {size / 1e6:.0f} MB of JSONL in {time.perf_counter() - started:.1f} s", flush=True)
    env = {**env, "SELBENCH_CACHE": str(root / f"cache-{n}")}
    data = root / f"pool-{n}"
    sel = root / f"sel-{n}"
    budget = min(10_000, n // 10)
    commands = {
        "data prepare": ["data", "prepare", "--source", "alpaca", "--input", str(src), "--out", str(data), "--json"],
        "score length": ["score", "length", "--data", str(data), "--out", str(root / f"length-{n}.parquet"), "--json"],
        "select longest": ["select", "longest", "--data", str(data), "--budget", str(budget), "--out",
                           str(sel / "longest.json"), "--json"],
        "select random": ["select", "random", "--data", str(data), "--budget", str(budget), "--seed", "1", "--out",
                          str(sel / "random.json"), "--json"],
        "select random --against": ["select", "random", "--data", str(data), "--budget", str(budget), "--seed", "1",
                                    "--against", str(sel / "longest.json"), "--out", str(sel / "random-vs.json"),
                                    "--json"],
        # --reference-budget = the longest selection's size: excludes all of it (the default since issue 10).
        "select strict-random": ["select", "strict-random", "--data", str(data), "--budget", str(budget), "--seed",
                                 "1", "--against", str(sel / "longest.json"), "--reference-budget", str(budget),
                                 "--out", str(sel / "strict.json"), "--json"],
    }
    results: dict[str, tuple[float, float]] = {}
    for name, args in commands.items():
        load = os.getloadavg()[0]
        seconds, cpu, rss, stdout = run_measured(args, env)
        results[name] = (seconds, rss)
        last = json.loads(stdout.strip().splitlines()[-1])
        extra = f"; {last['n']} examples, sha256 {last['sha256'][:16]}" if name == "data prepare" else ""
        print(f"  {name:<26} {seconds:8.1f} s {n / seconds:10.0f} rec/s  cpu {cpu:7.1f} s {n / cpu:9.0f} rec/cpu-s "
              f"{rss:7.0f} MB  (load {load:.1f}){extra}", flush=True)
    src.unlink()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated pool sizes (smallest first)")
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TQDM_DISABLE": "1"}
    try:
        baseline = run_measured(["--help"], env)
        print(f"baseline (`selbench --help`): {baseline[0]:.1f} s, {baseline[2]:.0f} MB; {os.cpu_count()} CPUs; wall "
              "times depend on what else runs (load = 1-minute load average when the command started)", flush=True)
        table = {n: bench_size(root, n, env) for n in sizes}
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    small, large = sizes[0], sizes[-1]
    ok = True
    print(f"\n{'command':<26} {'time x':>7} {'RSS x':>6}   (n x{large / small:g}; targets: time ~linear, "
          f"RSS <= {RSS_RATIO_TARGET:g}x)")
    for name in table[small]:
        (t0, r0), (t1, r1) = table[small][name], table[large][name]
        met = r1 <= RSS_RATIO_TARGET * r0
        ok &= met
        print(f"{name:<26} {t1 / t0:7.2f} {r1 / r0:6.2f}   {'met' if met else 'MISSED'}")
    rate = large / table[large]["data prepare"][0]
    ok &= rate >= PREPARE_RATE_TARGET
    print(f"data prepare at n={large}: {rate:.0f} records/s (target >= {PREPARE_RATE_TARGET:.0f}): "
          f"{'met' if rate >= PREPARE_RATE_TARGET else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
