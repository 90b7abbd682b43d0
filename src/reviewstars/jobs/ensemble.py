"""`reviewstars ensemble`: combine trained model folders into one, weighed on a dev slice."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..artifacts import resolved, write_json
from ..data import DataSettings, training_splits
from ..models.probabilities import fit_ensemble_weights
from ..errors import DataError, ReviewstarsError
from ..scoring.evaluation import evaluate_predictor, predict_proba_batched
from ..models import load_predictor
from ..models.ensemble import MAX_MEMBERS, EnsemblePredictor
from ..models.folder import METRICS_FILE, check_model_output


def build_ensemble(members: Sequence[str], data: DataSettings, output: str | Path, device: str | None = None) -> dict[str, Any]:
    """Weights on the simplex minimising the log-loss of the members' calibrated
    probabilities on the dev slice carved from train (the scored split stays unseen)."""
    if len(members) < 2:
        raise ReviewstarsError("an ensemble needs at least two models: --models A,B")
    if len(members) > MAX_MEMBERS:
        raise ReviewstarsError(f"--models: {len(members)} models; an ensemble holds at most {MAX_MEMBERS}")
    if len({resolved(member, "--models") for member in members}) != len(members):
        raise ReviewstarsError("--models names a model twice: give each once (the fitted weights say how much each counts)")
    check_model_output(output, inputs=(*members, data.data))  # never over a member: the ensemble reads them
    predictors = [load_predictor(member, device=device) for member in members]  # every name checked before any work
    splits = training_splits(data)  # as the members' training cut them: the same dev slice, the same reviews held out
    dev = splits.dev
    if len(dev) == 0:
        raise DataError(data.data, "too few training reviews to carve a dev slice from")
    dev_probas = [predict_proba_batched(p, dev["text"], description=f"scoring {Path(m).name} on the dev slice")
                  for p, m in zip(predictors, members)]
    weights = fit_ensemble_weights(dev_probas, np.asarray(dev["label"]))
    ensemble = EnsemblePredictor(predictors, weights, members)
    output = Path(output)
    ensemble.save(output)
    result: dict[str, Any] = {"members": [str(m) for m in members], "weights": weights.tolist(), "dev_reviews": len(dev)}
    if splits.held_out is not None:
        scores, _ = evaluate_predictor(ensemble, splits.held_out["text"], splits.held_out["label"])
        scores.context["split"] = splits.held_out_name
        write_json(output / METRICS_FILE, scores.to_json())
        result["metrics"] = scores
    return result
