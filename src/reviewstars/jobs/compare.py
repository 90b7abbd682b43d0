"""The lesson's ladder as one command: train each model on the same splits, score, report.

    linear -> bag -> scratch -> minilm (or any pretrained encoder)

Every model sees the same training reviews and is scored on the same held-out reviews,
under the same time budget when one is given. Every name is checked before any model
trains. A model already trained with the same settings is reused, and a model is
scored once: `train` keeps its scores on the held-out reviews beside it, keyed by those
reviews, and this reads them back.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import STARS
from ..artifacts import check_output_folder, mark_ours, owner_mark, read_json, write_json, written_together
from ..data import DataSettings
from ..errors import Interrupted, ModelError, Terminated, TrainingInterrupted
from ..kinds import KINDS, check_model_name
from ..models import load_predictor, looks_like_a_path
from ..models.ensemble import KIND as ENSEMBLE
from ..models.folder import CONFIG_FILE, LEARNING_CURVE_JSON, METRICS_FILE, calibration_notes, recipe_of
from ..models.pretrained import ALIASES, check_hub_model
from ..models.probabilities import combine, star_decision
from ..progress import note, warn
from ..scoring.calibration import reliability_bins
from ..scoring.evaluation import seen_in_training, seen_warning
from ..scoring.leaderboard import LeaderboardRow
from ..scoring.scores import score_predictions
from ..scoring.significance import rank_with_ties
from .context import RunContext
from .ensemble import weigh_members
from .evaluate import scores_of
from .guard import NOT_THE_RUN, check_resume, run_record, run_state
from .train import train

DEFAULT_MODELS = ("linear", "scratch", "minilm")
SETTINGS_FILE = "compare_settings.json"
COMPARISON = "compare"  # what a compare folder's mark says
#: A model trained in steps that saw fewer reviews than this gets a warning: its numbers mean little.
FEW_REVIEWS_SEEN = 2000
SPLITS_VERSION = 2  # how `data.training_splits` cuts the data: a model trained on another cut is trained again


def _folder_name(model: str) -> str:
    """The folder under OUTPUT/models a model trains into: its name made safe (as earlier
    runs named it, so that a rerun finds and reuses their models)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", model).strip("_") or "model"


#: The row, the key of its predictions and the folder of the ensemble that `compare` adds.
ENSEMBLE_NAME = "ensemble"


def _settings_key(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _run_settings(transformer) -> dict[str, Any]:
    """The Trainer settings that make the model: not where it logs, nor --resume."""
    return {key: value for key, value in asdict(transformer).items() if key not in NOT_THE_RUN}


def _data_digest(context: RunContext) -> str:
    """The reviews and ratings every model of the run is cut from: what a data file edited in place changes."""
    splits = context.splits()
    digest = hashlib.sha256()
    for part in (splits.train, splits.dev, splits.held_out):
        if part is not None:
            digest.update(json.dumps([list(part["text"]), [int(label) for label in part["label"]]]).encode())
    return digest.hexdigest()[:16]


def _is_comparison(folder: Path) -> bool:
    """A folder an earlier `compare` wrote (marked so, or from before the mark: a leaderboard.json)."""
    mark = owner_mark(folder)
    return mark == COMPARISON if mark is not None else (folder / "leaderboard.json").is_file()


def _check_names(models: Sequence[str], evaluate_only: Sequence[str], ensemble: bool = True):
    """Every name checked before the first minute of training is spent."""
    if not models and not evaluate_only:
        raise ModelError("nothing to compare: give --models (linear,scratch,minilm) or --evaluate-only FOLDERS")
    twice = sorted({model for model in models if list(models).count(model) > 1})
    if twice:
        raise ModelError(f"--models names {', '.join(twice)} twice: give each model once")
    trained_into: dict[str, str] = {}
    for model in models:  # "../m" and "../m/": two names, one folder: the second model would overwrite the first
        same = trained_into.setdefault(_folder_name(model), model)
        if same != model:
            one = Path(same).expanduser().exists() and Path(same).expanduser().resolve() == Path(model).expanduser().resolve()
            raise ModelError(f"--models {same} and {model} " + ("name one model: give each model once" if one else
                             f"would train into one folder (models/{_folder_name(model)}): give one of them another name"))
    if ensemble:  # the row and the folder of the ensemble compare adds: a model of that name would be overwritten by it
        for model, option in [*((m, "--models") for m in models), *((m, "--evaluate-only") for m in evaluate_only)]:
            if model == ENSEMBLE_NAME or (option == "--models" and _folder_name(model) == ENSEMBLE_NAME):
                if not Path(model).expanduser().exists():  # a kind typed, not a folder: there is none to rename
                    raise ModelError(f"{option} {model}: not a kind of model to train: compare adds an ensemble of the models "
                                     "it trains by itself (--no-ensemble leaves it out; `reviewstars ensemble` builds one)")
                instead = (f"give its path as ./{model}" if option == "--evaluate-only"
                           else "rename the folder")
                raise ModelError(f"{option} {model}: '{ENSEMBLE_NAME}' names the ensemble compare adds to the table: "
                                 f"{instead} (or --no-ensemble)")
    kinds = {model: check_model_name(model, "--models") for model in models}
    given: dict[Path | str, int] = {}  # each folder by where it is, each Hub id by its name
    for position, model in enumerate(evaluate_only):
        path = Path(model).expanduser()
        first = given.setdefault(path.resolve() if path.exists() else model, position)
        if first != position:  # (`A,A` too: it scored one model twice, tied with itself)
            raise ModelError(f"--evaluate-only names one {'folder' if path.exists() else 'model'} twice ({evaluate_only[first]} and "
                             f"{model}): give each model once")
        if model in models:
            raise ModelError(f"--evaluate-only {model}: also in --models: give each model once")
        if (model in KINDS or model in ALIASES) and not path.exists():
            raise ModelError(f"--evaluate-only {model}: a model to train, not a trained one to score: give it to --models, "
                             "or give a trained model folder's path")
        if path.exists() or looks_like_a_path(model):
            if not path.is_dir():
                raise ModelError(f"--evaluate-only {model}: no such model folder")
            if not (path / CONFIG_FILE).is_file():
                raise ModelError(f"--evaluate-only {model}: not a model folder (no {CONFIG_FILE})")
    for model, option in [*((m, "--models") for m in models), *((m, "--evaluate-only") for m in evaluate_only)]:
        # Hub ids: checked now, not after the other models trained
        if model not in ALIASES and model not in KINDS and not Path(model).expanduser().exists() and not looks_like_a_path(model):
            check_hub_model(model, option, to_fine_tune=option == "--models")
    return kinds


def compare(data: DataSettings | str | Path, output: str | Path = "runs/compare", models: Sequence[str] = DEFAULT_MODELS,
            evaluate_only: Sequence[str] = (), *, transformer=None, device: str | None = None, decision: str = "argmax",
            ensemble: bool = True, **kind_settings: Any) -> dict[str, Any]:
    """Train (or reuse) `models`, score them and `evaluate_only` models, add their
    ensemble (weights fitted on the dev slice), rank them with ties, write the report."""
    from ..training import TrainSettings

    kinds = _check_names(models, evaluate_only, ensemble)
    # A folder whose weights are broken: one line now, not after the others trained. Loaded on
    # the CPU (the device is not resolved yet), and scored as loaded when the run is on the CPU.
    loaded = {model: load_predictor(model, device="cpu") for model in evaluate_only if Path(model).expanduser().is_dir()}
    owns = {kind: kind.own_settings(kind_settings.get(kind.name)) for kind in set(kinds.values())}
    for kind, own in owns.items():  # a tokenizer's Hub id too, before the first model trains
        kind.check_names(own)
    context = RunContext.open(data, device)  # the device before the first model trains, for every kind
    if context.resolved_device() != "cpu":
        loaded.clear()  # loaded again on the run's device, when scored
    data = context.data
    read = (data.data, *(model for model in models if model not in KINDS and model not in ALIASES), *evaluate_only,
            *(name for kind, own in owns.items() for name in kind.inputs(own)))
    output = check_output_folder(output, _is_comparison, "comparison",
                                 inputs=tuple(path for path in map(str, read) if Path(path).expanduser().exists()))
    transformer = replace(transformer or TrainSettings(), seed=data.seed)
    held_out, texts, labels = context.held_out()  # read once: every model trains on the same cut and is scored on these
    if any(kind.uses_torch for kind in kinds.values()):
        context.dev()  # a torch kind follows its training on the dev slice: none to carve is said before any trains
    for line in context.splits().notes:  # said once for the run: each model's training does not repeat them
        warn(line)
        context.said.add(line)
    # --resume continues the runs a stopped compare left (the others start), each with its own
    # settings: checked now, not after the models before it retrained
    resuming = {model for model, kind in kinds.items() if transformer.resume and kind.uses_torch
                and run_state(output / "models" / _folder_name(model))[0] == "interrupted"}
    for model in resuming:
        kind, own = kinds[model], owns[kinds[model]]
        record = run_record({"model": model, "data": data, "transformer": replace(transformer, resume=True),
                             "kind_settings": {kind.name: own} if own is not None else {}})
        check_resume(output / "models" / _folder_name(model), record, resume=True)
    data_digest = _data_digest(context)  # a model trained on other reviews under the same path is not reused
    output.mkdir(parents=True, exist_ok=True)
    mark_ours(output, COMPARISON)

    rows: list[LeaderboardRow] = []
    probas: dict[str, np.ndarray] = {}
    changing: list[tuple[str, Path, dict | None]] = []  # each model this run trains, and its folder's model before
    try:
        for model in [*models, *evaluate_only]:
            trained_here = model in kinds
            folder = output / "models" / _folder_name(model) if trained_here else Path(model)
            row = LeaderboardRow(model=model, folder=str(folder))
            if trained_here:
                kind = kinds[model]
                own = kind.own_settings(kind_settings.get(kind.name))
                settings = {"model": model, "data": asdict(data), "data_sha256": data_digest, "splits": SPLITS_VERSION,
                            "transformer": _run_settings(transformer) if kind.uses_torch else None,
                            "own": asdict(own) if own is not None else None}
                recorded = _reusable(folder, _settings_key(settings))
                if recorded is None:
                    note(f"training {model} -> {folder}")
                    changing.append((model, folder, _model_state(folder)))
                    result = train(model, data, folder, transformer=replace(transformer, resume=model in resuming), context=context,
                                   **{kind.name: own} if own is not None else {})
                    recorded = {"train_seconds": result.train_seconds, "train_examples_seen": result.train_examples_seen,
                                "parameters": result.parameters, "budget_share_in_steps": result.budget_share_in_steps,
                                "ended": result.ended, "time_ledger": result.time_ledger,
                                "settings": {**result.settings, **(result.architecture or {})}}
                    write_json(folder / SETTINGS_FILE, {"key": _settings_key(settings), "settings": settings, "summary": recorded})
                else:
                    note(f"reusing {model}: already trained with the same settings in {folder}")
                    row.reused = True
                row = replace(row, **{k: recorded.get(k) for k in ("train_seconds", "train_examples_seen", "parameters",
                                                                   "budget_share_in_steps", "ended", "time_ledger", "settings")})
            kept, proba, row.format, parameters = scores_of(folder, "held_out", held_out, texts, labels, device, keep=trained_here,
                                                            predictor=loaded.pop(model, None))
            row.recipe = recipe_of(folder)
            row.parameters = row.parameters or parameters
            row.scores = kept  # what only a run of the model measures (its speed, its ECE before calibration) is kept
            rows.append(row)
            probas[model] = proba
        built = _ensemble(output, [r for r in rows if r.model in kinds], probas, context.splits().dev, device) \
            if ensemble and len(kinds) >= 2 else None
    except (Interrupted, Terminated, TrainingInterrupted, KeyboardInterrupt) as stopped:
        # the models replaced: the old leaderboard no longer describes them (one replaced just as the stop came too)
        retrained = [model for model, folder, before in changing if _model_state(folder) != before]
        if not retrained or not (output / "leaderboard.json").is_file():
            raise
        error = Interrupted("stopped (Ctrl-C)") if isinstance(stopped, KeyboardInterrupt) else stopped
        ensemble_too = " (nor does its ensemble, which no longer loads)" if (output / "models" / ENSEMBLE_NAME).is_dir() else ""
        error.args = (f"{error}; {output / 'leaderboard.json'} and its report still describe the earlier comparison, not "
                      f"the new {', '.join(retrained)}{ensemble_too}: run the same command with --resume to finish this one",)
        raise error from None
    if built is not None:
        row, probas[ENSEMBLE_NAME] = built
        rows.append(row)
    for row in rows:
        scores = score_predictions(probas[row.model], labels, decision)
        for measured in ("ece_uncalibrated", "predictions_per_second", "temperature"):  # what only a run of the model knows
            setattr(scores, measured, getattr(row.scores, measured))
        row.scores, row.warnings = scores, list(scores.warnings)  # shown from these; leaderboard.json keeps 4 digits
        seen = row.train_examples_seen
        if row.model in kinds and kinds[row.model].uses_torch and seen is not None and seen < FEW_REVIEWS_SEEN:
            row.warnings.insert(0, f"saw only {seen:,} training reviews: too few to mean anything")
        row.warnings.extend(calibration_notes(row.folder))
        if row.model in evaluate_only:  # trained elsewhere: perhaps on these very reviews
            warning = seen_warning(seen_in_training(row.folder, texts), len(texts))
            if warning:
                row.warnings.insert(0, warning)
    rows = _ranked(rows, {r.model: star_decision(probas[r.model], decision) - 1 == np.asarray(labels) for r in rows})
    leaderboard = {
        "data": asdict(data), "split": held_out, "n": len(texts), "time_budget_seconds": transformer.time_budget, "decision": decision,
        "models": [r.record() for r in rows], "written": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    from ..presentation.report import write_compare_report

    curves = {r.model: _curve(r.folder) for r in rows if r.train_seconds is not None}
    confusions = {r.model: confusion(labels, star_decision(probas[r.model], decision) - 1) for r in rows}
    mistakes = {r.model: worst_mistakes(texts, labels, probas[r.model], decision=decision) for r in rows}
    reliability = {r.model: reliability_bins(probas[r.model], labels) for r in rows}
    with written_together(output) as stage:  # the leaderboard and its report: one set, the old or the new
        write_json(stage / "leaderboard.json", leaderboard)
        write_compare_report(stage, leaderboard, rows, curves, confusions, mistakes, reliability)
    return {**leaderboard, "rows": rows}


def _model_state(folder: Path) -> dict | None:
    """The model in `folder` now (its digests), or None for none: a model replaced reads otherwise."""
    from ..models.folder import CONFIG_FILE, model_digests

    try:
        return model_digests(folder) if (folder / CONFIG_FILE).is_file() else None
    except OSError:
        return None


def _ranked(rows: list[LeaderboardRow], correct: dict[str, np.ndarray]) -> list[LeaderboardRow]:
    """Best first; models McNemar's test cannot separate from the first of their rank at the 5% level share it."""
    rows = sorted(rows, key=lambda r: (-r.scores.accuracy, -r.scores.macro_f1))
    ranks = rank_with_ties([correct[r.model] for r in rows])
    for row, found in zip(rows, ranks):
        row.rank, row.p_value_vs_leader = found.rank, found.p_value_vs_leader
        row.tested_against = None if found.leader is None else rows[found.leader].model
    for row in rows:
        row.tied = sum(other.rank == row.rank for other in rows) > 1
    return rows


def _ensemble(output: Path, members: list[LeaderboardRow], probas: dict, dev,
              device: str | None) -> tuple[LeaderboardRow, np.ndarray] | None:
    """The trained models' calibrated probabilities, averaged with weights fitted (log-loss)
    on the dev slice carved from train, saved as a folder any command opens (the
    `ensemble` job's own weighing). None (and a note) when a member kept no scores on that
    slice (one too small to calibrate on)."""
    folder = output / "models" / ENSEMBLE_NAME
    weighed = weigh_members([r.folder for r in members], dev, folder, device, names=[r.model for r in members],
                            score_missing=False)
    if weighed is None:
        return None
    built, left_out = weighed
    settings: dict = {"left_out": [r.model for r in members if str(r.folder) in left_out]} if left_out else {}
    members = [r for r in members if str(r.folder) not in left_out]
    note("ensemble: " + ", ".join(f"{r.model} {w:.2f}" for r, w in zip(members, built.weights)) + f" -> {folder}")
    row = LeaderboardRow(model=ENSEMBLE_NAME, recipe=ENSEMBLE, format=ENSEMBLE, folder=str(folder),
                         parameters=sum(r.parameters or 0 for r in members),
                         settings={"members": [r.model for r in members], "weights": [round(float(w), 4) for w in built.weights],
                                   **settings})
    return row, combine([probas[r.model] for r in members], built.weights)


def _reusable(folder: Path, key: str) -> dict | None:
    marker = folder / SETTINGS_FILE
    if not (marker.is_file() and (folder / CONFIG_FILE).is_file() and (folder / METRICS_FILE).is_file()):
        return None
    recorded = read_json(marker)
    return recorded.get("summary") if recorded.get("key") == key else None


def _curve(folder: str) -> dict | None:
    path = Path(folder) / LEARNING_CURVE_JSON
    return read_json(path) if path.is_file() else None


def confusion(labels: Sequence[int], predicted: np.ndarray) -> list[list[int]]:
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(np.asarray(labels), predicted, labels=list(range(len(STARS)))).tolist()


def worst_mistakes(texts: Sequence[str], labels: Sequence[int], proba: np.ndarray, k: int = 8,
                   decision: str = "argmax") -> list[dict]:
    """The reviews the model gets most wrong under the leaderboard's decision: furthest in
    stars, then the most confident (the probability the model gave its answer)."""
    predicted = star_decision(proba, decision) - 1
    distance = np.abs(predicted - np.asarray(labels))
    confidence = proba[np.arange(len(predicted)), predicted]
    order = np.lexsort((-confidence, -distance))
    rows = []
    for i in order[:k]:
        if distance[i] == 0:
            break
        rows.append({"text": texts[i], "true_stars": int(labels[i]) + 1, "predicted_stars": int(predicted[i]) + 1,
                     "confidence": round(float(confidence[i]), 3),
                     "probabilities": {str(s): round(float(p), 3) for s, p in zip(STARS, proba[i])}})
    return rows
