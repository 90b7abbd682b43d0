"""The model card: a folder's README.md says what the model is, what it saw, how it scored."""

from __future__ import annotations

from ..models.folder import CONFUSION_FILE, LEARNING_CURVE_PNG
from ..results import TrainResult


def model_card(predictor, result: TrainResult, kind) -> str:
    data = result.data
    lines = [
        "---",
        "library_name: reviewstars",
        "tags: [text-classification, sentiment, yelp, star-rating]",
        "---",
        "",
        f"# reviewstars `{predictor.kind}` model: review -> stars (1 to 5)",
        "",
        f"Kind `{kind.name}`: {kind.summary}.",
        "",
        "## Training",
        "",
    ]
    if result.base_model:
        lines.append(f"- fine-tuned from: `{result.base_model}`")
    lines += [
        f"- data: `{data['data']}` ({result.train_examples:,} training reviews, {result.train_examples_seen:,} seen, seed {data['seed']})",
        f"- training time: {result.train_seconds} s",
        f"- parameters: {predictor.num_parameters:,}",
    ]
    for title, values in (("Architecture", result.architecture), ("Settings", result.settings), ("Training plan", result.plan)):
        if values:
            lines += ["", f"## {title}", "", *[f"- `{k}`: {v}" for k, v in values.items()]]
    if result.log_history:
        lines += ["", f"![learning curve]({LEARNING_CURVE_PNG})"]
    metrics = result.metrics
    if metrics:
        lines += [
            "",
            f"## Results on `{metrics['split']}` ({metrics['n']:,} reviews)",
            "",
            "| accuracy | macro-F1 | MAE (stars) | off-by-one accuracy |",
            "|---|---|---|---|",
            f"| {metrics['accuracy']:.4f} | {metrics['macro_f1']:.4f} | {metrics['mae']:.3f} | {metrics['off_by_one_accuracy']:.4f} |",
            "",
            f"![confusion matrix]({CONFUSION_FILE})",
        ]
    if kind.card is not None:
        lines += ["", *kind.card(predictor)]
    lines += [
        "",
        "## Use",
        "",
        "```bash",
        'reviewstars predict --model THIS_FOLDER "The food was great but the service was slow."',
        "```",
        "",
    ]
    return "\n".join(lines)
