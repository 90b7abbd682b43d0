"""The compare report: report.md (images beside it) and a self-contained report.html.

Both are made from the same typed rows as the terminal's leaderboard, so every column
declared in `results.LeaderboardRow` appears in all three.
"""

from __future__ import annotations

import base64
import html
import platform
from pathlib import Path

from ..artifacts import write_text
from .plots import plot_accuracy_vs_time, plot_confusion_matrices, plot_learning_curves, plot_reliability
from .tables import cell
from ..scoring.leaderboard import leaderboard_table
from ..scoring.scores import calibration_verdict
from ..training.settings import format_duration

IMAGES = {
    "learning_curves.png": "Learning curves",
    "accuracy_vs_time.png": "Accuracy against training time",
    "confusion_matrices.png": "Confusion matrices (rows: true stars)",
    "reliability.png": "Reliability (calibrated probabilities)",
}
#: Drawn from the models' training: none when every model was trained elsewhere (--evaluate-only).
TRAINING_IMAGES = ("learning_curves.png", "accuracy_vs_time.png")
SETTINGS_SHOWN = ("max_length", "learning_rate", "batch_size", "time_budget", "epochs", "layers", "width", "dim", "C", "min_df")


def _machine() -> str:
    import os

    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    except ImportError:  # pragma: no cover - torch is a dependency
        gpu = "no GPU"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, {gpu}"


def _settings_line(row) -> str:
    settings = row.settings or {}
    if isinstance(settings.get("members"), list) and isinstance(settings.get("weights"), list):  # an ensemble: what it weighs
        weighed = ", ".join(f"{member} {weight:.2f}" for member, weight in zip(settings["members"], settings["weights"]))
        left_out = settings.get("left_out") if isinstance(settings.get("left_out"), list) else []
        return weighed + "".join(f", {member} left out" for member in left_out)
    used = {k: v for k, v in settings.items() if k in SETTINGS_SHOWN and v is not None}
    if used.get("time_budget"):  # the clock ends such a run: its --epochs was never read
        used.pop("epochs", None)
    return ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in used.items()) or "-"


def _summary(leaderboard: dict) -> str:
    data, budget = leaderboard["data"], leaderboard.get("time_budget_seconds")
    return (f"data `{data['data']}`, scored on `{leaderboard['split']}` ({leaderboard['n']:,} reviews), seed {data['seed']}"
            + (f", train size {data['train_size']:,}" if data.get("train_size") else "")
            + (f", time budget {format_duration(budget)} per model" if budget else "")  # as given: 20s, not 0.333333 min
            + f"; machine: {_machine()}")


def _warnings(rows) -> list[str]:
    """Models whose numbers mean little (they saw too few reviews, score near chance...): each row's own."""
    return [f"{row.model} {line}" for row in rows for line in row.warnings]


def write_compare_report(output: str | Path, leaderboard: dict, rows, curves: dict, confusions: dict, mistakes: dict,
                         reliability: dict) -> dict[str, Path]:
    output = Path(output)
    split = leaderboard["split"]
    images = dict(IMAGES)
    if any(row.train_seconds is not None for row in rows):
        plot_learning_curves(curves, rows, split, output / "learning_curves.png")
        plot_accuracy_vs_time(rows, split, output / "accuracy_vs_time.png")
    else:  # only --evaluate-only folders: no training here to draw (a rerun's old pictures go too)
        for file in TRAINING_IMAGES:
            images.pop(file)
            (output / file).unlink(missing_ok=True)
    plot_confusion_matrices(confusions, output / "confusion_matrices.png")
    plot_reliability(reliability, output / "reliability.png")
    header, cells = leaderboard_table(rows)
    summary = _summary(leaderboard) + (f"; stars decided by the {leaderboard['decision']} of each distribution"
                                       if leaderboard.get("decision", "argmax") != "argmax" else "")
    warnings = _warnings(rows)
    sections = _sections(rows, confusions, mistakes)
    legend = TIES_LEGEND if any(r.tied for r in rows) else ""
    write_text(output / "report.md", _markdown(summary, header, cells, legend, warnings, sections, images))
    write_text(output / "report.html", _html(output, summary, header, cells, legend, warnings, sections, images))
    return {"markdown": output / "report.md", "html": output / "report.html"}


def _sections(rows, confusions: dict, mistakes: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of each table below the leaderboard."""
    n = sum(sum(r) for r in next(iter(confusions.values()))) if confusions else 0
    counts = [sum(r) for r in next(iter(confusions.values()))] if confusions else []
    majority = max(counts) / n if n else 0.0
    baselines = ("Baselines", ["what", "accuracy"], [["chance (uniform guess)", "0.2000"],
                                                     ["always the most frequent star", f"{majority:.4f}"]])
    settings = ("Settings each model used", ["model", "recipe", "format", "settings"], [[r.model, r.recipe, r.format, _settings_line(r)] for r in rows])
    per_class = ["model", *[f"{s}★ P / R / F1" for s in range(1, 6)]]
    per_class_rows = []
    for r in rows:  # the scores' own figures ("-": undefined, a star never predicted or not among the reviews)
        per_class_rows.append([r.model, *[" / ".join(cell(r.scores.per_class[str(s)][name], 2) for name in ("precision", "recall", "f1"))
                                          for s in range(1, 6)]])
    ties = ("How sure the ranking is (McNemar's exact test against the first of its rank, or of the rank above for the first of a rank)",
            ["rank", "model", "tested against", "p-value"],
            [[f"{r.rank}{'=' if r.tied else ''}", r.model, r.tested_against or "-",
              "-" if r.p_value_vs_leader is None else f"{r.p_value_vs_leader:.3g}"] for r in rows])
    calibration = ("Calibration (expected calibration error, 15 bins; temperature fitted on the dev slice; the noise floor is "
                   "what a perfectly calibrated model would show on these reviews)",
                   ["model", "ECE before", "ECE after", "noise floor: mean (95th percentile)", "after, read against the floor"],
                   [[r.model, r.scores.shown("ece_uncalibrated"), r.scores.shown("ece"),
                     *(["-", "-"] if (s := r.scores).ece_noise_95 is None else
                       [f"{s.ece_noise_floor:.3f} ({s.ece_noise_95:.3f})", calibration_verdict(s.ece, s.ece_noise_floor, s.ece_noise_95)])]
                    for r in rows])
    out = [baselines, ties, settings, calibration, ("Per class: precision / recall / F1", per_class, per_class_rows)]
    for r in rows:
        found = mistakes.get(r.model) or []
        out.append((f"Where {r.model} is most wrong", ["true", "predicted", "confidence", "review"],
                    [[f"{m['true_stars']}★", f"{m['predicted_stars']}★", f"{m['confidence']:.2f}", m["text"]] for m in found]))
    return out


def _md_cell(text: str, limit: int | None = None) -> str:
    """Text as it reads, in a Markdown table cell: a `|` does not end the cell, and a review's
    (or a folder name's) `<script>` is shown, not handed to the renderer as HTML."""
    text = text if limit is None or len(text) <= limit else text[:limit] + "..."
    return text.replace("\n", " ").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


#: Said under the leaderboard when a rank is shared.
TIES_LEGEND = "after a rank: McNemar's exact test cannot tell these models apart at the 5% level on these reviews."


def _markdown(summary, header, cells, legend, warnings, sections, images) -> str:
    md = ["# reviewstars: model comparison", "", summary, "", "## Leaderboard", "",
          "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in cells]
    md += ["", f"`=` {legend}"] if legend else []
    for warning in warnings:  # a blank line between: consecutive quoted lines render as one paragraph
        md += ["", f"> **warning:** {_md_cell(warning)}"]
    for file, title in images.items():
        md += ["", f"## {title}", "", f"![{title}]({file})"]
    for title, head, rows in sections:
        md += ["", f"## {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        md += ["| " + " | ".join(_md_cell(c, 300) for c in row) + " |" for row in rows]
    return "\n".join(md) + "\n"


def _html_table(header, rows, table_id: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_html_cell(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table{f' id={table_id!r}' if table_id else ''}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_cell(text: str) -> str:
    """A value's interval goes on its own line and is never split, as in the terminal's table."""
    value, bracket, interval = text.partition(" (")
    if bracket and interval.endswith(")") and value.replace(".", "", 1).isdigit():
        return f"{html.escape(value)}<br><span class='interval'>({html.escape(interval)}</span>"
    return html.escape(text)


def _html(output: Path, summary, header, cells, legend, warnings, sections, images) -> str:
    def image(file: str, title: str) -> str:
        data = base64.b64encode((output / file).read_bytes()).decode("ascii")
        return f'<h2>{html.escape(title)}</h2><img alt="{html.escape(title)}" src="data:image/png;base64,{data}">'

    notes = "".join(f"<p class='warning'>warning: {html.escape(w)}</p>" for w in warnings)
    tables = "".join(f"<h2>{html.escape(t)}</h2>{_html_table(h, r)}" for t, h, r in sections)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>reviewstars: model comparison</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }} th, td {{ border: 1px solid #ccc; padding: 4px 6px; text-align: right; }}
#leaderboard {{ font-size: 85%; width: 100%; }} #leaderboard th {{ font-size: 90%; hyphens: auto; }}
th {{ background: #f3f3f3; }} td:last-child {{ text-align: left; max-width: 700px; font-size: 90%; }}
#leaderboard td:last-child {{ text-align: right; font-size: 100%; }}
#leaderboard td:nth-child(2) {{ overflow-wrap: anywhere; }} /* a folder's long path breaks, not the page */
#leaderboard tbody tr:first-child {{ background: #eaf6ea; font-weight: 600; }} img {{ max-width: 100%; }}
.interval {{ white-space: nowrap; color: #555; font-size: 90%; }}
.warning {{ color: #8a5300; background: #fff6e0; padding: 4px 8px; }}
@media print {{ body {{ max-width: none; margin: 0; }} img {{ break-inside: avoid; }} table {{ font-size: 80%; }} }}
</style></head>
<body data-images-loaded="0">
<h1>reviewstars: model comparison</h1>
<p>{html.escape(summary.replace('`', ''))}</p>
<h2>Leaderboard</h2>
{_html_table(header, cells, "leaderboard")}
{f"<p><code>=</code> {html.escape(legend)}</p>" if legend else ""}
{notes}
{''.join(image(f, t) for f, t in images.items())}
{tables}
<script>
window.addEventListener("load", () => {{
  const shown = [...document.images].filter(img => img.complete && img.naturalWidth > 0).length;
  document.body.dataset.imagesLoaded = String(shown);
  const board = document.getElementById("leaderboard");  // wider than the page: a column hides behind a scrollbar
  document.body.dataset.leaderboardOverflow = String(Math.max(0, board.scrollWidth - document.body.clientWidth));
}});
</script>
</body></html>
"""
