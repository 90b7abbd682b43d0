"""Any transformer sequence classifier (ours from scratch, or pretrained) as a StarPredictor."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .. import STARS
from ..devices import half_precision_dtype
from ..errors import ModelError
from ..tokenization import TRUNCATIONS, BatchPacker, ShapeBuckets, encode_pieces, pieces_tokenizer, save_tokenizer
from .base import PredictStages, StarPredictor, ahead, torch_layer_parameters
from .first_token import FirstTokenClassifier
from .graphs import Capture, ShapeGraphs
from .folder import FOLDED, SECTION, calibration_of, check_finite, info_of, model_folder, positions_of, safetensors_files, section
from .pretrained import check_tokenizer_fits, hub_error, pad_with_end_token, resolve, stars_of_labels, unreadable_config

KIND = "transformer"

#: On CUDA a batch is as many length-sorted reviews as fit in this many padded tokens
#: (~400 validation reviews at `--max-length 128`, 82 tokens each on average), at most
#: `CUDA_MAX_ROWS` unless the caller gives a batch size.
CUDA_TOKENS_PER_BATCH = 32_768
CUDA_MAX_ROWS = 1024
#: Texts tokenized at a time on CUDA: the next chunks on a CPU thread while the GPU runs this one.
CUDA_CHUNK_TEXTS = 2048
#: Batches the tokenizing thread may prepare ahead of the GPU.
BATCHES_AHEAD = 8


@dataclass(frozen=True)
class Batching:
    """How predictions are cut: at most `rows` reviews and `tokens` padded tokens a batch,
    texts tokenized `chunk` at a time (None: no token limit, all texts at once)."""

    rows: int
    tokens: int | None = None
    chunk: int | None = None


class TransformerPredictor(StarPredictor):
    """Wraps a model + tokenizer; predicts in length-sorted, dynamically padded batches.

    BERT classifiers run their last layer at [CLS] only (`FirstTokenClassifier`: same
    logits, less arithmetic).
    """

    kind = KIND

    def __init__(self, model, tokenizer, max_length: int = 256, truncation: str = "head+tail", info: dict | None = None):
        self.model, self.tokenizer = model.eval(), tokenizer
        self.graphs: ShapeGraphs | None = None  # CUDA graphs of a server's batch shapes (`warm_up`)
        self._graphs_weights: tuple = ()  # `_weights()` when the graphs were captured
        self.mixed_precision = True  # bf16 (or fp16) on CUDA; False: fp32 everywhere (to compare)
        self.max_length, self.truncation = max_length, truncation
        self.info = dict(info or {})
        self.column_stars = stars_of_labels(model.config.id2label, getattr(model.config, "name_or_path", "") or "the model")
        self.last_stages: dict[str, float] = {}  # seconds by stage of the latest prediction (`PredictStages`)
        self._backend = pieces_tokenizer(tokenizer)
        self._packers: dict[tuple, BatchPacker] = {}

    @property
    def mixed_precision(self) -> bool:
        return self._mixed_precision

    @mixed_precision.setter
    def mixed_precision(self, value: bool) -> None:
        if bool(value) != getattr(self, "_mixed_precision", None):
            self._mixed_precision = bool(value)
            self.graphs = None  # captured at the other precision

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if FirstTokenClassifier.supports(self.model):
            return FirstTokenClassifier(self.model)(input_ids, attention_mask)
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    def probabilities(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Class probabilities (float32) of one batch already on the device, at this predictor's precision."""
        with self._precision():
            return self.logits(input_ids, attention_mask).float().softmax(dim=-1)

    def weights_proba(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        return self.star_order(self.proba_in_batches(list(texts), self.batching(batch_size)))

    def star_order(self, proba: np.ndarray) -> np.ndarray:
        """Columns in star order, whatever the checkpoint's class order."""
        return proba[:, np.argsort(self.column_stars)]

    def batching(self, batch_size: int | None = None) -> Batching:
        """How `predict_proba` cuts its work on this model's device; `batch_size` caps the reviews a batch.

        A CPU: batches of 16 (measured: MiniLM 93 reviews/s at 16 and 32, 85 at 64); MPS: 64.
        CUDA: as many reviews as fit in `CUDA_TOKENS_PER_BATCH` padded tokens (a fixed count
        leaves a GPU idle on short reviews), tokenized a chunk ahead of the GPU.
        """
        if self.device.type == "cuda":
            return Batching(rows=batch_size or CUDA_MAX_ROWS, tokens=CUDA_TOKENS_PER_BATCH, chunk=CUDA_CHUNK_TEXTS)
        return Batching(rows=batch_size or (16 if self.device.type == "cpu" else 64))

    def proba_in_batches(self, texts: list[str], batching: Batching) -> np.ndarray:
        """Class probabilities (the checkpoint's class order) for each text, in input order.

        Texts are tokenized `batching.chunk` at a time on a CPU thread (the Rust tokenizer runs
        on every core and lets go of the GIL) and cut into length-sorted, padded batches in
        numpy, while this thread sends the batches already made to the device. Nothing waits
        for the device until the end: one copy back for all batches. `last_stages` says where
        the time went."""
        stages = PredictStages()
        device = self.device
        packer = self._packer(device)
        chunk = batching.chunk or max(len(texts), 1)
        graphs = self.graphs if self.graphs is not None and self._graphs_weights == self._weights() else None

        def batches():  # on the producer thread when there are several chunks
            for first in range(0, len(texts), chunk):
                with stages.timed("tokenize"):
                    pieces = encode_pieces(self.tokenizer, texts[first : first + chunk], self._backend)
                made = stages.started("batch")
                for rows, input_ids, attention_mask in packer.batches(pieces, batching.rows, batching.tokens):
                    tensors = self._host_tensors(input_ids, attention_mask, device)
                    stages.stop("batch", made)
                    yield first + rows, tensors
                    made = stages.started("batch")
                stages.stop("batch", made)

        where, parts = [], []
        with torch.inference_mode():
            for rows, (input_ids, attention_mask) in ahead(batches(), BATCHES_AHEAD, stages) if len(texts) > chunk else batches():
                with stages.timed("forward"):
                    where.append(rows)
                    replayed = graphs.run(input_ids, attention_mask) if graphs is not None else None
                    proba = replayed if replayed is not None else self.probabilities(
                        input_ids.to(device, non_blocking=True), attention_mask.to(device, non_blocking=True))
                    parts.append(proba[: len(rows)])  # not the rows that pad a batch to its bucket
        proba = np.zeros((len(texts), len(STARS)), dtype=np.float32)
        if parts:
            with stages.timed("device"):  # waiting for the device to finish, and the one copy back
                values = torch.cat(parts).cpu().numpy()
            with stages.timed("post-process"):
                proba[np.concatenate(where)] = values
        self.last_stages = stages.record(len(texts))
        return proba

    def _shapes(self, device: torch.device | None = None) -> ShapeBuckets | None:
        """On CUDA batches come in a few shapes, each warmed once (`ShapeBuckets`); a CPU gains nothing from them."""
        return ShapeBuckets() if (device or self.device).type == "cuda" else None

    def _packer(self, device: torch.device) -> BatchPacker:
        """One per settings: making one asks the tokenizer for its special tokens, a tenth of a
        server's small batch."""
        key = (self.max_length, self.truncation, self._shapes(device))
        if key not in self._packers:
            self._packers[key] = BatchPacker(self.tokenizer, *key)
        return self._packers[key]

    def warm_up(self, max_batch: int, cuda_graphs: bool = True) -> int:
        """Run every batch shape a server's batches of up to `max_batch` texts can have, so that no
        request pays for the first use of a shape's kernels (seconds on a cold GPU); with
        `cuda_graphs`, capture each shape as a CUDA graph (`models.graphs`: one launch a batch).
        Returns how many shapes were run (none off CUDA)."""
        device = self.device
        shapes = self._shapes(device)
        if shapes is None or device.type != "cuda":
            return 0
        every_shape = shapes.all_shapes(max_batch, self.max_length)
        self.graphs = self.capture_graphs(every_shape) if cuda_graphs else None  # each capture runs its shape: a warm-up
        pad = self.tokenizer.pad_token_id or 0
        with torch.inference_mode():
            for rows, width in every_shape:  # every shape without a graph, warmed eagerly
                if self.graphs is None or (rows, width) not in self.graphs.replays:
                    ids = torch.full((rows, width), pad, dtype=torch.long, device=device)
                    self.probabilities(ids, torch.ones_like(ids))
        torch.cuda.synchronize(device)
        return len(every_shape)

    def capture_graphs(self, shapes: list[tuple[int, int]], capture: Capture | None = None) -> ShapeGraphs:
        """A CUDA graph of `probabilities` for each (rows, width) shape, used by every later
        prediction on these weights (`capture`: a stand-in for tests)."""
        self.graphs = ShapeGraphs(self.probabilities, capture)
        self.graphs.capture(shapes, getattr(self.model.config, "vocab_size", None) or len(self.tokenizer), self.device)
        self._graphs_weights = self._weights()
        return self.graphs

    def _weights(self) -> tuple:
        """Where the weights are and in what type: graphs read them there, so a model moved or
        cast since (new memory, even on the same device) must not replay them."""
        return tuple((p.data_ptr(), p.dtype) for p in self.model.parameters())

    def _host_tensors(self, input_ids: np.ndarray, attention_mask: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """For CUDA in pinned memory (copied without a sync; torch's host allocator reuses the
        pages), elsewhere plain."""
        tensors = torch.from_numpy(input_ids), torch.from_numpy(attention_mask)
        if device.type == "cuda":
            return tuple(t.pin_memory() for t in tensors)
        return tensors

    def _precision(self):
        """bf16 autocast on CUDA (fp16 where bf16 is missing): tensor cores, many times fp32's
        rate. The target is the same star as fp32 on >= 99.5% of reviews (`benchmarks/gpu.py`
        measures it). Elsewhere, or with `mixed_precision` off, fp32 as the model was trained.
        No cast cache: a CUDA graph cannot hold one (and inference casts each weight once a batch anyway)."""
        if self.device.type != "cuda" or not self.mixed_precision:
            return nullcontext()
        return torch.autocast("cuda", dtype=half_precision_dtype(), cache_enabled=False)

    @property
    def num_parameters(self) -> int:
        return int(sum(p.numel() for p in self.model.parameters()))

    def layer_parameters(self) -> list[tuple[str, str, int]]:
        return torch_layer_parameters(self.model)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "architecture": type(self.model).__name__, "max_length": self.max_length, "truncation": self.truncation,
                **({"cuda_graphs": self.graphs.describe()} if self.graphs is not None else {})}

    def fold_temperature(self) -> bool:
        """Divide the last layer's weights and bias by the temperature (the same softmax), so
        that every reader of the folder gets the calibrated probabilities; True when done.
        A head of another shape keeps the temperature in the config, applied at predict."""
        if self.folded or self.temperature == 1.0:
            return self.folded
        head = getattr(self.model, "classifier", None)
        head = head if isinstance(head, torch.nn.Linear) else getattr(head, "out_proj", None)  # BERT's, ours; RoBERTa's
        if isinstance(head, torch.nn.Linear):
            with torch.no_grad():
                head.weight.div_(self.temperature)
                if head.bias is not None:
                    head.bias.div_(self.temperature)
            self.folded = True
        return self.folded

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        self.fold_temperature()
        setattr(self.model.config, SECTION, section(KIND, max_length=self.max_length, truncation=self.truncation,
                                                    temperature=self.temperature, **{FOLDED: self.folded}, **self.info))
        # A reader's `pipeline(..., truncation=True)` cuts where the model was trained to read, not at 512,
        # and its tokenizer normalizes a review as ours does (NFKC)
        self.tokenizer.model_max_length = self.max_length
        with model_folder(path) as stage:
            self.model.save_pretrained(stage)
            save_tokenizer(self.tokenizer, stage)
        return path

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> "TransformerPredictor":
        """A reviewstars folder, any fine-tuned checkpoint folder, or a Hub id, on `device` (default: auto)."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from ..devices import resolve_device

        name = resolve(path)
        refuse_pickle_only(name)
        register_our_architecture(name)
        if not Path(name).exists():
            from ..hub import offline_unless_reachable

            offline_unless_reachable()
        try:
            # (mismatched sizes: named below; refused, transformers says only "look at the above report", in its log)
            model, loading = AutoModelForSequenceClassification.from_pretrained(name, output_loading_info=True,
                                                                                ignore_mismatched_sizes=True)
            tokenizer = AutoTokenizer.from_pretrained(name)
        except (OSError, ValueError) as error:
            raise hub_error(str(path), error, to_fine_tune=False) from None
        except (TypeError, AttributeError, KeyError) as error:
            raise unreadable_config(name, error) from None
        except RuntimeError as error:  # any other fault of the weights against config.json (mismatched sizes: named below)
            if Path(name).is_dir():
                from ..data.formats import first_line

                raise ModelError(f"{path}: its config.json does not describe its weights ({first_line(error)[:300]}): "
                                 "copy the model folder again, or train it again") from None
            raise
        check_finite(((name, parameter.detach()) for name, parameter in model.named_parameters()), path)
        check_tokenizer_fits(tokenizer, getattr(model.config, "vocab_size", None), path)
        pad_with_end_token(model, tokenizer, path)
        mismatched = sorted(loading.get("mismatched_keys") or [], key=str)
        if mismatched:
            key, in_weights, by_config = mismatched[0]
            raise ModelError(f"{path}: its config.json does not describe its weights ({key} is {list(in_weights)} in the weights, "
                             f"{list(by_config)} by config.json" + (f", and {len(mismatched) - 1} more" if len(mismatched) > 1 else "")
                             + "): copy the model folder again, or train it again")
        missing = loading.get("missing_keys") or []
        if missing:  # transformers fills them in at random, and says so only in its log
            raise ModelError(f"{path}: its weights have no {', '.join(sorted(missing)[:3])}{', ...' if len(missing) > 3 else ''} "
                             "(they would be random): a base model? Fine-tune it first with `reviewstars train --model "
                             f"{path}`")
        settings = dict(getattr(model.config, SECTION, None) or {})
        # a folder from elsewhere reads what its tokenizer and its position table both allow, up to 512
        longest = min(512, getattr(tokenizer, "model_max_length", 512) or 512, positions_of(model) or 512)
        predictor = cls(
            model.to(resolve_device(device)),
            tokenizer,
            max_length=settings.pop("max_length", longest),
            truncation=settings.pop("truncation", "head"),
            info=info_of(settings),
        )
        predictor.temperature, predictor.folded = calibration_of(settings, path)
        if predictor.truncation not in TRUNCATIONS:
            raise ModelError(f"{path}: truncation must be one of {', '.join(TRUNCATIONS)}, got {predictor.truncation!r}")
        return predictor


def register_our_architecture(name: str) -> None:
    """Folders of our own architectures (model_type `reviewstars-X`) need module
    `reviewstars.models.X` imported: it registers them with the Auto classes."""
    from importlib import import_module

    from .folder import CONFIG_FILE, read_config

    if not (Path(name) / CONFIG_FILE).is_file():
        return
    model_type = str(read_config(name).get("model_type", ""))
    if model_type.startswith("reviewstars-"):
        try:
            import_module(f"reviewstars.models.{model_type.removeprefix('reviewstars-')}")
        except ImportError:
            raise ModelError(f"{name}: unknown architecture {model_type!r}") from None


def refuse_pickle_only(name: str) -> None:
    """Weights load from safetensors only: a pickle can run code when it is opened."""
    folder = Path(name)
    if not folder.is_dir():
        return
    if not safetensors_files(folder) and any(folder.glob("*.bin")) | any(folder.glob("*.pt")) | any(folder.glob("*.pkl")):
        raise ModelError(
            f"{folder}: weights are only in pickle files (.bin/.pt/.pkl), which can run code when opened; "
            "convert them to safetensors with a tool you trust"
        )
