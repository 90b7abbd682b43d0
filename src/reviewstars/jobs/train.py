"""`reviewstars train`: any kind, one path. Train, score on the held-out split, and leave
a model folder with its metrics, plots and a model card."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from .. import STARS
from ..artifacts import is_main_process, write_json, write_text
from ..data import DataSettings
from ..errors import DataError, ReviewstarsError
from ..ledger import open_ledger, spent
from ..progress import note, warn
from ..settings.files import absolute
from ..scoring.evaluation import evaluate_predictor, predict_proba_batched, save_scores, save_trained_texts, scores_key
from ..scoring.scores import score_predictions
from ..kinds import TrainingJob, check_model_name, trainable_kinds
from .fit import fit_kind
from ..models.folder import CARD_FILE, CONFUSION_FILE, LEARNING_CURVE_JSON, LEARNING_CURVE_PNG, METRICS_FILE, TIME_LEDGER_FILE
from .context import RunContext, no_dev_slice_asked
from .result import TrainResult
from .guard import one_training_per_output, stage_of as staged_path, staged


@one_training_per_output
def train(model: str, data: DataSettings | str | Path, output: str | Path, *, transformer=None, device: str | None = None,
          context: RunContext | None = None, also_write: Callable[[Path], Any] | None = None, **kind_settings: Any) -> TrainResult:
    """Train `model` (a kind, an alias, a Hub id or a folder) on `data` into `output`.

    `transformer` is the `TrainSettings` of torch kinds; `kind_settings` holds a kind's own
    settings by kind name (`scratch=ScratchSettings(...)`, `linear=LinearSettings(...)`).
    Transformers follow their progress on a balanced dev slice carved from train, so the
    reported split stays unseen. The result's `time_ledger` says where the run's wall time went.
    `context`: a run's data and device, already opened (`compare` trains every model on one).
    `also_write(folder)`: more files of the run (the CLI's train_settings.yaml), written into
    the new folder before it replaces the old one, so that no stop can leave a model without them.
    """
    with open_ledger() as ledger:
        result = _train(model, context or RunContext.open(data, device, check_device=False), output, transformer, kind_settings)
        result.time_ledger = ledger.record()
    _warn_of_an_overrun(model, transformer, result)
    stage = staged_path(output)
    if is_main_process() and stage.is_dir():  # written last: the ledger covers everything before
        write_json(stage / TIME_LEDGER_FILE, result.time_ledger)
        if result.metrics is not None:
            write_json(stage / METRICS_FILE, {**result.metrics.to_json(), "time_ledger": result.time_ledger})
        if also_write is not None:
            also_write(stage)
    return result


#: A training that takes this much more than its --time-budget says so (a budget is an upper bound).
OVERRUN = 1.1


def _warn_of_an_overrun(model: str, transformer, result: TrainResult) -> None:
    """A run that took well past its budget (a probe's MiniLM: 91 s of 60, its batch-size probe
    alone 60 s on a busy machine) says so, and where the time went; it was unsaid."""
    budget = getattr(transformer, "time_budget", None)
    if not budget or result.train_seconds <= OVERRUN * budget + 2:
        return
    spent_on = {name: seconds for name, seconds in (result.time_ledger or {}).items() if name not in ("wall", "other")}
    most = max(spent_on, key=spent_on.get, default=None)
    where = f"; most of it {most} ({spent_on[most]:.0f} s)" if most else ""
    warn(f"{model}: training took {result.train_seconds:.0f} s of a {budget:g} s --time-budget{where}: a busy machine, or a "
         "budget too short for what comes before the steps (give more, or fewer --max-passes)")


def _train(model, context: RunContext, output, transformer, kind_settings) -> TrainResult:
    kind = check_model_name(model)
    unknown = set(kind_settings) - {k.name for k in trainable_kinds()}
    if unknown:
        raise ReviewstarsError(f"unknown settings for kinds: {', '.join(sorted(unknown))}")
    kind.check_names(kind.own_settings(kind_settings.get(kind.name)))  # a tokenizer's Hub id, before the data is split
    data, device = context.data, context.device
    at_most, why = reviews_the_budget_can_use(kind, transformer, context)
    splits = context.splits(at_most, why)
    train_part, dev_part = splits.train, splits.dev
    seen = set(train_part["label"])
    if len(seen) < 2:
        if seen and len(seen | set(dev_part["label"])) >= 2:  # (--train-size 5: the dev slice, balanced by star, took the rest)
            one = len(train_part) == 1
            raise DataError(data.data, f"the {len(train_part):,} review{'' if one else 's'} left to train on beside the dev slice "
                                       f"({len(dev_part):,}, balanced by star) {'has' if one else 'all have'} "
                                       f"{next(iter(seen)) + 1} stars: give a larger --train-size or a smaller --dev-size")
        raise DataError(data.data, "the train split needs reviews of at least two star ratings")
    notes = list(splits.notes)
    unseen = [str(stars) for stars in STARS if stars - 1 not in seen]  # (a 3-row file trained "fine": 1 or 3 stars for anything)
    if unseen:
        listed = unseen[0] if len(unseen) == 1 else f"{', '.join(unseen[:-1])} or {unseen[-1]}"
        notes.append(f"no training review has {listed} star{'' if unseen == ['1'] else 's'}: the model will never "
                     f"predict {'it' if len(unseen) == 1 else 'them'}")
    if is_main_process():
        note(f"{model}: {splits.describe()}")
        for line in notes:
            if line not in context.said:  # (a compare said its data's notes once, for every model)
                warn(f"{model}: {line}")
                context.said.add(line)
    output = Path(output)
    if kind.uses_torch and len(dev_part) == 0:
        if data.dev_size == 0:
            raise no_dev_slice_asked()
        raise DataError(data.data, f"too few training reviews ({len(train_part)}) to carve a dev slice from")
    job = TrainingJob(model=model, train=train_part, dev=dev_part, output=output, own=kind.own_settings(kind_settings.get(kind.name)),
                      transformer=kind.trainer_settings(transformer, data.seed), device=device,
                      max_length_given=transformer is not None and transformer.max_length is not None)
    predictor, details = fit_kind(kind, job)
    with spent("calibration"):
        calibration, dev_proba = calibrate(predictor, dev_part, scored=details.pop("dev_proba_scored", None))
    # A local path recorded whole: `evaluate --split held-out` cuts the same file again from any folder
    recorded = {**asdict(data), "data": absolute("data", data.data)}
    result = TrainResult(model=model, kind=kind.name, output=str(output), data=recorded, parameters=predictor.num_parameters,
                         calibration=calibration, held_out=splits.held_out_name, held_out_examples=len(splits.held_out or []),
                         data_notes=notes, **details)
    if not is_main_process():
        return result  # under torchrun every process trained the same model; only the first one writes it
    # Imported here: `predict` imports this package and need not wait for matplotlib and the Hub client.
    with spent("loading libraries"):
        from ..presentation.plots import learning_curve_points, plot_confusion_matrix, plot_learning_curve
        from .card import model_card

    output = staged(output)  # the new folder is built aside: it replaces the old one only when complete
    with spent("saving the model"):
        predictor.info = {"training": result.record()}
        predictor.save(output)
        save_trained_texts(output, train_part["text"])  # so that a score on these reviews says so
        if dev_proba is not None:  # kept for the ensemble that `compare` weighs on the same slice
            texts, labels = dev_part["text"], dev_part["label"]
            save_scores(output, scores_key("dev", texts, labels), score_predictions(dev_proba, labels), dev_proba, predictor.kind,
                        predictor.num_parameters, what="dev")
        if result.log_history:
            write_json(output / LEARNING_CURVE_JSON, learning_curve_points(result.log_history))
            plot_learning_curve(result.log_history, output / LEARNING_CURVE_PNG, f"{model} on {data.data}")
    held_out = splits.held_out_name
    if held_out is not None:
        texts, labels = splits.held_out["text"], splits.held_out["label"]
        with spent("scoring held-out reviews"):
            scores, proba = evaluate_predictor(predictor, texts, labels)
        scores.context.update(split=held_out, held_out_reviews=len(texts))
        with spent("saving the model"):
            # kept beside the model, so that `compare` never scores it on these reviews again
            save_scores(output, scores_key(held_out, texts, labels), scores, proba, predictor.kind, predictor.num_parameters)
            write_json(output / METRICS_FILE, scores.to_json())
            plot_confusion_matrix(scores.confusion_matrix, output / CONFUSION_FILE, f"{model} on {held_out}")
        result.metrics = scores
    with spent("saving the model"):
        write_text(output / CARD_FILE, model_card(predictor, result, kind))
    return result


def reviews_the_budget_can_use(kind, transformer, context: RunContext) -> tuple[int | None, str]:
    """The most training reviews a torch kind's `--time-budget` can learn from here, and a
    note saying so (None: no budget, nothing to cap): a larger training file is sampled
    down to them before its reviews are read (`training.budget.reviews_a_budget_can_use`)."""
    if not kind.uses_torch or transformer is None or not transformer.time_budget:
        return None, ""
    import os

    with spent("loading libraries"):
        import torch

        from ..training.budget import reviews_a_budget_can_use
        from ..training.settings import format_duration

    where = context.resolved_device()
    cores = torch.get_num_threads()
    processes = int(os.environ.get("WORLD_SIZE", "1"))
    most = reviews_a_budget_can_use(transformer.time_budget, where, cores, processes)
    on = f"{cores} CPU core{'s' if cores != 1 else ''}" if where == "cpu" else f"{processes} x {where}" if processes > 1 else where
    return most, f"a {format_duration(transformer.time_budget)} budget learns from at most {most:,} on {on}"


MIN_CALIBRATION_REVIEWS = 20


def calibrate(predictor, dev, scored=None) -> tuple[dict[str, Any] | None, Any]:
    """Fit the predictor's temperature on the dev slice (carved from train: the scored
    split is never seen), so its probabilities mean what they say. Returns what was done
    and the calibrated dev probabilities (None, None without a dev slice).

    `scored`: uncalibrated probabilities the training already computed with this very
    model for the first rows of the slice (its last evaluation): only the rest is scored."""
    import numpy as np

    from ..scoring.calibration import expected_calibration_error
    from ..models.probabilities import TEMPERATURE_BOUNDS, apply_temperature, fit_temperature

    if dev is None or len(dev) < MIN_CALIBRATION_REVIEWS:
        return None, None
    labels = np.asarray(dev["label"], dtype=int)
    raw = np.zeros((0, len(STARS))) if scored is None else np.asarray(scored, dtype=np.float64)[: len(labels)]
    rest = list(dev["text"])[len(raw):]
    if rest:
        raw = np.concatenate([raw, predict_proba_batched(predictor, rest, description="calibrating on the dev slice", calibrated=False)])
    fitted = fit_temperature(raw, labels)
    calibrated = apply_temperature(raw, fitted)
    before, after = expected_calibration_error(raw, labels), expected_calibration_error(calibrated, labels)
    record = {"temperature": round(fitted, 4), "dev_reviews": len(labels), "dev_ece_before": round(before, 4),
              "dev_ece_after": round(after, 4), "applied": after < before}
    if after < before and fitted >= 0.99 * TEMPERATURE_BOUNDS[1]:  # a probe's useless model read "ECE within noise", the best
        record["at_bound"] = (f"the temperature reached its bound ({TEMPERATURE_BOUNDS[1]:g}): the model's probabilities are "
                              "flattened to nearly uniform, so a low calibration error says only that it knows little")
    if after < before:
        predictor.temperature = fitted
        return record, calibrated
    # A temperature fitted for the log-loss need not lower the binned error it is judged by: kept out when it does not.
    predictor.temperature = 1.0
    record["why_not"] = (f"the temperature {fitted:.3g} did not lower the dev slice's calibration error ({before:.3f} -> {after:.3f}): "
                         "the model's own probabilities are kept")
    return record, raw
