"""Pictures of results (matplotlib, headless), written atomically as PNG: every plot in one place."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .. import STARS  # noqa: E402
from .. import __version__  # noqa: E402
from ..artifacts import PNG_SOFTWARE, write_bytes  # noqa: E402
from ..models.explanation import MOVED_AT_LEAST  # noqa: E402


def save_figure(figure, path: str | Path) -> Path:
    """The PNG names reviewstars as its software: a rerun then knows the plot is its own to replace."""
    buffer = io.BytesIO()
    software = f"{PNG_SOFTWARE} {__version__} (Matplotlib {matplotlib.__version__})"
    figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight", metadata={"Software": software})
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
    from ..lessons.basics import hand_rule

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


def plot_learning_curves(curves: dict, rows, split: str, path: str | Path) -> Path:
    """Training loss and balanced-dev accuracy of every trained torch model against reviews
    seen; the held-out accuracy of each model that has no curve as a reference line."""
    figure, (loss_ax, dev_ax) = plt.subplots(1, 2, figsize=(12, 4.2))
    for row in rows:
        curve = curves.get(row.model)
        batch = (row.settings or {}).get("batch_size", 16)
        if curve and curve["train_steps"]:  # markers too: a run that logged once still shows its point
            loss_ax.plot(np.asarray(curve["train_steps"]) * batch, curve["train_loss"], marker="o", markersize=3, label=row.model)
        if curve and curve["eval_steps"]:
            dev_ax.plot(np.asarray(curve["eval_steps"]) * batch, curve["eval_accuracy"], marker="o", markersize=3, label=f"{row.model} (dev)")
        elif not curve:
            dev_ax.axhline(row.scores.accuracy, linestyle="--", color="gray", alpha=0.7, label=f"{row.model} ({split})")
    dev_ax.axhline(0.2, linestyle=":", color="black", label="chance (balanced)")
    loss_ax.set_title("training loss")
    dev_ax.set_title("accuracy on the balanced dev slice (carved from train)")
    for ax in (loss_ax, dev_ax):
        ax.set_xlabel("training reviews seen")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    return save_figure(figure, path)


def plot_accuracy_vs_time(rows, split: str, path: str | Path) -> Path:
    from matplotlib.ticker import LogLocator, NullFormatter

    figure, ax = plt.subplots(figsize=(6.5, 4.2))
    trained = {row.model: row.train_seconds for row in rows if row.train_seconds is not None}
    for row in rows:
        members = (row.settings or {}).get("members")  # an ensemble's: it took their training time
        if row.train_seconds is None and members:  # an ensemble costs what its members cost to train
            seconds = sum(trained.get(member, 0.0) for member in members)
        elif row.train_seconds is None:
            continue  # evaluate-only: trained elsewhere, no time to place it at
        else:
            seconds = row.train_seconds
        seconds = max(seconds, 1e-1)
        accuracy = row.scores.accuracy
        if row.scores.intervals.get("accuracy"):  # the 95% interval: overlapping bars are worth a look at the tie marks
            low, high = row.scores.intervals["accuracy"]
            ax.errorbar([seconds], [accuracy], yerr=[[accuracy - low], [high - accuracy]], fmt="none", ecolor="gray", capsize=3)
        ax.scatter([seconds], [accuracy], s=60)
        ax.annotate(row.model, (seconds, accuracy), textcoords="offset points", xytext=(6, 4), fontsize=9)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10))
    ax.xaxis.set_minor_formatter(NullFormatter())  # minor tick labels overlapped the major ones
    ax.set_xlabel("training time (s, log scale; an ensemble at its members' sum)")
    ax.set_ylabel(f"accuracy on {split}")
    ax.set_title("accuracy against training time")
    ax.grid(alpha=0.3, which="both")
    return save_figure(figure, path)


def plot_confusion_matrices(confusions: dict, path: str | Path) -> Path:
    figure, axes = plt.subplots(1, len(confusions), figsize=(4.6 * len(confusions), 4.3), squeeze=False)
    for ax, (model, matrix) in zip(axes[0], confusions.items()):
        draw_confusion_matrix(ax, matrix, model)
    return save_figure(figure, path)


def plot_reliability(reliability: dict, path: str | Path) -> Path:
    """Confidence against accuracy in 15 bins, per model: on the diagonal, a probability means what it says."""
    figure, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], linestyle=":", color="gray", label="perfectly calibrated")
    for model, bins in reliability.items():
        shown = np.asarray(bins.count) > 0
        ax.plot(np.asarray(bins.confidence)[shown], np.asarray(bins.accuracy)[shown], marker="o", markersize=3, label=model)
    ax.set_xlabel("confidence (the highest of the five probabilities)")
    ax.set_ylabel("accuracy")
    ax.set_title("reliability (after calibration)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(figure, path)


# --------------------------------------------------------------------------- explain

#: Reviews drawn in one `explain` plot (the JSON has them all): more panels do not read.
PLOT_REVIEWS_AT_MOST = 12


def literal(text: str) -> str:
    """A review's words as written: a `$` would start Matplotlib's mathematics ("$12 for $3 fries")."""
    return text.replace("$", r"\$")


def plot_word_effects(explanations, path: str | Path, top: int = 8) -> Path:
    """Per review, the words that raised its rating most (green) and lowered it most (red), in stars."""
    shown = list(explanations)[:PLOT_REVIEWS_AT_MOST]
    heights = [max(len(e.strongest(top, True)) + len(e.strongest(top, False)), 1) for e in shown]
    # One scale for all: a review whose words hardly move it shows short bars, not a zoomed-in axis.
    figure, axes = plt.subplots(len(shown), 1, figsize=(7, sum(0.32 * h + 1.1 for h in heights)), squeeze=False, sharex=True,
                                gridspec_kw={"height_ratios": heights}, layout="constrained")
    for ax, explanation in zip(axes[:, 0], shown):
        words = explanation.strongest(top, True)[::-1] + explanation.strongest(top, False)
        words = sorted(words, key=lambda w: w.stars_effect)  # most lowering at the bottom, most raising on top
        effects = [w.stars_effect for w in words]
        ax.barh(range(len(words)), effects, color=["tab:green" if e > 0 else "tab:red" for e in effects])
        ax.set_yticks(range(len(words)), [literal(w.word) for w in words], fontsize=9)
        ax.axvline(0, color="black", linewidth=0.8)
        head = " ".join(explanation.text.split())
        head = head if len(head) <= 70 else head[:67] + "..."
        ax.set_title(f"{explanation.stars}★ (expected {explanation.expected_stars:.2f}): {literal(head)}", fontsize=9, loc="left")
        if not words:
            ax.text(0.5, 0.5, f"no word moved the rating by {MOVED_AT_LEAST} stars or more" if explanation.words else "no words to explain", ha="center", va="center", transform=ax.transAxes, fontsize=9)
        ax.grid(alpha=0.3, axis="x")
        ax.tick_params(axis="x", labelbottom=True)  # each panel keeps its scale, though they share it
    axes[-1, 0].set_xlabel("effect on the expected stars (with the word - without it)")
    return save_figure(figure, path)
