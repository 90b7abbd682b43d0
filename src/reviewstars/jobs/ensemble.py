"""`reviewstars ensemble`: combine trained model folders into one, weighed on a dev slice.
`compare` builds its ensemble with the same `weigh_members`."""

from __future__ import annotations

import shutil
from contextlib import suppress
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..artifacts import resolved, write_json
from ..data import DataSettings
from ..errors import ReviewstarsError
from ..models import check_model_name, load_predictor
from ..models.ensemble import KIND as ENSEMBLE_RECIPE, MAX_MEMBERS, EnsemblePredictor
from ..models.folder import METRICS_FILE, check_model_output, replace_model_folder
from ..models.probabilities import fit_ensemble_weights
from ..progress import note, warn
from ..scoring.evaluation import evaluate_predictor, load_scores, predict_proba_batched, scores_key, note_seen, seen_in_training
from .context import RunContext
from .guard import output_lock, staged, terminate_cleanly


#: A member weighed below this on the dev slice adds next to nothing to the average, yet would
#: cost its whole forward pass on every review: it is left out, and the others weighed again.
NEGLIGIBLE_WEIGHT = 0.01


def build_ensemble(members: Sequence[str], data: DataSettings, output: str | Path, device: str | None = None) -> dict[str, Any]:
    """Weights on the simplex minimising the log-loss of the members' calibrated
    probabilities on the dev slice carved from train (the scored split stays unseen)."""
    if len(members) < 2:
        raise ReviewstarsError("an ensemble needs at least two models: --models A,B")
    if len(members) > MAX_MEMBERS:
        raise ReviewstarsError(f"--models: {len(members)} models; an ensemble holds at most {MAX_MEMBERS}")
    if len({resolved(member, "--models") for member in members}) != len(members):
        raise ReviewstarsError("--models names a model twice: give each once (the fitted weights say how much each counts)")
    check_model_output(output, inputs=(*members, data.data), recipe=ENSEMBLE_RECIPE)  # never over a member: the ensemble reads them
    for member in members:  # every name, before the first member loads (a MiniLM: seconds)
        check_model_name(member)
    predictors = [load_predictor(member, device=device) for member in members]  # every folder whole before any work
    output = resolved(output)
    new = not output.exists()
    try:  # as a training does: one writer at a time, and the new folder swapped in whole, metrics and all
        with output_lock(output):
            stage = staged(output)  # (what a run killed mid-swap left beside the folder goes back into it first)
            try:
                with terminate_cleanly():
                    result = _build(members, predictors, data, stage, device)
            except BaseException:
                shutil.rmtree(stage, ignore_errors=True)
                raise
            replace_model_folder(stage, output)
            return result
    finally:
        if new:  # the folder the lock made, left empty by a run that failed
            with suppress(OSError):
                output.rmdir()


def _build(members: Sequence[str], predictors: list, data: DataSettings, output: Path, device: str | None) -> dict[str, Any]:
    context = RunContext.open(data, device, check_device=False)
    dev = context.dev()  # as the members' training cut it: the same dev slice, the same reviews held out
    for member in members:  # weights fitted on reviews a member learned favour that member
        seen = seen_in_training(member, dev["text"])
        if seen:
            warn(f"{member} was trained on {seen:,} of the {len(dev):,} dev reviews the weights are fitted on: give the "
                 "--data, --train-size, --dev-size and --seed it was trained with, or its weight is too large")
    ensemble, left_out = weigh_members(members, dev, output, device, predictors=predictors)
    kept = [str(member) for member in members if str(member) not in left_out]
    result: dict[str, Any] = {"members": kept, "weights": ensemble.weights.tolist(), "dev_reviews": len(dev)}
    if left_out:
        result["left_out"] = left_out
    splits = context.splits()
    if splits.held_out is not None:
        scores, _ = evaluate_predictor(ensemble, splits.held_out["text"], splits.held_out["label"])
        scores.context["split"] = splits.held_out_name
        note_seen(scores, output, splits.held_out["text"])  # the members' reviews, together
        write_json(Path(output) / METRICS_FILE, scores.to_json())
        result["metrics"] = scores
    return result


def weigh_members(members: Sequence[str | Path], dev, output: str | Path, device: str | None, *,
                  predictors: Sequence[Any] | None = None, names: Sequence[str] | None = None,
                  score_missing: bool = True) -> tuple[EnsemblePredictor, dict[str, float]] | None:
    """Fit the weights on the members' calibrated probabilities on the dev slice, and save
    the ensemble at `output`, with the members left out for a weight below `NEGLIGIBLE_WEIGHT`
    (by the name given in `members`: their weight). A member's probabilities are those `train`
    kept beside it for this very slice, else scored now (`predictors`: the members, already
    open); with `score_missing=False` a member that kept none means no ensemble (None, and a note)."""
    texts, labels = list(dev["text"]), list(dev["label"])
    key = scores_key("dev", texts, labels)
    names = list(names or [Path(m).name for m in members])
    predictors = list(predictors) if predictors is not None else None
    dev_probas = []
    for index, (member, name) in enumerate(zip(members, names)):
        kept = load_scores(member, key, what="dev")
        if kept is not None:
            dev_probas.append(kept[1])
        elif not score_missing:
            note(f"no ensemble: {name} kept no scores on a dev slice of {len(dev)} reviews (--dev-size)")
            return None
        else:
            predictor = predictors[index] if predictors is not None else load_predictor(member, device=device)
            dev_probas.append(predict_proba_batched(predictor, texts, description=f"scoring {name} on the dev slice"))
    weights = fit_ensemble_weights(dev_probas, np.asarray(labels))
    kept, left_out = [], {}
    for index, weight in enumerate(weights):  # (one is always kept: they sum to 1)
        if weight >= NEGLIGIBLE_WEIGHT:
            kept.append(index)
            continue
        left_out[str(members[index])] = round(float(weight), 6)
        note(f"ensemble: {names[index]} left out: weighed {weight:.4f} on the dev slice, it adds next to nothing "
             "to the others and would cost its whole forward pass on every review")
    if left_out:
        weights = fit_ensemble_weights([dev_probas[index] for index in kept], np.asarray(labels))
        if len(kept) == 1:
            note(f"ensemble: {names[kept[0]]} alone is kept: the ensemble predicts as it does")
    folders = [str(members[index]) for index in kept]
    if predictors is not None:
        ensemble = EnsemblePredictor([predictors[index] for index in kept], weights, folders)
    else:
        ensemble = EnsemblePredictor.from_folders(folders, weights, device=device)
    ensemble.save(Path(output))
    return ensemble, left_out
