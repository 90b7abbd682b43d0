"""Pictures of results (matplotlib, headless), written atomically as PNG."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from . import STARS  # noqa: E402
from .artifacts import write_bytes, write_text  # noqa: E402


def save_figure(figure, path: str | Path) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(figure)
    return write_bytes(path, buffer.getvalue())


def draw_confusion_matrix(ax, matrix: Sequence[Sequence[int]], title: str = "") -> None:
    """Row-normalised colours (recall per true class) with raw counts written in."""
    counts = np.asarray(matrix)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            ax.text(j, i, f"{counts[i, j]}\n{shares[i, j]:.0%}", ha="center", va="center", fontsize=8,
                    color="white" if shares[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(STARS)), [f"{s}★" for s in STARS])
    ax.set_yticks(range(len(STARS)), [f"{s}★" for s in STARS])
    ax.set_xlabel("predicted stars")
    ax.set_ylabel("true stars")
    ax.set_title(title)


def plot_confusion_matrix(matrix: Sequence[Sequence[int]], path: str | Path, title: str = "confusion matrix") -> Path:
    figure, ax = plt.subplots(figsize=(5.2, 4.6))
    draw_confusion_matrix(ax, matrix, title)
    return save_figure(figure, path)


def learning_curve_points(log_history: list[dict]) -> dict[str, list]:
    """Training loss and validation accuracy against step, from the Trainer's log."""
    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e]
    evals = [(e["step"], e["eval_accuracy"]) for e in log_history if "eval_accuracy" in e]
    return {
        "train_steps": [s for s, _ in train], "train_loss": [v for _, v in train],
        "eval_steps": [s for s, _ in evals], "eval_accuracy": [v for _, v in evals],
    }


def plot_learning_curve(log_history: list[dict], path: str | Path, title: str = "learning curve") -> Path:
    points = learning_curve_points(log_history)
    figure, loss_ax = plt.subplots(figsize=(7, 4))
    loss_ax.plot(points["train_steps"], points["train_loss"], color="tab:red", marker=".", label="training loss")
    loss_ax.set_xlabel("step")
    loss_ax.set_ylabel("training loss", color="tab:red")
    accuracy_ax = loss_ax.twinx()
    accuracy_ax.plot(points["eval_steps"], points["eval_accuracy"], color="tab:blue", marker="o", label="dev accuracy")
    accuracy_ax.set_ylabel("dev accuracy (held out from train)", color="tab:blue")
    accuracy_ax.set_ylim(0, 1)
    loss_ax.set_title(title)
    loss_ax.grid(alpha=0.3)
    return save_figure(figure, path)


def plot_circles(lesson, path: str | Path) -> Path:
    """The data with the decision boundary of the hand rule, the line and the network; the loss curves."""
    from .basics import hand_rule

    points, labels = lesson.points, lesson.labels
    grid = np.linspace(-1.4, 1.4, 300, dtype=np.float32)
    gx, gy = np.meshgrid(grid, grid)
    flat = np.stack([gx.ravel(), gy.ravel()], axis=1)
    fits = {f.name: f for f in lesson.fits}
    panels = [
        (f"hand rule: {lesson.rule_accuracy:.1%}", hand_rule),
        (f"linear model: {fits['linear'].accuracy:.1%}", fits["linear"].predict),
        (f"network, SGD: {fits['network_sgd'].accuracy:.1%}", fits["network_sgd"].predict),
        (f"network, Adam: {fits['network_adam'].accuracy:.1%}", fits["network_adam"].predict),
    ]
    figure, axes = plt.subplots(1, 5, figsize=(22, 4.4))
    for ax, (title, predict) in zip(axes, panels):
        ax.contourf(gx, gy, predict(flat).reshape(gx.shape), levels=[-0.5, 0.5, 1.5], colors=["#cfe3f7", "#f7d6cf"], alpha=0.8)
        ax.scatter(points[labels == 0, 0], points[labels == 0, 1], s=4, c="tab:blue", label="inside")
        ax.scatter(points[labels == 1, 0], points[labels == 1, 1], s=4, c="tab:red", label="outside")
        ax.set_aspect("equal")
        ax.set_title(title)
    axes[0].legend(loc="upper right", fontsize=8)
    for fit in lesson.fits:
        axes[4].plot(fit.losses, label=fit.name.replace("_", ", "))
    axes[4].set_yscale("log")
    axes[4].set_xlabel("epoch")
    axes[4].set_ylabel("binary cross-entropy")
    axes[4].set_title("training loss")
    axes[4].legend(fontsize=8)
    return save_figure(figure, path)


def plot_vocabulary_growth(growth: dict, path: str | Path, tokenizer_name: str = "sub-word") -> Path:
    figure, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(growth["reviews"], growth["word_vocabulary"], marker="o", label="word tokens (regex)")
    ax.plot(growth["reviews"], growth["subword_vocabulary"], marker="s", label=f"sub-word tokens ({tokenizer_name})")
    ax.axhline(growth["tokenizer_vocabulary"], color="gray", linestyle=":", label=f"tokenizer vocabulary ({growth['tokenizer_vocabulary']:,})")
    crossover = growth.get("subword_smaller_from_reviews")
    if crossover:
        ax.axvline(crossover, color="tab:green", linestyle="--", label=f"sub-words fewer from {crossover:,} reviews")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("reviews")
    ax.set_ylabel("distinct tokens seen")
    ax.set_title("vocabulary growth")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return save_figure(figure, path)


# --------------------------------------------------------------------------- the compare report


def plot_learning_curves(curves: dict, leaderboard: dict, path: str | Path) -> Path:
    """Dev accuracy of every trained transformer against reviews seen; linear as a reference line."""
    figure, ax = plt.subplots(figsize=(7.5, 4.5))
    batch = 16
    for model, curve in curves.items():
        if curve and curve["eval_steps"]:
            ax.plot(np.asarray(curve["eval_steps"]) * batch, curve["eval_accuracy"], marker="o", markersize=3, label=f"{model} (dev)")
    for row in leaderboard["models"]:
        if row["kind"] == "linear":
            ax.axhline(row["accuracy"], linestyle="--", color="gray", label=f"{row['model']} ({leaderboard['split']})")
    ax.set_xlabel("training reviews seen (steps x batch 16)")
    ax.set_ylabel("accuracy")
    ax.set_title("learning curves")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(figure, path)


def plot_accuracy_vs_time(leaderboard: dict, path: str | Path) -> Path:
    figure, ax = plt.subplots(figsize=(6.5, 4.2))
    for row in leaderboard["models"]:
        seconds = row["train_seconds"] or 0.0
        ax.scatter([max(seconds, 1e-1)], [row["accuracy"]], s=60)
        ax.annotate(row["model"], (max(seconds, 1e-1), row["accuracy"]), textcoords="offset points", xytext=(6, 4), fontsize=9)
    ax.set_xscale("log")
    ax.set_xlabel("training time (s, log scale; 0 for evaluate-only)")
    ax.set_ylabel(f"accuracy on {leaderboard['split']}")
    ax.set_title("accuracy against training time")
    ax.grid(alpha=0.3, which="both")
    return save_figure(figure, path)


def plot_confusion_matrices(confusions: dict, path: str | Path) -> Path:
    figure, axes = plt.subplots(1, len(confusions), figsize=(4.6 * len(confusions), 4.3), squeeze=False)
    for ax, (model, matrix) in zip(axes[0], confusions.items()):
        draw_confusion_matrix(ax, matrix, model)
    return save_figure(figure, path)


def _leaderboard_rows(leaderboard: dict) -> tuple[list[str], list[list[str]]]:
    header = ["rank", "model", "accuracy", "macro-F1", "MAE (stars)", "off-by-one", "parameters", "train s", "reviews seen", "predictions/s"]
    rows = []
    for rank, r in enumerate(leaderboard["models"], start=1):
        rows.append([
            str(rank), r["model"], f"{r['accuracy']:.4f}", f"{r['macro_f1']:.4f}", f"{r['mae']:.3f}", f"{r['off_by_one_accuracy']:.4f}",
            f"{r['parameters']:,}", "-" if r["train_seconds"] is None else f"{r['train_seconds']:,.0f}",
            "-" if r["train_examples_seen"] is None else f"{r['train_examples_seen']:,}",
            "-" if r["predictions_per_second"] is None else f"{r['predictions_per_second']:,.0f}",
        ])
    return header, rows


IMAGES = {
    "learning_curves.png": "Learning curves",
    "accuracy_vs_time.png": "Accuracy against training time",
    "confusion_matrices.png": "Confusion matrices (rows: true stars)",
}


def write_compare_report(output: str | Path, leaderboard: dict, curves: dict, confusions: dict, best: str, mistakes: list[dict]) -> dict[str, Path]:
    """report.md (images beside it) and report.html (self-contained, images inline)."""
    import base64
    import html

    output = Path(output)
    plot_learning_curves(curves, leaderboard, output / "learning_curves.png")
    plot_accuracy_vs_time(leaderboard, output / "accuracy_vs_time.png")
    plot_confusion_matrices(confusions, output / "confusion_matrices.png")
    header, rows = _leaderboard_rows(leaderboard)
    budget = leaderboard.get("time_budget_seconds")
    settings = (
        f"data `{leaderboard['data']}`, scored on `{leaderboard['split']}` ({leaderboard['n']:,} reviews), seed {leaderboard['seed']}"
        + (f", train size {leaderboard['train_size']:,}" if leaderboard.get("train_size") else "")
        + (f", time budget {budget / 60:g} min per model" if budget else "")
    )

    md = ["# reviewstars: model comparison", "", settings, "", "## Leaderboard", "",
          "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(row) + " |" for row in rows]
    for file, title in IMAGES.items():
        md += ["", f"## {title}", "", f"![{title}]({file})"]
    md += ["", f"## Where the best model ({best}) is most wrong", "", "| true | predicted | confidence | review |", "|---|---|---|---|"]
    for m in mistakes:
        text = m["text"].replace("\n", " ").replace("|", "\\|")
        md.append(f"| {m['true_stars']}★ | {m['predicted_stars']}★ | {m['confidence']:.2f} | {text[:300]}{'...' if len(text) > 300 else ''} |")
    write_text(output / "report.md", "\n".join(md) + "\n")

    def image(file: str, title: str) -> str:
        data = base64.b64encode((output / file).read_bytes()).decode("ascii")
        return f'<h2>{html.escape(title)}</h2><img alt="{html.escape(title)}" src="data:image/png;base64,{data}">'

    table = "<table id='leaderboard'><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead><tbody>"
    table += "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows) + "</tbody></table>"
    wrong = "<table><thead><tr><th>true</th><th>predicted</th><th>confidence</th><th>review</th></tr></thead><tbody>"
    wrong += "".join(
        f"<tr><td>{m['true_stars']}★</td><td>{m['predicted_stars']}★</td><td>{m['confidence']:.2f}</td><td class='review'>{html.escape(m['text'])}</td></tr>"
        for m in mistakes
    ) + "</tbody></table>"
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>reviewstars: model comparison</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }} th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
th {{ background: #f3f3f3; }} td.review {{ text-align: left; max-width: 700px; font-size: 90%; }}
#leaderboard tbody tr:first-child {{ background: #eaf6ea; font-weight: 600; }} img {{ max-width: 100%; }}
</style></head>
<body data-images-loaded="0">
<h1>reviewstars: model comparison</h1>
<p>{html.escape(settings.replace('`', ''))}</p>
<h2>Leaderboard</h2>
{table}
{''.join(image(f, t) for f, t in IMAGES.items())}
<h2>Where the best model ({html.escape(best)}) is most wrong</h2>
{wrong}
<script>
window.addEventListener("load", () => {{
  const shown = [...document.images].filter(img => img.complete && img.naturalWidth > 0).length;
  document.body.dataset.imagesLoaded = String(shown);
}});
</script>
</body></html>
"""
    write_text(output / "report.html", page)
    return {"markdown": output / "report.md", "html": output / "report.html"}
