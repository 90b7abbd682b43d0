"""CUDA graphs for a server's batch shapes: one launch a batch instead of hundreds.

A small encoder's forward pass is short work cut into many kernels: MiniLM's is about 900
operator calls, each going through Python, PyTorch's dispatcher and a kernel launch. At a
server's batch sizes (a dozen short reviews) that CPU work sets the pace, not the GPU: on
an H200 host `serve` answered 1,394 requests/s while the GPU sat mostly idle, and on a CPU
the same 6 layers at width 32 (all dispatch, no arithmetic) take 2.3 ms a batch. A CUDA
graph records the kernels of one forward pass, for one input shape, once; each replay
launches them all with one call (PyTorch's "CUDA Graphs" notes; vLLM and TensorRT-LLM
serve this way).

Batches already come in a few shapes (`tokenization.ShapeBuckets`), so a server captures
one graph per shape when it starts (`TransformerPredictor.warm_up`), the largest first, all
drawing on one memory pool: they never run at once, and the smaller ones fit in what the
larger ones used. Every graph is checked against the eager forward pass on inputs of its
shape before it is kept; a shape whose capture fails or disagrees runs eagerly, and
`failed` says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import torch

#: (input_ids, attention_mask) on the device -> float32 probabilities, one row per batch row.
Forward = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: Records `forward` on the given static inputs; returns its static output and what replays it.
Capture = Callable[[Forward, torch.Tensor, torch.Tensor], tuple[torch.Tensor, Callable[[], None]]]

#: How far a replay's probabilities may be from the eager pass's on the same inputs: the same
#: kernels give the same numbers, but cuBLAS may pick another algorithm under capture.
AGREEMENT = 1e-3


@dataclass(eq=False)
class Replay:
    """One captured forward pass: the static tensors it reads and writes, and its replay."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    output: torch.Tensor
    replay: Callable[[], None]

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        self.input_ids.copy_(input_ids, non_blocking=True)  # from pinned host memory: no sync
        self.attention_mask.copy_(attention_mask, non_blocking=True)
        self.replay()
        return self.output.clone()  # any later replay may write over `output`: the graphs share one pool


class CudaGraphCapture:
    """Captures on the CUDA device of the inputs, every graph in one shared memory pool."""

    def __init__(self) -> None:
        self.pool = torch.cuda.graph_pool_handle()

    def __call__(self, forward: Forward, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        device = input_ids.device
        side = torch.cuda.Stream(device=device)  # warm-up and capture off the default stream, as capture needs
        side.wait_stream(torch.cuda.current_stream(device))
        graph = torch.cuda.CUDAGraph()
        # On the inputs' device (not the current one), and on `side` throughout: a capture that
        # fails leaves the caller's own stream as it was, whatever the graph's exit raises.
        with torch.cuda.device(device), torch.cuda.stream(side):
            for _ in range(2):  # kernels loaded and chosen: nothing left to set up inside the capture
                forward(input_ids, attention_mask)
            with torch.cuda.graph(graph, pool=self.pool, stream=side):
                output = forward(input_ids, attention_mask)
        torch.cuda.current_stream(device).wait_stream(side)
        return output, graph.replay


class ShapeGraphs:
    """A captured forward pass for each of a few batch shapes; `run` gives None for any other shape.

    Not for two threads at once: a replay's inputs and outputs are shared tensors. The server
    calls it from its one model thread."""

    def __init__(self, forward: Forward, capture: Capture | None = None):
        self.forward = forward
        self.capture_one = capture
        self.replays: dict[tuple[int, int], Replay] = {}
        self.failed: dict[tuple[int, int], str] = {}

    def capture(self, shapes: Iterable[tuple[int, int]], vocabulary: int, device: torch.device) -> int:
        """Capture a graph for each (rows, width) shape, largest first; returns how many were kept.
        Out of memory skips that shape (a smaller one may fit); any other error ends the captures
        (the forward pass holds something a graph cannot)."""
        capture = self.capture_one or CudaGraphCapture()
        for rows, width in sorted(set(shapes), key=lambda shape: shape[0] * shape[1], reverse=True):
            static_ids, static_mask = sample_batch(rows, width, vocabulary, device, seed=0)  # what the graph reads
            input_ids, attention_mask = sample_batch(rows, width, vocabulary, device, seed=1)  # what it is checked on
            try:
                with torch.inference_mode():
                    kept = Replay(static_ids, static_mask, *capture(self.forward, static_ids, static_mask))
                    gap = float((kept(input_ids, attention_mask) - self.forward(input_ids, attention_mask)).abs().max())
            except torch.OutOfMemoryError:
                self.failed[(rows, width)] = "capture failed: out of GPU memory"
                continue
            except Exception as error:  # noqa: BLE001  an operation a graph cannot hold (a sync, a host read)
                self.failed[(rows, width)] = f"capture failed: {(str(error).splitlines() or [type(error).__name__])[0]}"
                break  # the same forward pass fails the same way at every shape: the rest run eagerly
            if gap > AGREEMENT:
                self.failed[(rows, width)] = f"replay differs from the eager pass by {gap:.2g}"
                continue
            self.replays[(rows, width)] = kept
        return len(self.replays)

    def run(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor | None:
        replay = self.replays.get(tuple(input_ids.shape))
        return None if replay is None else replay(input_ids, attention_mask)

    def describe(self) -> dict:
        return {"shapes": len(self.replays), "failed": len(self.failed),
                **({"first_failure": next(iter(self.failed.values()))} if self.failed else {})}


def sample_batch(rows: int, width: int, vocabulary: int, device: torch.device, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and a mask of this shape, rows of different lengths (the first row full), fixed by `seed`."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + rows * 1_009 + width)
    input_ids = torch.randint(1, max(vocabulary, 2), (rows, width), generator=generator)
    lengths = torch.randint(1, width + 1, (rows,), generator=generator)
    lengths[0] = width
    attention_mask = (torch.arange(width)[None, :] < lengths[:, None]).long()
    return input_ids.to(device), attention_mask.to(device)
