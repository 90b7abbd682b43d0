"""Names a user gives: folders, Hub ids, kinds; and what each command makes of them."""

from __future__ import annotations

import pytest

from reviewstars.data import DataSettings
from reviewstars.errors import ModelError
from reviewstars.kinds import check_model_name
from reviewstars.models import looks_like_a_path


def test_a_model_folder_that_is_not_a_transformer_cannot_be_fine_tuned(linear_model):
    with pytest.raises(ModelError, match="a linear model folder; only transformer folders can be fine-tuned"):
        check_model_name(str(linear_model))


def test_a_hub_id_the_hub_cannot_give_fails_before_the_data_is_read(tiny_data, tmp_path, monkeypatch):
    import reviewstars.jobs.context as context
    from reviewstars.jobs import train

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(context, "training_splits", lambda *a, **k: pytest.fail("the data was read first"))
    with pytest.raises(ModelError, match="could not load 'nosuch-model' from the Hugging Face Hub"):
        train("nosuch-model", tiny_data, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_offline_hint_fits_what_the_name_was_for_and_the_option_it_came_by(tiny_data, tmp_path, monkeypatch):
    """A probe was told to rate reviews with `--model minilm`, a base model that rates nothing,
    and `compare` to use `--model PATH`, an option it does not have."""
    from reviewstars.jobs.compare import compare
    from reviewstars.models import load_predictor

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match=r"Offline\? Give a model folder reviewstars trained \(--model runs/NAME; "):
        load_predictor("nosuch-model")
    with pytest.raises(ModelError, match=r"Offline\? Use a local base model folder \(--models PATH\) or the offline alias "
                                         r"--models minilm"):
        compare(tiny_data, tmp_path / "cmp", ["linear", "nosuch-model"])
    with pytest.raises(ModelError, match=r"Offline\? Use a local base model folder \(--model PATH\)"):
        check_model_name("nosuch-model")


def test_hub_ids_with_dots_are_hub_ids_and_local_parents_make_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert not looks_like_a_path("Qwen/Qwen2.5-0.5B") and not looks_like_a_path("bert-base-cased")
    (tmp_path / "runs").mkdir()
    assert looks_like_a_path("runs/minilm") and looks_like_a_path("./x") and looks_like_a_path("a/b/c")


def test_compare_on_a_dev_slice_too_small_to_calibrate_skips_the_ensemble(tiny_data, tmp_path):
    from reviewstars.jobs.compare import compare
    from reviewstars.kinds.bag import BagSettings
    from reviewstars.models.linear import LinearSettings
    from reviewstars.training import TrainSettings

    board = compare(DataSettings(tiny_data, dev_size=10), tmp_path, ["linear", "bag"], transformer=TrainSettings(epochs=1, max_length=32),
                    linear=LinearSettings(min_df=1), bag=BagSettings(dim=8, words=200, buckets=100))
    assert [r["model"] for r in board["models"]].count("ensemble") == 0 and len(board["models"]) == 2


@pytest.mark.parametrize("command, option", [("train", "model"), ("compare", "models")])
def test_the_model_help_names_every_registered_kind_and_alias(command, option):
    """`--model`'s help is read from the registry: a kind added to `KINDS` is offered with no other change."""
    import typer

    from reviewstars.cli import app
    from reviewstars.kinds import KINDS
    from reviewstars.models.pretrained import ALIASES

    commands = typer.main.get_command(app).commands
    help_text = next(p.help for p in commands[command].params if p.name == option)
    assert all(name in help_text for name in [*KINDS, *ALIASES]), help_text


def test_a_tokenizer_hub_id_the_hub_cannot_give_fails_before_any_model_trains(tiny_data, tmp_path, monkeypatch):
    import reviewstars.jobs.compare as compare_module
    from reviewstars.jobs import train
    from reviewstars.kinds.scratch import ScratchSettings

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(compare_module, "train", lambda *a, **k: pytest.fail("a model trained first"))
    scratch = ScratchSettings(tokenizer="nosuch-org/nosuch-tokenizer")
    with pytest.raises(ModelError, match="cannot load the tokenizer 'nosuch-org/nosuch-tokenizer' from the Hugging Face Hub"):
        compare_module.compare(tiny_data, tmp_path / "compare", ["linear", "scratch"], scratch=scratch)
    assert not (tmp_path / "compare").exists()
    import reviewstars.jobs.context as context

    monkeypatch.setattr(context, "training_splits", lambda *a, **k: pytest.fail("the data was split first"))
    with pytest.raises(ModelError, match="cannot load the tokenizer 'nosuch-org/nosuch-tokenizer' from the Hugging Face Hub"):
        train("scratch", tiny_data, tmp_path / "out", scratch=scratch)
