"""Inference speed on this machine, each comparison measured in one run (issue 6).

    python benchmarks/inference_speed.py --transformer runs/bench-minilm-30m [--linear DIR]

1. Linear baseline: reviews/s of `predict_proba` over the validation texts repeated to
   20,000, with scikit-learn's TF-IDF transform and with ours (`FastTfidf`).
2. A fine-tuned transformer over the 2,000 validation reviews:
   `transformers.pipeline("text-classification")` (one text at a time, its default) vs
   reviewstars `predict` (length-sorted batches, inference_mode), same truncation, so the
   predictions must be identical; then the model exported to ONNX (fp32 and int8).
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


def linear_speed(folder: str | None, train, texts: list[str]) -> dict:
    if folder:
        predictor = load_predictor(folder)
    else:
        predictor = LinearPredictor().fit(train["text"], train["label"])
    many = (texts * (20_000 // len(texts) + 1))[:20_000]
    predictor.predict_proba(many[:500])  # build the fast index once
    _, sklearn_seconds = timed(lambda: predictor.vectorizer.transform(many) @ predictor.coef.T)
    proba, seconds = timed(predictor.predict_proba, many)
    return {"reviews": len(many), "sklearn_transform_per_second": round(len(many) / sklearn_seconds),
            "predictions_per_second": round(len(many) / seconds)}


def transformer_speed(folder: str, texts: list[str], labels: np.ndarray) -> dict:
    from transformers import pipeline

    from reviewstars.models.onnx import export_onnx

    ours = load_predictor(folder)
    ours.truncation = "head"  # what the pipeline does: keep the first max_length tokens
    classify = pipeline("text-classification", model=folder, tokenizer=folder, device=-1)
    classify(texts[:8], truncation=True, max_length=ours.max_length)  # warm-up
    outputs, pipeline_seconds = timed(classify, texts, truncation=True, max_length=ours.max_length)
    label2star = {label: star for star, label in zip(ours.column_stars, ours.model.config.id2label.values())}
    pipeline_stars = np.array([label2star[o["label"]] for o in outputs])

    ours.predict_proba(texts[:8])
    proba, ours_seconds = timed(ours.predict_proba, texts)
    ours_stars = proba.argmax(axis=1) + 1
    result = {
        "model": folder, "reviews": len(texts), "max_length": ours.max_length,
        "pipeline_per_second": round(len(texts) / pipeline_seconds, 1),
        "predict_per_second": round(len(texts) / ours_seconds, 1),
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
            onnx_proba, seconds = timed(exported.predict_proba, texts)
            stars = onnx_proba.argmax(axis=1) + 1
            result[f"onnx_{name}_per_second"] = round(len(texts) / seconds, 1)
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
    args = parser.parse_args()
    data = load_data(args.data)
    texts = list(data["validation"]["text"])
    labels = np.asarray(data["validation"]["label"])
    summary = {"linear": linear_speed(args.linear, data["train"], texts)}
    print("linear:", summary["linear"])
    if args.transformer:
        summary["transformer"] = transformer_speed(args.transformer, texts, labels)
        print("transformer:", summary["transformer"])
    save("inference_speed", summary)


if __name__ == "__main__":
    main()
