"""Helpers the benchmark scripts share: where the data is, and how results are written."""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_YELP = ROOT.parent / "shared" / "data" / "yelp"
RESULTS = ROOT / "benchmarks" / "results"

sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Said outright: a `transformers.pipeline` (the baseline several benchmarks time) sets it to "false"
# when it is unset, which leaves every later tokenizer call in the process on one core.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

if "--verbose" not in sys.argv:  # as the command line: our progress, not the libraries' bars and logs
    from reviewstars.progress import silence_libraries

    silence_libraries()


def machine() -> dict:
    import torch

    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
    }


def save(name: str, result: dict) -> Path:
    from reviewstars.artifacts import write_json

    path = write_json(RESULTS / f"{name}.json", {"benchmark": name, "machine": machine(), **result})
    print(f"wrote {path.relative_to(ROOT)}")
    return path
