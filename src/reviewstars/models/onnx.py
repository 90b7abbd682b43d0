"""A transformer exported to ONNX Runtime, optionally int8: the same predictor, faster on CPU.

`export_onnx` traces the model with `torch.export` (batch size and length stay dynamic),
checks ONNX Runtime against PyTorch on a padded batch, and writes a folder that
`load_predictor`, `predict` and `serve` open like any other model:

    model.onnx         the graph (int8 weights when quantised)
    tokenizer.json ... the source model's tokenizer, unchanged
    config.json        the source config; `reviewstars.kind` is "onnx"
    README.md          a card: how to run the graph, with or without reviewstars, and the source's card

int8 is dynamic quantisation (onnxruntime.quantization): Linear weights stored as int8,
activations quantised on the fly. A quarter of the size, and integer matrix products on CPU.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from scipy.special import softmax

from .. import STARS
from ..errors import ModelError, Terminated
from ..tokenization import TRUNCATIONS, Encoder, padded_batches, pieces_tokenizer, save_tokenizer
from .base import StarPredictor
from .folder import CARD_FILE, CARD_USE, CONFIG_FILE, EXAMPLE_REVIEW, FOLDED, METRICS_FILE, SECTION, SOURCE_METRICS_FILE, TRAINED_TEXTS_FILE, calibration_of, check_model_output, folder_kind, model_folder, read_config, section
from .pretrained import check_tokenizer_fits, stars_of_labels

KIND = "onnx"
MODEL_FILE = "model.onnx"
QUANTIZATIONS = ("int8",)
INSTALL_HINT = "ONNX needs its extra: pip install 'reviewstars[onnx]'"


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise ModelError(INSTALL_HINT) from None
    return onnxruntime


class OnnxPredictor(StarPredictor):
    """Length-sorted, dynamically padded batches through an ONNX Runtime session."""

    kind = KIND

    def __init__(self, folder: Path, session, tokenizer, config: dict[str, Any]):
        self.folder, self.session, self.tokenizer = folder, session, tokenizer
        settings = config.get(SECTION) or {}
        if not isinstance(settings, dict) or settings.get("truncation", "head+tail") not in TRUNCATIONS:
            raise ModelError(f"{folder}: its '{SECTION}' section must be an object with a known truncation")
        self.settings = settings
        self.temperature, self.folded = calibration_of(settings, folder)
        self.max_length = settings.get("max_length", 256)
        self.truncation = settings.get("truncation", "head+tail")
        self.column_stars = stars_of_labels(config.get("id2label") or {str(i): f"LABEL_{i}" for i in range(len(STARS))}, str(folder))
        self.inputs = [node.name for node in session.get_inputs()]
        # the Rust backend's batch call, cut inside it, without the normalizer steps `readable` has done
        self.encoder = Encoder(tokenizer, self.max_length, self.truncation, pieces_tokenizer(tokenizer))

    def weights_proba(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """An int8 graph rates one review a call: dynamic quantisation scales a call's activations
        by the whole batch, so a review's probabilities moved (by up to 0.0015, its stars on a near
        tie) with the reviews beside it, and `serve` answered by its neighbours' traffic. Alone,
        it costs about 15% of the speed on a CPU (no padding is computed either)."""
        ids = self.encoder(list(texts))
        proba = np.zeros((len(ids), len(STARS)), dtype=np.float32)
        batch_size = 1 if self.settings.get("quantize") else batch_size or 16
        for rows, input_ids, attention_mask in padded_batches(ids, batch_size, self.tokenizer.pad_token_id or 0):
            feed = {"input_ids": input_ids, "attention_mask": attention_mask}
            (logits,) = self.session.run(["logits"], {name: feed[name] for name in self.inputs})
            proba[rows] = softmax(logits, axis=1)
        return proba[:, np.argsort(self.column_stars)]

    @property
    def num_parameters(self) -> int:
        return int(self.settings.get("parameters", 0))

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "runtime": f"onnxruntime ({self.provider})",
            "quantize": self.settings.get("quantize"),
            "exported_from": self.settings.get("exported_from"),
            "max_length": self.max_length,
            "truncation": self.truncation,
        }

    def save(self, path: str | Path) -> Path:
        """Copy the folder (an ONNX model is saved when it is exported)."""
        path = Path(path)
        if path.resolve() == self.folder.resolve():
            return path
        with model_folder(path) as stage:
            for file in self.folder.iterdir():
                if file.is_file():
                    (stage / file.name).write_bytes(file.read_bytes())
        return path

    @property
    def provider(self) -> str:
        return self.session.get_providers()[0]

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> "OnnxPredictor":
        """The folder's graph on ONNX Runtime's CUDA provider when `device` is a GPU and
        the provider is installed, else on the CPU one (`describe()` says which)."""
        from transformers import AutoTokenizer

        from ..devices import resolve_device

        ort = _onnxruntime()
        folder = Path(path)
        if not (folder / MODEL_FILE).is_file():
            raise ModelError(f"{folder}: no {MODEL_FILE}; export one with `reviewstars export --model DIR --format onnx`")
        providers = ["CPUExecutionProvider"]
        if resolve_device(device).startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            session = ort.InferenceSession(str(folder / MODEL_FILE), providers=providers)
        except Exception as error:  # onnxruntime raises its own exception types
            raise ModelError(f"{folder / MODEL_FILE}: not a loadable ONNX model ({str(error).splitlines()[0]})") from None
        tokenizer, config = AutoTokenizer.from_pretrained(folder), read_config(folder)
        check_tokenizer_fits(tokenizer, config.get("vocab_size"), folder)
        return cls(folder, session, tokenizer, config)


def _logits_only(model):
    """The classifier with tensors in and logits out: the signature ONNX sees.
    BERT classifiers are traced with their last layer at [CLS] only (same logits, less work)."""
    import torch

    from .first_token import FirstTokenClassifier

    if FirstTokenClassifier.supports(model):
        return FirstTokenClassifier(model).eval()

    class Logits(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    return Logits().eval()


def export_onnx(model: str | Path, output: str | Path, quantize: str | None = None) -> dict[str, Any]:
    """Export a transformer model folder (or alias / Hub id) to an ONNX folder at `output`."""
    from . import TRANSFORMER, check_model_name, folder_kind, load_predictor

    if quantize not in (None, *QUANTIZATIONS):
        raise ModelError(f"unknown quantization '{quantize}': use {', '.join(QUANTIZATIONS)}")
    # Every name, before torch and the exporter are imported (8 s): a name that is not there,
    # an output over the model exported or over a model of another kind, a model of no transformer.
    check_model_name(model)
    check_model_output(output, inputs=(model,))
    check_replaces_an_export(Path(output))
    folder = Path(str(model)).expanduser()
    kind = folder_kind(folder) if folder.is_dir() else None
    if kind not in (None, TRANSFORMER):
        raise ModelError(f"{model}: only transformer models export to ONNX (this one is '{kind}')")
    import torch

    ort = _onnxruntime()
    try:
        import onnxscript  # noqa: F401  (torch's exporter needs it)
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        raise ModelError(INSTALL_HINT) from None
    predictor = load_predictor(model, device="cpu")  # traced on the CPU; the folder runs anywhere (a transformer: checked above)
    predictor.fold_temperature()  # the graph's own logits are then the calibrated ones, for any ONNX Runtime user
    network = _logits_only(predictor.model.float())
    longest = int(getattr(predictor.model.config, "max_position_embeddings", 512) or 512)

    # Example with padding, so the traced graph keeps the attention-mask path.
    example_ids = torch.randint(5, 100, (2, 16))
    example_mask = torch.ones_like(example_ids)
    example_mask[1, 9:] = 0
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length", max=longest)
    output = Path(output)
    config = predictor.model.config.to_dict()
    source = dict(config.get(SECTION) or {})
    config[SECTION] = {**source, **section(KIND, max_length=predictor.max_length, truncation=predictor.truncation, quantize=quantize,
                                           exported_from=Path(str(model)).name, parameters=predictor.num_parameters,
                                           temperature=predictor.temperature, **{FOLDED: predictor.folded})}
    # The graph is traced into the new folder's own stage (beside `output`, named by this
    # process): a stop removes it, and what a `kill -9` left is removed by the next export
    # there (in the system's temporary folder, 91 MB stayed for good).
    with model_folder(output) as stage:
        graph_file = stage / "model.fp32.onnx"
        try:
            program = torch.onnx.export(
                network, (example_ids, example_mask), input_names=["input_ids", "attention_mask"], output_names=["logits"],
                dynamic_shapes={"input_ids": {0: batch, 1: length}, "attention_mask": {0: batch, 1: length}},
                dynamo=True, optimize=True, verbose=False,
            )
        except Exception as error:  # torch.onnx reports a SIGTERM in the middle as its own error, in 277 lines
            raise _stop_within(error) or error
        program.save(str(graph_file))
        _check_against_torch(ort, graph_file, network)
        if quantize == "int8":
            quantize_dynamic(str(graph_file), str(stage / MODEL_FILE), weight_type=QuantType.QInt8)
            graph_file.unlink()
        else:
            graph_file.rename(stage / MODEL_FILE)
        save_tokenizer(predictor.tokenizer, stage)  # ONNX Runtime's users read reviews as we do
        metrics = Path(str(model)) / METRICS_FILE
        if metrics.is_file():
            (stage / SOURCE_METRICS_FILE).write_bytes(metrics.read_bytes())
        trained = Path(str(model)) / TRAINED_TEXTS_FILE
        if trained.is_file():  # the same model: a score on the reviews it learned still says so
            (stage / TRAINED_TEXTS_FILE).write_bytes(trained.read_bytes())
        (stage / CONFIG_FILE).write_text(json.dumps(config, indent=2, default=str) + "\n", encoding="utf-8")
        (stage / CARD_FILE).write_text(onnx_card(Path(str(model)), predictor, quantize), encoding="utf-8")
    return {"output": str(output), "quantize": quantize, "bytes": (output / MODEL_FILE).stat().st_size}


def _stop_within(error: BaseException) -> BaseException | None:
    """The SIGTERM (`Terminated`) or Ctrl-C that `error` wraps, if any: said in one line, with its exit code."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, (Terminated, KeyboardInterrupt)):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def check_replaces_an_export(output: Path) -> None:
    """An export writes over an earlier export only: a trained model in `output` (ours, so
    `check_model_output` lets a new model replace it) is a model nobody asked to lose."""
    if not output.is_dir() or not any(output.iterdir()):
        return
    try:
        kind = folder_kind(output)
    except ModelError:
        kind = None
    if kind != KIND:
        held = f"a trained {kind} model" if kind else "models of reviewstars"
        raise ModelError(f"--output {output}: holds {held}, and export writes over an earlier ONNX export only: "
                         "give another folder")


def onnx_card(source: Path, predictor, quantize: str | None) -> str:
    """The exported folder's card: what the graph is and how to run it, then the source's own card
    (its scores were measured on the source, before export), under the Hub's `onnx` library."""
    from huggingface_hub import ModelCard, ModelCardData

    source_card = source / CARD_FILE
    try:
        card = ModelCard.load(source_card) if source_card.is_file() else None
    except Exception:  # a hand-edited card we cannot parse: the export still gets its own
        card = None
    data = card.data if card is not None else ModelCardData(pipeline_tag="text-classification")
    data.library_name = "onnx"
    data.tags = list(dict.fromkeys([*(data.tags or []), "onnx", *(["int8"] if quantize else [])]))
    precision = ("int8 weights (dynamic quantisation: Linear weights stored as int8, activations quantised on the fly; "
                 "its stars may differ from the source's on a few reviews)" if quantize else "fp32 weights, the source's exactly")
    calibration = (f"The calibration (temperature {predictor.temperature:g}) is folded into the graph's logits, so a softmax "
                   "of `logits` gives the calibrated probabilities." if predictor.folded and predictor.temperature != 1
                   else "The graph's softmax gives the model's probabilities.")
    body = [
        f"# `{source.name}`, exported to ONNX: review -> stars (1 to 5)",
        "",
        f"- graph: `{MODEL_FILE}` with inputs `input_ids` and `attention_mask` (batch and length dynamic) and output "
        f"`logits` (five columns, 1 to 5 stars); {precision}",
        f"- reviews are read by their first {predictor.max_length} tokens ({predictor.truncation} truncation in reviewstars)",
        f"- {calibration}",
        "",
        *CARD_USE,
        "",
        "With ONNX Runtime alone (`head` truncation: the first tokens of a long review):",
        "",
        "```python",
        "import numpy as np, onnxruntime",
        "from transformers import AutoTokenizer",
        'tokenizer = AutoTokenizer.from_pretrained("THIS_FOLDER")',
        f'session = onnxruntime.InferenceSession("THIS_FOLDER/{MODEL_FILE}")',
        f'batch = tokenizer(["{EXAMPLE_REVIEW}"], truncation=True, max_length={predictor.max_length}, '
        'padding=True, return_tensors="np")',
        '(logits,) = session.run(["logits"], {name: batch[name].astype(np.int64) for name in ("input_ids", "attention_mask")})',
        "stars = logits.argmax(axis=1) + 1",
        "```",
    ]
    if card is not None:  # the source's card, one heading level down: its scores are the source's
        body += ["", "## The source model's card (scores measured before export)", "", *_demoted(card.text.strip().splitlines())]
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body) + "\n"))


def _demoted(lines: list[str]) -> list[str]:
    """Markdown headings one level down (outside code blocks), to nest a card inside another."""
    demoted, in_code = [], False
    for line in lines:
        in_code ^= line.startswith("```")
        demoted.append(f"#{line}" if line.startswith("#") and not in_code else line)
    return demoted


def _check_against_torch(ort, graph_file: Path, network) -> None:
    """The exported graph must compute what PyTorch computes, on another shape and padding."""
    import torch

    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 100, (3, 23), generator=generator)
    mask = torch.ones_like(ids)
    mask[0, 11:] = 0
    mask[2, 17:] = 0
    session = ort.InferenceSession(str(graph_file), providers=["CPUExecutionProvider"])
    feed = {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
    (exported,) = session.run(["logits"], {node.name: feed[node.name] for node in session.get_inputs()})
    with torch.inference_mode():
        expected = network(ids, mask).numpy()
    difference = float(np.abs(exported - expected).max())
    if difference > 1e-3:
        raise ModelError(f"the ONNX graph disagrees with PyTorch (max logit difference {difference:.2g}); not written")
