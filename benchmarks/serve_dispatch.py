"""What a transformer server's forward pass costs in dispatch alone, on a CPU: the GPU's serving
limit, measured without a GPU.

    .venv/bin/python benchmarks/serve_dispatch.py [--seconds 6] [--rounds 3]

On a GPU a small encoder's arithmetic takes a fraction of a millisecond a batch; what takes
the time is launching its ~900 operator calls from Python (what CUDA graphs remove:
`models/graphs.py`). The same work on a CPU, with the arithmetic taken out, is MiniLM's
tokenizer and 6 layers at width 32 (a fresh folder saved as `train` saves one). wrk (1
thread, 32 connections, one short review a request) loads, in interleaved rounds:

- the bare FastAPI endpoint (`bare_endpoint.py`), the yardstick;
- `reviewstars serve` of that model: the eager forward, all dispatch;
- the same server with the forward pass replaced by a no-op: what a graph replay, which
  costs one launch, leaves of the server's own cost.

Writes `benchmarks/results/serve_dispatch.json`. On the H200 (run 3) MiniLM served at 22%
of the bare endpoint; the target with graphs is 1,500 requests/s, p99 <= 100 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from _common import SHARED_YELP, save
from serve_load import BARE, free_port, generator_load, short_reviews, start_command, start_server, wrk_binary


def dispatch_folder(folder: Path) -> str:
    """MiniLM's tokenizer and depth at width 32: a forward pass that is nearly all dispatch."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertConfig

    from reviewstars.models.pretrained import minilm_path
    from reviewstars.models.transformer import TransformerPredictor

    config = BertConfig.from_pretrained(minilm_path())
    config.hidden_size, config.intermediate_size, config.num_attention_heads, config.num_labels = 32, 64, 2, 5
    model = AutoModelForSequenceClassification.from_config(config)
    TransformerPredictor(model, AutoTokenizer.from_pretrained(minilm_path()), max_length=128, truncation="head+tail").save(folder)
    return str(folder)


def serve_with_no_op_forward(folder: str, port: int) -> None:
    """`reviewstars serve` itself, every transformer's forward pass a no-op (five equal probabilities)."""
    import torch

    from reviewstars.models.transformer import TransformerPredictor
    from reviewstars.serving import serve

    TransformerPredictor.probabilities = lambda self, input_ids, attention_mask: torch.full((len(input_ids), 5), 0.2)
    serve(folder, port=port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=6.0, help="wrk's seconds of load on each server, each round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--no-op-child", nargs=2, metavar=("FOLDER", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.no_op_child:
        return serve_with_no_op_forward(args.no_op_child[0], int(args.no_op_child[1]))
    if not wrk_binary():
        sys.exit("serve_dispatch: needs wrk (Debian's package `wrk`)")
    import pandas as pd

    texts = short_reviews(pd.read_parquet(SHARED_YELP / "validation.parquet")["text"].tolist())
    with tempfile.TemporaryDirectory() as scratch:
        folder = dispatch_folder(Path(scratch) / "dispatch")
        port = free_port()
        servers = {"bare_endpoint": start_server(BARE + "app"), "eager_forward": start_server(folder),
                   "no_op_forward": start_command([sys.executable, __file__, "--no-op-child", folder, str(port)], port)}
        runs: dict[str, list[dict]] = {name: [] for name in servers}
        try:
            for _, url in servers.values():
                generator_load(url, texts, args.connections, 2.0)  # warm-up
            for _ in range(args.rounds):
                for name, (_, url) in servers.items():
                    runs[name].append(generator_load(url, texts, args.connections, args.seconds))
        finally:
            for process, _ in servers.values():
                process.terminate()
                process.wait(timeout=30)
    results = {}
    for name, measured in runs.items():
        median = lambda key: statistics.median(run[key] for run in measured)  # noqa: E731
        results[name] = {"requests_per_second": round(median("requests_per_second"), 1), "p50_ms": median("p50_ms"),
                         "p99_ms": median("p99_ms"), "failed": sum(run["failed"] for run in measured),
                         "each_run_per_second": [run["requests_per_second"] for run in measured]}
    bare = results["bare_endpoint"]["requests_per_second"]
    shares = {name: round(results[name]["requests_per_second"] / bare, 3) for name in ("eager_forward", "no_op_forward")}
    for name, result in results.items():
        print(f"{name:14s} {result['requests_per_second']:8,.0f} requests/s  p50 {result['p50_ms']} ms  p99 {result['p99_ms']} ms"
              f"  failed {result['failed']}" + (f"  ({shares[name]:.0%} of the bare endpoint)" if name in shares else ""))
    save("serve_dispatch", {"connections": args.connections, "seconds": args.seconds, "rounds": args.rounds,
                            "generator": "wrk, 1 thread", "model": "MiniLM's tokenizer and 6 layers at width 32", **results,
                            "share_of_bare_endpoint": shares})


if __name__ == "__main__":
    main()
