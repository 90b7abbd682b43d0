"""`reviewstars evaluate`: score a model folder on a split, or a seeded sample of it; and
the scoring job the other jobs share (`scores_of`: the scores kept beside a model, else
scored now)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..artifacts import check_output_file, json_with_keys, plot_beside, write_json, written_together
from ..data import DEFAULT_DATASET, DEFAULT_SEED, HELD_OUT, Columns, DataSettings, parse_label_scale, subset
from ..models import load_predictor
from ..progress import note
from ..errors import DataError, ModelError, ReviewstarsError
from ..scoring.evaluation import evaluate_predictor, load_scores, note_seen, save_scores, scores_key, trained_not_among
from ..scoring.scores import Scores
from .context import RunContext

#: How a rerun knows the `--output` JSON is scores `evaluate` wrote (and may be replaced): keys
#: no other tool's file has together, nor a model's own metrics.json (it names no model).
SCORES_JSON = json_with_keys("model", "data", "split", "accuracy", "confusion_matrix", "per_class", "ece_noise_floor")


def evaluate(model: str | Path, data: str | Path | None = None, *, split: str | None = None, n: int | None = None,
             seed: int = DEFAULT_SEED, output: str | Path | None = None, device: str | None = None,
             decision: str = "argmax", columns: Columns | None = None) -> Scores:
    """The scores of `model` on `split` (default: test, else validation); JSON and a confusion PNG at `output`.
    `data` None: Yelp, or for `--split held-out` the data the model recorded."""
    if split == HELD_OUT:  # the very reviews its training scored it on, cut again from the data as it recorded
        settings = held_out_settings(model, data, columns)
        data = settings.data
    data = DEFAULT_DATASET if data is None else data
    if output is not None:  # before any work: never over the model, the data read, or a file of the user's
        output = check_output_file(output, inputs=(model, data), ours=SCORES_JSON, what="scores of ours", suffix=".json")
        check_output_file(output.with_suffix(".confusion.png"), "--output's confusion matrix", inputs=(model, data),
                          ours=plot_beside(output, SCORES_JSON), what="a plot of ours")
    if split == HELD_OUT:
        context = RunContext.open(settings, device, check_device=False)
        predictor = load_predictor(model, device=device)
        split = context.held_out()[0]  # (refused, in one line, when the data held none out)
        missing = trained_not_among(model, context.splits().train["text"])
        if missing:  # a file edited since, or another one of the name recorded: its cut holds other reviews
            raise DataError(settings.data, f"not the reviews {model} was trained on: {missing:,} of those it learned are not "
                                           f"in the part cut from it to train on, so --split {HELD_OUT} would score other "
                                           "reviews than its training held out")
        rows = subset(context.splits().held_out, n, seed)
        texts, labels = rows["text"], rows["label"]
    else:
        columns = columns or columns_trained_with(model, data) or Columns()
        context = RunContext.open(DataSettings(data=str(data), seed=seed, text_column=columns.text, label_column=columns.label,
                                               label_scale=columns.scale), device, check_device=False)
        predictor = load_predictor(model, device=device)
        asked = split
        split, rows = context.scored_split(split, n)
        texts, labels = rows["text"], rows["label"]
        if asked is None and Path(str(data)).is_file():  # one file: named as itself, not "train" (read as a training score)
            split = Path(str(data)).name
    if n is not None and len(texts) < n:  # the whole split, not a sample of the size asked (the JSON said "sample": 5000 of 2,000)
        note(f"--eval-size {n:,}, but {split} has {len(texts):,} reviews: each of them is scored")
        n = None
    scores, _ = evaluate_predictor(predictor, texts, labels, decision=decision)
    scores.context.update(model=str(model), data=str(data), split=split, seed=seed, sample=n)
    if Path(str(model)).is_dir():
        note_seen(scores, model, texts)
        if scores.context.get("reviews_trained_on") and recorded_data(model) is not None:
            scores.warnings[0] += f" (--split {HELD_OUT} scores the reviews its training held out)"
    if output is not None:
        from ..presentation.plots import plot_confusion_matrix  # here: matplotlib is slow to import

        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        with written_together(output.parent) as stage:  # the scores and their plot: the old pair or the new, never one of each
            write_json(stage / output.name, scores.to_json())
            plot_confusion_matrix(scores.confusion_matrix, stage / output.with_suffix(".confusion.png").name,
                                  f"{Path(model).name} on {split}")
    return scores


def recorded_data(model: str | Path) -> dict | None:
    """The data settings a folder's training recorded (`training.data`), or None (a folder
    trained elsewhere, or one that does not say: `load_predictor` says what is wrong with it)."""
    from ..models.folder import training_of

    recorded = training_of(model).get("data")
    return recorded if isinstance(recorded, dict) and isinstance(recorded.get("data"), str) else None


def held_out_settings(model: str | Path, data: str | Path | None, columns: Columns | None) -> DataSettings:
    """The data settings the model was trained with, so that `--split held-out` cuts the very
    reviews its training held out (its train summary's score). Its data when `data` is None
    (not given); another --data, or other columns, would cut other reviews."""
    from dataclasses import fields

    recorded = recorded_data(model)
    if recorded is None:
        raise ModelError(f"{model}: --split {HELD_OUT} needs a folder `reviewstars train` wrote (it records the data it was "
                         "trained on; an ensemble, or a folder from elsewhere, does not): give --split the name of a split "
                         "of --data instead")
    if data is not None and str(data) != recorded["data"] and not _same_path(recorded["data"], data):
        raise ReviewstarsError(f"--split {HELD_OUT}: {model} was trained on {recorded['data']}, not {data}: its held-out "
                               "reviews are cut from that data (leave --data out)")
    if columns is not None:
        raise ReviewstarsError(f"--split {HELD_OUT} reads the reviews with the columns {model} was trained with: "
                               "leave out --text-column, --label-column and --label-scale")
    known = {f.name for f in fields(DataSettings)}
    try:
        return DataSettings(**{key: value for key, value in recorded.items() if key in known})
    except (TypeError, ValueError) as error:
        raise ModelError(f"{model}: its config.json's training.data cannot be read ({error})") from None


def columns_trained_with(model: str | Path, data: str | Path) -> Columns | None:
    """The columns and rating scale a model folder was trained with, when they were not the
    defaults (a file rated negative/neutral/positive), for `data`: all of them on the very file
    or folder it was trained on; on another, those it has by name (`_alike`). Said in a line.
    None: the defaults, another data set with none of them, or a folder that does not say."""
    from ..progress import note

    recorded = recorded_data(model)
    if recorded is None or not Path(str(data)).exists():
        return None
    found = Columns(recorded.get("text_column"), recorded.get("label_column"), recorded.get("label_scale") or "auto")
    if found == Columns() or not all(isinstance(value, str) for value in (found.scale, *filter(None, (found.text, found.label)))):
        return None
    if not _same_path(recorded["data"], data):
        found = _alike(data, found)
        if found is None:
            return None
    try:
        parse_label_scale(found.scale)
    except ValueError:  # (a config edited by hand: the defaults, then)
        return None
    given = [f"{flag} {value}" for flag, value in (("--text-column", found.text), ("--label-column", found.label),
                                                   ("--label-scale", found.scale if found.scale != "auto" else None)) if value]
    note(f"reading the reviews as {Path(str(model)).name} was trained to: {', '.join(given)} (give them to read otherwise)")
    return found


def _same_path(first: str | Path, second: str | Path) -> bool:
    from ..artifacts import resolved

    try:
        return resolved(first, "--data") == resolved(second, "--data")
    except Exception:  # a recorded path that cannot be resolved here: not the same data
        return False


def _alike(data: str | Path, columns: Columns) -> Columns | None:
    """What of a model's columns applies to another file (`data`, or a folder's first split):
    a column the model named, where the file has it by that name (a survey's test file); the
    rating scale only with its named ratings' column (a scale alone would read another
    file's `label` wrongly). None: nothing applies."""
    from ..data.files import split_files
    from ..data.formats import find_column
    from ..data.pieces import input_columns

    if not columns.text and not columns.label:
        return None
    path = Path(str(data))
    try:
        file = next(iter(split_files(path).values())) if path.is_dir() else path
        header = input_columns(file, columns.text)
    except Exception:  # unreadable here: the defaults, and their own one-line error
        return None
    text = columns.text if columns.text and find_column(columns.text, header) else None
    label = columns.label if columns.label and find_column(columns.label, header) else None
    if text is None and label is None:
        return None
    return Columns(text, label, columns.scale if label else "auto")


def scores_of(folder: str | Path, what: str, split: str, texts: Sequence[str], labels: Sequence[int], device: str | None,
              keep: bool, predictor=None) -> tuple[Scores, np.ndarray, str, int]:
    """(scores, probabilities, format, parameters) of a model folder on labelled reviews:
    those kept beside it for these very reviews (`train` keeps its held-out and dev
    scores), else scored now (by `predictor`, when the caller has the folder open), and kept
    when `keep` (a folder this run wrote)."""
    key = scores_key(split, texts, labels)
    kept = load_scores(folder, key, what=what)
    if kept is not None:
        return kept
    predictor = load_predictor(folder, device=device) if predictor is None else predictor
    scores, proba = evaluate_predictor(predictor, texts, labels)
    if keep:
        save_scores(folder, key, scores, proba, predictor.kind, predictor.num_parameters, what=what)
    return scores, proba, predictor.kind, predictor.num_parameters
