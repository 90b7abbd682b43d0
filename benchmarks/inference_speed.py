"""Inference speed on this machine, each comparison measured in one run (issue 6).

    python benchmarks/inference_speed.py --transformer runs/bench-minilm-30m [--linear DIR]

1. Linear baseline: reviews/s of `predict_proba` over the validation texts repeated to
   20,000, with scikit-learn's TF-IDF transform and with ours (`FastTfidf`).
2. A fine-tuned transformer over the 2,000 validation reviews:
   `transformers.pipeline("text-classification")` (one text at a time, its default) vs
   reviewstars `predict` (length-sorted batches, inference_mode, BERT's last layer at [CLS]
   only), same truncation, so the predictions must be identical; then
   the model exported to ONNX (fp32 and int8). Median of --repeats interleaved runs each.
Targets: linear >= 20,000/s; predict >= 2x pipeline; int8 ONNX >= 2x predict, <= 0.5 points lost.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import SHARED_YELP, save

from reviewstars.data import load_data
from reviewstars.models import LinearPredictor, load_predictor


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - started


def linear_speed(folder: str | None, train, texts: list[str], repeats: int) -> dict:
    if folder:
        predictor = load_predictor(folder)
    else:
        predictor = LinearPredictor().fit(train["text"], train["label"])
    many = (texts * (20_000 // len(texts) + 1))[:20_000]
    predictor.predict_proba(many[:500])  # build the fast index once
    sklearn_times, times = [], []
    for _ in range(repeats):
        sklearn_times.append(timed(lambda: predictor.vectorizer.transform(many) @ predictor.coef.T)[1])
        times.append(timed(predictor.predict_proba, many)[1])
    return {"reviews": len(many), "repeats": repeats,
            "sklearn_transform_per_second": round(len(many) / float(np.median(sklearn_times))),
            "predictions_per_second": round(len(many) / float(np.median(times))),
            "predictions_per_second_each_run": [round(len(many) / s) for s in times]}


def transformer_speed(folder: str, texts: list[str], labels: np.ndarray, repeats: int) -> dict:
    """Each contender runs `repeats` times, interleaved, and is scored by its median time:
    this shared machine's speed drifts by 10-15% from minute to minute."""
    from transformers import pipeline

    from reviewstars.models.onnx import export_onnx

    ours = load_predictor(folder)
    ours.truncation = "head"  # what the pipeline does: keep the first max_length tokens
    classify = pipeline("text-classification", model=folder, tokenizer=folder, device=-1)
    classify(texts[:8], truncation=True, max_length=ours.max_length)  # warm-up
    ours.predict_proba(texts[:8])
    pipeline_times, ours_times = [], []
    for _ in range(repeats):
        outputs, seconds = timed(classify, texts, truncation=True, max_length=ours.max_length)
        pipeline_times.append(seconds)
        proba, seconds = timed(ours.predict_proba, texts)
        ours_times.append(seconds)
    pipeline_seconds, ours_seconds = float(np.median(pipeline_times)), float(np.median(ours_times))
    label2star = {label: star for star, label in zip(ours.column_stars, ours.model.config.id2label.values())}
    pipeline_stars = np.array([label2star[o["label"]] for o in outputs])
    ours_stars = proba.argmax(axis=1) + 1
    rate = lambda seconds: round(len(texts) / seconds, 1)
    result = {
        "model": folder, "reviews": len(texts), "max_length": ours.max_length, "repeats": repeats,
        "pipeline_per_second": rate(pipeline_seconds),
        "pipeline_per_second_each_run": [rate(s) for s in pipeline_times],
        "predict_per_second": rate(ours_seconds),
        "predict_per_second_each_run": [rate(s) for s in ours_times],
        "predict_speedup_over_pipeline": round(pipeline_seconds / ours_seconds, 2),
        "identical_predictions": int((pipeline_stars == ours_stars).sum()),
        "accuracy_torch": round(float((ours_stars == labels + 1).mean()), 4),
    }
    with tempfile.TemporaryDirectory() as scratch:
        for quantize in (None, "int8"):
            name = quantize or "fp32"
            export_onnx(folder, Path(scratch) / name, quantize=quantize)
            exported = load_predictor(Path(scratch) / name)
            exported.truncation = "head"
            exported.predict_proba(texts[:8])
            times = []
            for _ in range(repeats):
                onnx_proba, seconds = timed(exported.predict_proba, texts)
                times.append(seconds)
            seconds = float(np.median(times))
            stars = onnx_proba.argmax(axis=1) + 1
            result[f"onnx_{name}_per_second"] = rate(seconds)
            result[f"onnx_{name}_per_second_each_run"] = [rate(s) for s in times]
            result[f"onnx_{name}_speedup_over_predict"] = round(ours_seconds / seconds, 2)
            result[f"onnx_{name}_accuracy"] = round(float((stars == labels + 1).mean()), 4)
            result[f"onnx_{name}_same_as_torch"] = int((stars == ours_stars).sum())
    result["int8_accuracy_change_points"] = round(100 * (result["onnx_int8_accuracy"] - result["accuracy_torch"]), 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(SHARED_YELP))
    parser.add_argument("--linear", default=None, help="a trained linear folder (default: train one)")
    parser.add_argument("--transformer", default=None, help="a fine-tuned transformer folder")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each contender (median kept)")
    args = parser.parse_args()
    data = load_data(args.data)
    texts = list(data["validation"]["text"])
    labels = np.asarray(data["validation"]["label"])
    summary = {"linear": linear_speed(args.linear, data["train"], texts, args.repeats)}
    print("linear:", summary["linear"])
    if args.transformer:
        summary["transformer"] = transformer_speed(args.transformer, texts, labels, args.repeats)
        print("transformer:", summary["transformer"])
    save("inference_speed", summary)


if __name__ == "__main__":
    main()
