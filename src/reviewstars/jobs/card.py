"""The model card: a folder's README.md says what the model is, what it saw, how it scored.

Its YAML header is the Hub's card metadata, built with `huggingface_hub.ModelCardData`
(offline: nothing here touches the network), so the Hub and tools that read cards see
the base model, the data and the measured scores (no licence: see `card_data`) (`model-index`).
"""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..data import DEFAULT_DATASET
from ..models.folder import CARD_USE, CONFUSION_FILE, EXAMPLE_REVIEW, LEARNING_CURVE_PNG, recipe_named
from ..scoring.scores import Scores
from .result import TrainResult

TAGS = ["text-classification", "sentiment", "star-rating", "reviewstars"]
#: The Hub id of the weights each offline alias ships.
ALIAS_HUB_IDS = {"minilm": "sentence-transformers/all-MiniLM-L6-v2"}


def model_card(predictor, result: TrainResult, kind) -> str:
    data = card_data(result, kind)
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(_body(predictor, result, kind))))


def card_data(result: TrainResult, kind) -> ModelCardData:
    """The card's metadata: what the Hub shows beside the model and lists it under."""
    dataset_type, dataset_name, is_yelp = _dataset(result.data["data"])
    scores = result.metrics
    evaluated = [] if scores is None else [
        EvalResult(task_type="text-classification", dataset_type=dataset_type, dataset_name=dataset_name,
                   dataset_split=scores.split, metric_type=metric, metric_name=name, metric_config=config,
                   metric_value=float(getattr(scores, item.name)))
        for item in Scores.metrics() if item.metadata["card"] and getattr(scores, item.name) is not None
        for metric, name, config in [item.metadata["card"]]
    ]
    return ModelCardData(
        model_name=Path(result.output).resolve().name or "reviewstars-model",  # (`--output .`: the folder's own name)
        base_model=_hub_id(result.base_model),
        datasets=[DEFAULT_DATASET] if is_yelp else None,  # the Hub's set only: a local file is not it, whatever its name
        # No licence claimed: the weights inherit the terms of the reviews they learned from, which reviewstars cannot know.
        # Plain `transformers` opens a fine-tuned pretrained encoder; our own architectures need this package.
        library_name="transformers" if kind.pretrained is not None else "reviewstars",
        pipeline_tag="text-classification",
        tags=TAGS + ["yelp"] * is_yelp,
        metrics=[e.metric_type for e in evaluated] or None,
        eval_results=evaluated or None,
    )


def _dataset(data: str) -> tuple[str, str, bool]:
    """(type, name, whether it is the Hub's Yelp Review Full) of `--data`: the Hub's set by its
    id; a local file or folder by its own name, never its path on this machine (nor the
    Hub's name: a local copy may hold other reviews)."""
    if data == DEFAULT_DATASET:
        return DEFAULT_DATASET, "Yelp Review Full", True
    path = Path(data)
    return (path.name, path.name, False) if path.exists() else (data, data, False)


def _hub_id(base_model: str | None) -> str | None:
    """The base model as the Hub names it; None for a local folder (no Hub id to give). An
    alias is the alias even beside a folder of its name, as `train` reads it."""
    if base_model in ALIAS_HUB_IDS:
        return ALIAS_HUB_IDS[base_model]
    if base_model is None or Path(base_model).exists():
        return None
    return base_model


def _body(predictor, result: TrainResult, kind) -> list[str]:
    """The human part: training, settings, plan, results, the kind's own lines, usage."""
    data = result.data
    base = result.base_model
    recipe = recipe_named(base) if base else kind.name  # as leaderboard rows name it (`models.folder.recipe_of`)
    lines = [
        f"# reviewstars `{recipe}` model: review -> stars (1 to 5)",
        "",
        f"Recipe `{recipe}`: {kind.summary}. Folder format: `{predictor.kind}`.",
        "",
        "## Training",
        "",
    ]
    if result.base_model:
        lines.append(f"- fine-tuned from: `{result.base_model}`")
    shown = _dataset(data["data"])[1]
    lines += [
        f"- data: `{shown}` ({result.train_examples:,} training reviews, {result.train_examples_seen:,} seen, seed {data['seed']})",
        f"- training time: {result.train_seconds} s",
        f"- parameters: {predictor.num_parameters:,}",
    ]
    for title, values in (("Architecture", result.architecture), ("Settings", result.settings), ("Training plan", result.plan)):
        if values:
            lines += ["", f"## {title}", "", *[f"- `{k}`: {v}" for k, v in values.items()]]
    if result.log_history:
        lines += ["", f"![learning curve]({LEARNING_CURVE_PNG})"]
    calibration = result.calibration or {}
    if calibration:
        lines += ["", "## Calibration", "", f"- temperature {calibration['temperature']} fitted on {calibration['dev_reviews']:,} "
                  f"dev reviews: calibration error {calibration['dev_ece_before']} -> {calibration['dev_ece_after']}"
                  + ("" if calibration.get("applied", True) else f"; not applied: {calibration.get('why_not', '')}")]
    scores = result.metrics
    if scores is not None and scores.warnings:
        lines += ["", "## Warnings", "", *[f"- {line}" for line in scores.warnings]]
    if scores is not None:
        held_out = " (held out of the training file: the data has no validation or test split)" if scores.split == "held-out" else ""
        shown = scores.computed()
        lines += [
            "",
            f"## Results on `{scores.split}` ({scores.n:,} reviews){held_out}",
            "",
            "| " + " | ".join(f.metadata["header"] for f in shown) + " |",
            "|" + "---|" * len(shown),
            "| " + " | ".join(f.metadata["format"].format(getattr(scores, f.name)) for f in shown) + " |",
            "",
            f"![confusion matrix]({CONFUSION_FILE})",
        ]
    if kind.card is not None:
        lines += ["", *kind.card(predictor)]
    lines += ["", *CARD_USE, ""]
    if kind.pretrained is not None:  # a plain transformers folder: its calibration is in its weights
        max_length = getattr(predictor, "max_length", 512)
        lines += [
            "With `transformers` alone (the same probabilities: the calibration is in the weights):",
            "",
            "```python",
            "from transformers import pipeline",
            'classify = pipeline("text-classification", model="THIS_FOLDER", top_k=None)',
            f'classify("{EXAMPLE_REVIEW}", truncation=True)',
            "```",
            "",
            f"`truncation=True` keeps a review's first {max_length} tokens; `reviewstars predict` keeps its first quarter "
            "and the rest from its end, which reads long reviews better. Without it a review longer than the model's "
            "positions fails.",
            "",
        ]
    elif kind.uses_torch:
        module = "reviewstars.models." + str(getattr(predictor.model.config, "model_type", "")).removeprefix("reviewstars-")
        lines += [
            f"Its architecture is reviewstars' own: with `pip install reviewstars`, `import {module}` registers it with "
            "`transformers`' Auto classes, and `AutoModelForSequenceClassification.from_pretrained(THIS_FOLDER)` opens it.",
            "",
        ]
    return lines
