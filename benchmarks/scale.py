"""Past one process, measured on this machine: N reviews resampled from the shared training
set (N = 200,000 and 2,000,000), rated by the linear model

  - in one process (`predict --file`),
  - as two shards run side by side (`--shard 0/2`, `--shard 1/2`) and joined by `merge`,
  - on Ray Data (`--engine ray`, a local Ray, one worker per core),

with reviews/s, wall time and the peak memory of every process (the command's own, and of
its whole process tree: Ray's workers and object store included); then checks that Ray and
the merged shards give the single process' stars on every row, by position, and that a shard
killed halfway goes on from the rows it had written. Then the same rows as many small files
(`--files 20`: a folder of 20 Parquet files) against one file, both on Ray: what each file
costs the run beyond its rows. Prints a table, writes benchmarks/results/scale.json
(and scale_many_files.json).

    python benchmarks/scale.py [--sizes 200000,2000000] [--files 20 --rows-per-file 2000] [--workdir /tmp/reviewstars-scale]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, SHARED_YELP, save

CLI = [sys.executable, "-m", "reviewstars.cli"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT / "src")}


def build(n: int, path: Path, seed: int = 0) -> Path:
    """N reviews drawn with replacement from the shared training set, written in row groups
    (a batch at a time: the file may be larger than the memory that writes it)."""
    import numpy as np
    import pyarrow.parquet as pq

    if path.is_file() and pq.ParquetFile(path).metadata.num_rows == n:
        return path
    texts = pq.read_table(SHARED_YELP / "train.parquet", columns=["text", "label"])
    rng = np.random.default_rng(seed)
    tmp = path.with_suffix(".tmp")
    # No dictionary: resampled reviews repeat, and a dictionary would make the file (and its reading) unrealistically small.
    with pq.ParquetWriter(tmp, texts.schema, use_dictionary=False) as writer:
        for start in range(0, n, 65_536):
            writer.write_table(texts.take(rng.integers(0, len(texts), min(65_536, n - start))), row_group_size=65_536)
    tmp.rename(path)
    return path


def measured(command: list[str], *, kill_when=None) -> dict:
    """Run `command`; its wall time, the peak RSS of the process itself (the kernel's count,
    from wait4) and of its whole tree (polled every 50 ms: Ray's processes and the object
    store's shared memory, counted once per process that maps it)."""
    import psutil

    started = time.perf_counter()
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    tree_peak = 0
    killed = False
    handle = psutil.Process(process.pid)
    while process.poll() is None:
        try:
            tree = [handle, *handle.children(recursive=True)]
            tree_peak = max(tree_peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        if kill_when is not None and not killed and kill_when():
            process.send_signal(signal.SIGKILL)
            killed = True
        time.sleep(0.05)
    stdout, stderr = process.communicate()
    seconds = time.perf_counter() - started
    if process.returncode != 0 and not killed:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}): {stderr.strip()[-800:]}")
    return {"seconds": round(seconds, 2), "tree_peak_mb": round(tree_peak / 2**20), "stdout": stdout.strip(),
            "killed": killed}


def peak_of(command: list[str], **options) -> dict:
    """`measured`, with the command's own peak RSS read by the kernel (GNU time's %M would do; it is not everywhere)."""
    wrapper = [sys.executable, str(Path(__file__).with_name("_peak.py")), *command]
    result = measured(wrapper, **options)
    lines = result["stdout"].splitlines()
    peak = next((int(line.split()[-1]) for line in reversed(lines) if line.startswith("peak_rss_kb")), None)
    result["stdout"] = "\n".join(line for line in lines if not line.startswith("peak_rss_kb"))
    result["peak_mb"] = None if peak is None else round(peak / 1024)
    return result


def stars_by_row(path: Path):
    """A prediction output's stars in input order (one column: a few MB for millions of rows)."""
    import numpy as np
    import pyarrow.parquet as pq

    if path.is_dir():
        parts = sorted(path.rglob("rows-*.parquet"))
        rows = np.concatenate([pq.read_table(p, columns=["row"])["row"].to_numpy() for p in parts])
        stars = np.concatenate([pq.read_table(p, columns=["stars"])["stars"].to_numpy() for p in parts])
        order = np.argsort(rows, kind="stable")
        assert np.array_equal(rows[order], np.arange(len(rows))), f"{path}: rows missing or twice"
        return stars[order]
    return pq.read_table(path, columns=["stars"])["stars"].to_numpy()


def rows_kept(partial: Path) -> int:
    spans = [re.match(r"rows-(\d+)-(\d+)\.parquet$", p.name) for p in partial.glob("rows-*.parquet")] if partial.is_dir() else []
    return sum(int(m[2]) - int(m[1]) for m in spans if m)


def run_size(n: int, work: Path, model: Path) -> dict:
    import numpy as np

    source = build(n, work / f"reviews_{n}.parquet")
    out = work / f"out_{n}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    predict = [*CLI, "predict", "--model", str(model), "--file", str(source)]
    result: dict = {"reviews": n, "input_mb": round(source.stat().st_size / 2**20)}
    print(f"\n{n:,} reviews ({result['input_mb']:,} MB of Parquet)")

    single = peak_of([*predict, "--output", str(out / "single.parquet")])
    result["one_process"] = single

    started = time.perf_counter()
    shards = [subprocess.Popen([sys.executable, str(Path(__file__).with_name("_peak.py")), *predict, "--shard", f"{i}/2",
                                "--output", str(out / f"shard{i}.parquet")], env=ENV, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for i in range(2)]
    peaks = []
    for shard in shards:
        stdout, stderr = shard.communicate()
        if shard.returncode:
            raise SystemExit(f"shard failed: {stderr[-800:]}")
        peaks.append(round(int(stdout.split("peak_rss_kb")[-1].split()[0]) / 1024))
    shard_seconds = time.perf_counter() - started
    merge = peak_of([*CLI, "merge", str(out / "shard0.parquet"), str(out / "shard1.parquet"), "--output", str(out / "merged.parquet")])
    result["two_shards"] = {"seconds": round(shard_seconds, 2), "peak_mb": peaks}
    result["merge"] = merge

    ray = peak_of([*predict, "--engine", "ray", "--output", str(out / "ray")])
    result["ray"] = ray

    reference = stars_by_row(out / "single.parquet")
    for name, path in (("merged shards", out / "merged.parquet"), ("ray", out / "ray")):
        other = stars_by_row(path)
        result[f"same_stars_{name.replace(' ', '_')}"] = bool(len(other) == len(reference) and np.array_equal(other, reference))

    # A shard killed halfway (SIGKILL: nothing to clean up), then run again.
    partial = out / ".again.parquet.partial"
    again = [*predict, "--shard", "0/2", "--output", str(out / "again.parquet")]
    half = n // 4
    killed = measured(again, kill_when=lambda: rows_kept(partial) >= half)
    kept = rows_kept(partial)
    resumed = measured(again)
    rated = int(re.search(r"rated ([\d,]+) reviews", resumed["stdout"])[1].replace(",", ""))
    kept_line = re.search(r"([\d,]+) kept from the stopped run", resumed["stdout"])
    result["killed_shard"] = {"killed": killed["killed"], "rows_kept": kept, "rows_of_shard": rated,
                              "rows_kept_said": int(kept_line[1].replace(",", "")) if kept_line else 0,
                              "resume_seconds": resumed["seconds"], "first_run_seconds": killed["seconds"],
                              "same_stars": bool(np.array_equal(stars_by_row(out / "again.parquet"), stars_by_row(out / "shard0.parquet")))}
    for key in ("one_process", "merge", "ray"):
        result[key].pop("stdout", None)
        result[key].pop("killed", None)
    result["one_process"]["reviews_per_second"] = round(n / single["seconds"])
    result["two_shards"]["reviews_per_second"] = round(n / shard_seconds)
    result["ray"]["reviews_per_second"] = round(n / ray["seconds"])
    shutil.rmtree(out)
    return result


def many_files(files: int, rows_per_file: int, work: Path, model: Path) -> dict:
    """The same reviews on Ray as one file and as `files` files in a folder (one worker pool
    for the whole run: each worker opens the model once, not once per file)."""
    import pyarrow.parquet as pq

    out = work / "many"
    shutil.rmtree(out, ignore_errors=True)
    (out / "in").mkdir(parents=True)
    whole = build(files * rows_per_file, work / f"reviews_{files * rows_per_file}.parquet", seed=1)
    table = pq.read_table(whole)
    for number in range(files):
        pq.write_table(table.slice(number * rows_per_file, rows_per_file), out / "in" / f"reviews-{number:03d}.parquet")
    ray = [*CLI, "predict", "--model", str(model), "--engine", "ray"]
    one = measured([*ray, "--file", str(whole), "--output", str(out / "one")])
    many = measured([*ray, "--file", str(out / "in"), "--output", str(out / "parts")])
    n = files * rows_per_file
    result = {"files": files, "rows_per_file": rows_per_file, "reviews": n,
              "one_file": {"seconds": one["seconds"], "reviews_per_second": round(n / one["seconds"])},
              "many_files": {"seconds": many["seconds"], "reviews_per_second": round(n / many["seconds"])},
              "seconds_per_extra_file": round((many["seconds"] - one["seconds"]) / max(files - 1, 1), 3)}
    shutil.rmtree(out)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200000,2000000")
    parser.add_argument("--files", type=int, default=20, help="the many-files run on Ray: how many files (0: none)")
    parser.add_argument("--rows-per-file", type=int, default=2000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/reviewstars-scale"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    model = args.workdir / "linear"
    if not (model / "config.json").is_file():
        subprocess.run([*CLI, "train", "--model", "linear", "--data", str(SHARED_YELP), "--output", str(model)], env=ENV,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sizes = [int(size) for size in args.sizes.split(",") if size.strip()]
    results = [run_size(n, args.workdir, model) for n in sizes]
    print(f"\n{'reviews':>10} {'path':<22} {'reviews/s':>10} {'wall s':>8} {'peak MB (process / tree)':>26}")
    for r in results:
        rows = [("one process", r["one_process"]), ("2 shards (side by side)", r["two_shards"]), ("merge", r["merge"]),
                ("ray (local, 2 workers)", r["ray"])]
        for name, m in rows:
            peak = m["peak_mb"] if isinstance(m["peak_mb"], list) else f"{m['peak_mb']} / {m.get('tree_peak_mb', '-')}"
            rate = f"{m['reviews_per_second']:,}" if "reviews_per_second" in m else ""
            print(f"{r['reviews']:>10,} {name:<22} {rate:>10} {m['seconds']:>8} {str(peak):>26}")
        print(f"{'':>10} same stars as one process, every row: merged shards {r['same_stars_merged_shards']}, ray {r['same_stars_ray']}; "
              f"killed shard kept {r['killed_shard']['rows_kept']:,} rows, rated the other "
              f"{r['killed_shard']['rows_of_shard'] - r['killed_shard']['rows_kept_said']:,} when run again")
    summary = {"sizes": results}
    if len(results) > 1:
        first, last = results[0], results[-1]
        summary["ray_driver_peak_growth"] = round(last["ray"]["peak_mb"] / first["ray"]["peak_mb"], 3)
        print(f"Ray driver's peak memory, {last['reviews']:,} vs {first['reviews']:,} reviews: x{summary['ray_driver_peak_growth']}")
    if results:
        save("scale", summary)
    if args.files:
        m = many_files(args.files, args.rows_per_file, args.workdir, model)
        print(f"\n{m['reviews']:,} reviews on Ray: one file {m['one_file']['seconds']} s "
              f"({m['one_file']['reviews_per_second']:,}/s); {m['files']} files of {m['rows_per_file']:,} "
              f"{m['many_files']['seconds']} s ({m['many_files']['reviews_per_second']:,}/s): "
              f"{m['seconds_per_extra_file']} s for each file beyond the first")
        save("scale_many_files", m)


if __name__ == "__main__":
    main()
