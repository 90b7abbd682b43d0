"""The circles lesson and parameter counts: numbers a learner can check by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reviewstars.lessons.basics import accuracy, circles, circles_lesson, hand_rule, hand_rule_score, linear_stack_parameters

from support import run_cli


def test_circles_are_an_inner_disc_and_an_outer_ring():
    points, labels = circles(1000, seed=3)
    radius = np.linalg.norm(points, axis=1)
    assert labels.mean() == 0.5
    assert radius[labels == 0].max() <= 0.5 and radius[labels == 1].min() >= 0.85
    np.testing.assert_array_equal(circles(1000, seed=3)[0], points)


def test_hand_rule_is_zero_exactly_inside_the_diamond():
    inside = np.array([[0.0, 0.0], [0.7, 0.0], [0.3, -0.4]], dtype=np.float32)
    outside = np.array([[0.8, 0.0], [0.5, 0.5], [-0.6, -0.3]], dtype=np.float32)
    assert (hand_rule_score(inside) == 0).all() and (hand_rule_score(outside) > 0).all()
    # by hand: x=0.5, y=0.5 -> max(0, 1 - 0.75) = 0.25 and the other three hinges are 0
    assert hand_rule_score(np.array([[0.5, 0.5]], dtype=np.float32))[0] == pytest.approx(0.25)


def test_the_network_learns_what_a_line_cannot():
    lesson = circles_lesson(n=400, seed=0, epochs=1500, restarts=3)
    fits = {f.name: f for f in lesson.fits}
    assert lesson.rule_accuracy > 0.99
    assert fits["network_adam"].accuracy > 0.97 and fits["network_sgd"].accuracy > 0.97
    assert fits["linear"].accuracy < 0.7
    assert fits["network_adam"].accuracy - fits["linear"].accuracy > 0.3
    assert fits["network_adam"].losses[-1] < fits["network_adam"].losses[0] / 10
    np.testing.assert_array_equal(fits["network_adam"].predict(lesson.points), hand_rule(lesson.points))
    for fit in lesson.fits:  # what is reported is what the trained model (the one plotted) does, not the weights before its last step
        assert fit.accuracy == accuracy(fit.predict(lesson.points), lesson.labels)
        assert lesson.summary()[f"{fit.name}_accuracy"] == fit.accuracy


def test_linear_stack_parameters():
    rows = linear_stack_parameters([100, 200, 400, 400, 5])
    assert [count for _, count in rows] == [20_200, 80_400, 160_400, 2_005]
    assert sum(count for _, count in rows) == 263_005
    with pytest.raises(ValueError):
        linear_stack_parameters([7])


def cli(*args):
    return run_cli(*args, columns=200)


def test_params_cli_for_a_stack_and_for_model_folders(tiny_data, tmp_path):
    result = cli("basics", "params", 100, 200, 400, 400, 5)
    assert result.returncode == 0 and "263,005" in result.stdout

    cli("train", "--model", "linear", "--data", tiny_data, "--output", tmp_path / "linear", "--min-df", "1")
    vocabulary = len(json.loads((tmp_path / "linear" / "vocabulary.json").read_text()))
    result = cli("basics", "params", "--model", tmp_path / "linear")
    assert result.returncode == 0 and f"{(vocabulary + 1) * 5:,}" in result.stdout


def test_params_of_a_transformer_folder_layer_by_layer(tmp_path):
    from reviewstars.models.encoder import EncoderConfig, EncoderForStarRating
    from reviewstars.models.transformer import TransformerPredictor
    from reviewstars.tokenization import train_wordpiece

    tokenizer = train_wordpiece(["good food", "bad food"] * 10, vocab_size=60)
    model = EncoderForStarRating(EncoderConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, max_position_embeddings=8))
    TransformerPredictor(model, tokenizer, max_length=8).save(tmp_path / "enc")
    rows = dict((name, count) for name, _, count in TransformerPredictor.load(tmp_path / "enc").layer_parameters())
    assert rows["blocks.0.attention.query"] == (16 + 1) * 16
    assert rows["blocks.0.feed_forward.expand"] == (16 + 1) * 32
    assert rows["classifier"] == (16 + 1) * 5
    assert sum(rows.values()) == sum(p.numel() for p in model.parameters())


def test_circles_cli_writes_png_and_json(tmp_path):
    output = tmp_path / "circles.png"
    result = cli("basics", "circles", "--points", 300, "--epochs", 800, "--output", output)
    assert result.returncode == 0, result.stderr
    assert "hand rule" in result.stdout and "epoch" in result.stdout
    assert output.read_bytes()[:4] == b"\x89PNG"
    summary = json.loads(output.with_suffix(".json").read_text())
    assert summary["hand_rule_accuracy"] > 0.99 and summary["linear_accuracy"] < 0.7


def test_params_refuses_sizes_beside_a_model(linear_model):
    result = cli("basics", "params", "100", "5", "--model", linear_model)
    assert result.returncode == 2 and "give layer sizes or --model, not both" in result.stderr
