"""The model folder, the unit users keep and share: every file name and the `reviewstars`
section of `config.json` in one place.

    config.json            the model's config; its `reviewstars` section says the kind,
                           the labels, how it was trained and its calibration
    model.safetensors ...  the weights (or linear.npz + vocabulary.json)
    tokenizer files        for transformers
    metrics.json           scores on the held-out split, confusion_matrix.png beside them
    learning_curve.json/png
    README.md              the model card
    checkpoints/, runs/    a training's checkpoints (to --resume from; a finished run keeps only its settings and plan) and TensorBoard logs
    .lock                  held while a training writes the folder
    .reviewstars           the mark of a folder reviewstars wrote: only such a folder is written over

A new model replaces the files of ours in the folder (`OUR_FILES`) and keeps everything
else: notes or predictions a user put there are never lost.
"""

from __future__ import annotations

import json
import math
import re
import stat
import struct
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from .. import STARS
from ..artifacts import (OWNER_FILE, SIBLING_BYTES, TEMPORARY_BYTES, atomic_dir, check_output_folder, current_umask, encodable,
                         files_of_ours, finite_json, mark_ours, owner_mark, read_json, replace_dir)
from ..errors import ModelError, ReviewstarsError

CONFIG_FILE = "config.json"
SECTION = "reviewstars"
METRICS_FILE = "metrics.json"
CONFUSION_FILE = "confusion_matrix.png"
CARD_FILE = "README.md"
#: The review every card's examples rate, and the card section they all start with.
EXAMPLE_REVIEW = "The food was great but the service was slow."
CARD_USE = ["## Use", "", "```bash", f'reviewstars predict --model THIS_FOLDER "{EXAMPLE_REVIEW}"', "```"]
LEARNING_CURVE_JSON = "learning_curve.json"
LEARNING_CURVE_PNG = "learning_curve.png"
CHECKPOINTS = "checkpoints"
LOGS = "runs"
TIME_LEDGER_FILE = "time_ledger.json"
SOURCE_METRICS_FILE = "source_metrics.json"  # in an ONNX export: its source's metrics.json
#: Beside a model: an 8-byte hash of each review it was trained on (not the reviews: 8 bytes
#: each, 0.3 MB for our 38k), so a score on reviews it has seen can say so.
TRAINED_TEXTS_FILE = "trained_texts.npz"


SAFETENSORS_FILE, SAFETENSORS_INDEX = "model.safetensors", "model.safetensors.index.json"  # transformers' names


#: What a model folder of ours may hold, by exact name (and the shards of large weights): a
#: new model in the folder replaces these and what the old folder's mark lists as written by
#: us (`files_of_ours`: a foreign tokenizer's merges.txt, say), and keeps every other entry,
#: which is the user's. (Patterns such as `*.safetensors` took a user's `backup.safetensors`.)
OUR_FILES = frozenset({
    OWNER_FILE, CONFIG_FILE, SAFETENSORS_FILE, SAFETENSORS_INDEX, "model.onnx", "model.fp32.onnx", "linear.npz",
    "vocabulary.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.txt",
    "chat_template.jinja", "chat_template.json", METRICS_FILE, CONFUSION_FILE, CARD_FILE, LEARNING_CURVE_JSON, LEARNING_CURVE_PNG,
    TIME_LEDGER_FILE, SOURCE_METRICS_FILE, "train_settings.yaml", "compare_settings.json", "compare_scores.json",
    "compare_scores.npz", "dev_scores.json", "dev_scores.npz", TRAINED_TEXTS_FILE,
})
WEIGHT_SHARD = re.compile(r"^model-\d{5}-of-\d{5}\.safetensors$")  # transformers' name for a part of large weights
MODEL = "model"  # what a model folder's mark says

#: The files besides safetensors that hold a model's numbers, whatever its format.
WEIGHT_FILES = ("linear.npz", "vocabulary.json", "model.onnx", "tokenizer.json")


def safetensors_files(folder: Path) -> list[Path]:
    """The safetensors files transformers reads from `folder`: model.safetensors, or the shards
    its index names. (Not every *.safetensors there: a user's backup.safetensors beside a model
    made it "truncated", and would have hidden a folder whose weights are pickles only.)"""
    folder = Path(folder)
    if (folder / SAFETENSORS_FILE).is_file():
        return [folder / SAFETENSORS_FILE]
    try:
        shards = read_json(folder / SAFETENSORS_INDEX)["weight_map"].values()
    except (OSError, ValueError, UnicodeDecodeError, RecursionError, KeyError, TypeError, AttributeError):
        return []
    return sorted({folder / name for name in shards if isinstance(name, str) and Path(name).name == name})


def model_digests(folder: Path) -> dict[str, str]:
    """Hashes of a model folder's config and of every file of its weights: two folders of one
    name and config but other weights are two models (and a folder retrained since, another)."""
    import hashlib

    folder = Path(folder)
    weights = hashlib.sha256()
    for file in sorted([*safetensors_files(folder), *(folder / name for name in WEIGHT_FILES if (folder / name).is_file())]):
        with file.open("rb") as handle:
            weights.update(file.name.encode() + b"\0" + hashlib.file_digest(handle, "sha256").hexdigest().encode())
    return {"config_sha256": hashlib.sha256((folder / CONFIG_FILE).read_bytes()).hexdigest(), "weights_sha256": weights.hexdigest()}


def is_our_file(name: str) -> bool:
    return name in OUR_FILES or bool(WEIGHT_SHARD.match(name))


#: What our commands write into a model folder after its mark listed the folder's files (the
#: scores `train` and `compare` keep beside it): a new model replaces them too.
ADDED_AFTER_THE_MARK = frozenset({"compare_scores.json", "compare_scores.npz", "dev_scores.json", "dev_scores.npz"})


def ours_in(folder: Path) -> Callable[[str], bool]:
    """Which names of `folder` a new model there replaces: those its mark lists (and the scores
    kept beside it since), or, where the mark lists none (a folder from before the lists, a run
    killed before its first save), ours by name. (By name alone, re-exporting an ONNX folder took
    a user's metrics.json, a name of ours that an export never writes.)"""
    listed = files_of_ours(folder) if Path(folder).is_dir() else set()
    if listed:
        return lambda name: name in listed or name in ADDED_AFTER_THE_MARK
    return is_our_file


def replace_model_folder(stage: Path, output: Path) -> None:
    """`stage`, a whole new model folder, takes the place of the one at `output`: what its mark
    lists (all `stage` holds now: metrics, card and plots too) and our own names go, the
    user's entries stay."""
    mark_ours(stage, MODEL, files=True)
    replace_dir(stage, output, replaced=ours_in(output))


def is_model_folder_of_ours(folder: Path) -> bool:
    """Marked as a model by reviewstars, or (written before the mark) a config.json with a
    `reviewstars` section naming a kind, or a folder holding only such folders (an
    ensemble's members, say): a folder a new model may be written into."""
    mark = owner_mark(folder)
    if mark is not None:
        return mark == MODEL
    try:
        found = read_json(Path(folder) / CONFIG_FILE)
    except FileNotFoundError:
        return _only_models_of_ours(Path(folder))
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(found, dict) and isinstance(found.get(SECTION), dict) and isinstance(found[SECTION].get("kind"), str)


def _only_models_of_ours(folder: Path, depth: int = 2) -> bool:
    if depth == 0 or folder.is_symlink() or not folder.is_dir():
        return False
    entries = list(folder.iterdir())
    return bool(entries) and all(entry.is_dir() and not entry.is_symlink() and (
        is_model_folder_of_ours(entry) if (entry / CONFIG_FILE).is_file() or owner_mark(entry) else _only_models_of_ours(entry, depth - 1))
        for entry in entries)


def check_model_output(folder: str | Path, option: str = "--output", inputs: tuple[str | Path, ...] = (),
                       recipe: str | None = None, name_margin: int = SIBLING_BYTES) -> Path:
    """One line, before any work, when a model cannot be written to `folder` (see
    `artifacts.check_output_folder`); with `recipe`, also when the folder holds a trained
    model of another recipe (`check_replaces_its_own_recipe`)."""
    found = check_output_folder(folder, is_model_folder_of_ours, "model", option, inputs, name_margin)
    if recipe is not None:
        check_replaces_its_own_recipe(found, recipe, option)
    return found


def check_replaces_its_own_recipe(folder: str | Path, recipe: str, option: str = "--output") -> None:
    """A trained model is replaced by a model of its own recipe only: `train --model linear`
    again, an ensemble weighed again. An ensemble over a bag model, a linear one over a
    fine-tuned MiniLM, is a model nobody asked to lose."""
    folder = Path(folder)
    if not (folder / CONFIG_FILE).is_file():
        return
    held = recipe_of(folder)
    if held and held != recipe:
        what = f"an ONNX export of a {held} model" if folder_kind(folder) == "onnx" else f"a trained {held} model"
        raise ReviewstarsError(f"{option} {folder}: holds {what}, which a new {recipe} model would replace: "
                               "give another folder (or remove that one first)")


def recipe_named(model: str) -> str:
    """The recipe a model of `model` (a kind, an alias, a Hub id, a local base folder) records."""
    return Path(model).name if Path(model).is_absolute() or Path(model).exists() else model


@contextmanager
def model_folder(path: str | Path) -> Iterator[Path]:
    """Yield an empty staging folder that becomes the model folder `path` in one step,
    marked as ours. An existing folder must be one of ours: its files of ours are replaced,
    the user's kept."""
    path = Path(path)
    try:
        check_model_output(path, option="model folder", name_margin=TEMPORARY_BYTES)  # (a stage of ours is the name plus 5)
    except ReviewstarsError as error:
        raise ModelError(str(error)) from None
    with atomic_dir(path, replaced=ours_in(path)) as stage:
        yield stage
        mark_ours(stage, MODEL, files=True)
        modes_of_the_umask(stage)


def modes_of_the_umask(folder: Path) -> None:
    """Every file and folder written with the modes the umask asks for: a library that writes
    its weights 0600 would leave a model a serving account cannot read."""
    mask = current_umask()
    for entry in [folder, *folder.rglob("*")]:
        if not entry.is_symlink():
            entry.chmod((0o777 if entry.is_dir() else 0o666) & ~mask)


def section(kind: str, **fields: Any) -> dict[str, Any]:
    """The `reviewstars` section a folder of `kind` writes into its config."""
    return {"kind": kind, "labels": list(STARS), **fields}


def config_text(kind: str, **fields: Any) -> str:
    """A whole `config.json` for kinds that have no config of their own (linear, ensemble)."""
    return encodable(json.dumps(finite_json({SECTION: section(kind, **fields)}), indent=2, ensure_ascii=False)) + "\n"


#: The most a folder's small files (config, vocabulary, tokenizer, card) may weigh: read whole, they must fit.
MAX_SMALL_FILE_BYTES = 256 << 20


def check_folder_files(folder: str | Path) -> None:
    """Every file of a model folder is what it says before anything reads it: a regular file
    (not a link to /dev/zero, a pipe or a device, which are read until memory runs out),
    and a small one unless it holds weights, whose length their header must account for."""
    folder = Path(folder)
    try:
        entries = list(folder.iterdir())
    except OSError as error:
        raise ModelError(f"{folder}: cannot be read ({error.strerror})") from None
    for entry in entries:
        try:
            info = entry.stat()
        except OSError as error:  # a link to nowhere, or a loop of links
            if entry.is_symlink():
                raise ModelError(f"{entry}: a link that leads nowhere ({error.strerror})") from None
            raise ModelError(f"{entry}: cannot be read ({error.strerror})") from None
        if stat.S_ISDIR(info.st_mode):
            continue
        if not stat.S_ISREG(info.st_mode):
            raise ModelError(f"{entry}: not a regular file (a device, a pipe or a socket): a model folder holds files")
        if entry.suffix in (".json", ".txt", ".model", ".md", ".yaml") and info.st_size > MAX_SMALL_FILE_BYTES:
            raise ModelError(f"{entry}: {info.st_size:,} bytes, over the {MAX_SMALL_FILE_BYTES:,} a model's {entry.suffix} file may hold")


def read_config(folder: str | Path) -> dict[str, Any]:
    """A folder's `config.json`, checked to be a JSON object."""
    path = Path(folder) / CONFIG_FILE
    if path.exists() and not path.is_file():
        raise ModelError(f"{path}: not a regular file")
    try:
        config = read_json(path)
    except FileNotFoundError:
        raise ModelError(f"{folder}: not a model folder (no {CONFIG_FILE}); train one with `reviewstars train`") from None
    except RecursionError:
        raise ModelError(f"{path}: nested too deeply to be a model's config") from None
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise ModelError(f"{path}: not valid JSON ({str(error).splitlines()[0][:120]})") from None
    if not isinstance(config, dict):
        raise ModelError(f"{path}: must hold a JSON object, not {type(config).__name__}")
    labels = config.get("id2label")  # (transformers reads a list, or keys that are not numbers, with a traceback)
    if labels is not None and not (isinstance(labels, dict) and all(re.fullmatch(r"\d+", str(key)) for key in labels)):
        raise ModelError(f"{path}: id2label must map class numbers to names, as {{\"0\": \"1 star\", ...}}; "
                         f"got {json.dumps(labels, ensure_ascii=False)[:80]}")
    if not isinstance(config.get("label2id") or {}, dict):
        raise ModelError(f"{path}: label2id must map names to class numbers, as {{\"1 star\": 0, ...}}")
    return config


def read_section(folder: str | Path) -> dict[str, Any]:
    """The folder's `reviewstars` section ({} for a folder written elsewhere)."""
    found = read_config(folder).get(SECTION) or {}
    if not isinstance(found, dict):
        raise ModelError(f"{Path(folder) / CONFIG_FILE}: its '{SECTION}' entry must be an object")
    return found


def folder_kind(folder: str | Path) -> str | None:
    """The kind a model folder declares, or None when it declares none (a checkpoint from elsewhere)."""
    if not (Path(folder) / CONFIG_FILE).is_file():
        return None
    kind = read_section(folder).get("kind")
    if kind is not None and not isinstance(kind, str):
        raise ModelError(f"{Path(folder) / CONFIG_FILE}: its kind must be a name, not {type(kind).__name__}")
    return kind


def recipe_of(folder: str | Path) -> str:
    """What trained a folder, from its training record: the kind (linear, scratch, bag) or, for a
    fine-tuned encoder, its base (minilm, a Hub id, a local folder's name); "" if we did not train it.
    The folder's format (linear, transformer, onnx, ensemble) is another thing: `folder_kind`."""
    try:
        found = read_section(folder)
    except ReviewstarsError:
        return ""
    if isinstance(found.get("recipe"), str):  # a folder made by weighing others says so itself (an ensemble)
        return found["recipe"]
    training = found.get("training") or {}
    base = training.get("base_model")
    if isinstance(base, str) and base:
        return recipe_named(base)
    return str(training.get("kind") or "")


def training_of(folder: str | Path) -> dict[str, Any]:
    """What the folder's training recorded (its section's `training`): {} for a folder trained
    elsewhere, one without a readable config, or one that does not say."""
    try:
        training = read_section(folder).get("training")
    except ReviewstarsError:
        return {}
    return training if isinstance(training, dict) else {}


def calibration_notes(folder: str | Path) -> list[str]:
    """What a reader of the model's calibration error must know: why the training kept the
    model's own probabilities (a fitted temperature did not lower the dev slice's error), or
    that the temperature hit its bound (the probabilities flattened: a low error means little)."""
    calibration = training_of(folder).get("calibration")
    if not isinstance(calibration, dict):
        return []
    notes = [f"calibration: {calibration['at_bound']}"] if calibration.get("at_bound") else []
    if calibration.get("applied") is False:
        notes.append("calibration not applied: "
                     + str(calibration.get("why_not") or "a fitted temperature did not lower the dev slice's calibration error"))
    return notes


def info_of(found: dict[str, Any], *own: str) -> dict[str, Any]:
    """What a section says beyond the kind's own fields: how it was trained, for the card."""
    return {k: v for k, v in found.items() if k not in {"kind", "labels", "temperature", FOLDED, *own}}


#: The section's word for a temperature folded into the weights (folders saved before it apply theirs at predict time).
FOLDED = "temperature_in_weights"


def calibration_of(found: dict[str, Any], where: str | Path) -> tuple[float, bool]:
    """(the folder's temperature, whether its weights already hold it)."""
    folded = found.get(FOLDED, False)
    if not isinstance(folded, bool):
        raise ModelError(f"{where}: {FOLDED} must be true or false, got {folded!r}")
    return temperature_of(found, where), folded


def temperature_of(found: dict[str, Any], where: str | Path) -> float:
    """The folder's calibration temperature (1 when it has none), checked."""
    value = found.get("temperature", 1.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ModelError(f"{where}: the temperature must be a positive number, got {value!r}")
    return float(value)


def read_metrics(folder: str | Path) -> dict[str, Any] | None:
    """The folder's scores; an export's are its source's, measured before it was exported
    (`measured_on` says so)."""
    path, source = Path(folder) / METRICS_FILE, Path(folder) / SOURCE_METRICS_FILE
    if path.is_file():
        return read_json(path)
    if source.is_file():
        found = read_json(source)
        return {**found, "measured_on": "the model this one was exported from"} if isinstance(found, dict) else None
    return None


def check_weights(folder: str | Path) -> None:
    """A safetensors file cut short (an interrupted copy, a full disk) fails here in one
    line, not deep inside the loader; so does a config.json that describes a far larger
    model than its weights hold (a million layers would be built before the loader
    compares them with the weights)."""
    parameters = 0
    for file in safetensors_files(folder):
        if not file.is_file():
            raise ModelError(f"{file}: missing, though {SAFETENSORS_INDEX} names it: copy the model again")
        counted = _whole_safetensors(file)
        if counted is None:
            raise ModelError(f"{file}: truncated or not a safetensors file ({file.stat().st_size:,} bytes): "
                             "copy the model again, or train it again")
        parameters += counted
    if parameters and (Path(folder) / CONFIG_FILE).is_file():
        described = described_parameters(read_config(folder))
        if described is not None and described > 4 * parameters + 10_000_000:
            raise ModelError(f"{Path(folder) / CONFIG_FILE}: describes a model of ~{described:,} parameters, but its weights "
                             f"hold {parameters:,}: the config does not belong to these weights")


def described_parameters(config: dict[str, Any]) -> int | None:
    """About how many parameters a transformer's config describes (embeddings and the stacked
    layers), or None when it does not use the usual names."""
    try:
        layers, width = int(config["num_hidden_layers"]), int(config["hidden_size"])
        feed_forward, vocabulary = int(config.get("intermediate_size") or 4 * width), int(config.get("vocab_size") or 0)
    except (KeyError, TypeError, ValueError):
        return None
    return max(layers, 0) * (4 * width * width + 2 * width * feed_forward) + vocabulary * width


def is_whole_safetensors(file: Path) -> bool:
    return _whole_safetensors(file) is not None


def _whole_safetensors(file: Path) -> int | None:
    """The number of values the file holds when its layout is whole (an 8-byte header length,
    a JSON header, then the tensors it lists, to the last byte), else None."""
    size = file.stat().st_size
    try:
        with file.open("rb") as handle:
            (header_bytes,) = struct.unpack("<Q", handle.read(8))
            if header_bytes > min(size - 8, 100 << 20):
                return None
            header = json.loads(handle.read(header_bytes))
        tensors = [entry for name, entry in header.items() if name != "__metadata__"]
        ends = [entry["data_offsets"][1] for entry in tensors]
        values = sum(math.prod(entry["shape"]) for entry in tensors)
    except (OSError, struct.error, ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError):
        return None
    return values if 8 + header_bytes + max(ends, default=0) == size else None


def check_finite(values, where: str | Path) -> None:
    """Weights that are NaN or infinite give a model whose every answer is a lie (1 star,
    NaN probabilities): refused when loaded, not served."""
    import numpy as np

    for name, array in values:  # (name, a torch tensor or a numpy array)
        finite = bool(array.isfinite().all()) if hasattr(array, "isfinite") else bool(np.isfinite(np.asarray(array)).all())
        if not finite:
            raise ModelError(f"{where}: its weights hold NaN or infinite values ({name}): the model is broken; train it again")


def check_max_length(tokenizer, max_length, name: str, network=None) -> None:
    """`max_length` must leave room for text beside the tokenizer's own special tokens and,
    given the `network`, fit in its position embeddings: a longer one passes every check, then
    fails on the first review that long (mid-training, after the budget is spent)."""
    from ..tokenization import special_frame

    prefix, suffix = special_frame(tokenizer)
    frame = len(prefix) + len(suffix)
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length <= frame:
        raise ModelError(f"{name} {max_length!r} leaves no room for text: it must be an integer above {frame} "
                         f"(the tokenizer's own {frame} special tokens)")
    longest = positions_of(network) if network is not None else None
    if longest is not None and max_length > longest:
        raise ModelError(f"{name} {max_length}: the model reads at most {longest} tokens (its position embeddings); "
                         f"give {longest} or less")


def positions_of(network) -> int | None:
    """How many tokens a network's learned positions cover (None: it has none, or does not say),
    read from its position embedding table: RoBERTa, MPNet and their kin number positions from
    the padding id + 1 (`padding_idx` 1: a 514-row table reads 512 tokens), BERT from 0. Not
    the tokenizer's `model_max_length`: a folder we save sets it to its own max_length."""
    config = getattr(network, "config", None)
    if getattr(config, "position_biased_input", True) is False:
        return None  # relative positions only (DeBERTa): no table to run past
    for name, module in getattr(network, "named_modules", lambda: ())():
        if name.rsplit(".", 1)[-1] in ("position_embeddings", "positions") and hasattr(module, "num_embeddings"):
            padding = getattr(module, "padding_idx", None)
            return int(module.num_embeddings) - (padding + 1 if isinstance(padding, int) else 0)
    positions = getattr(config, "max_position_embeddings", None)
    return positions if isinstance(positions, int) and positions > 0 else None
