"""A user's own reviews (issue 23): their columns found or named, their rating scale read,
and every training run scored on reviews it did not learn from, saying which."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from reviewstars.data import Columns, DataSettings, load_data, training_splits
from reviewstars.errors import DataError, ReviewstarsError
from reviewstars.jobs import predict_file, train
from reviewstars.models.linear import LinearSettings

from conftest import synthetic_reviews
from support import cli_command, run_cli

LINEAR = {"linear": LinearSettings(min_df=1)}


@pytest.fixture
def reviews_csv(tmp_path):
    """A CSV as a user has one: `review,rating` with ratings 1..5, 600 rows."""
    rows = synthetic_reviews(600, seed=11)
    path = tmp_path / "mine.csv"
    pd.DataFrame({"review": rows["text"], "rating": rows["label"] + 1}).to_csv(path, index=False)
    return path


def test_a_review_rating_csv_trains_without_flags_and_is_scored_on_reviews_held_out_of_it(reviews_csv, tmp_path):
    result = train("linear", DataSettings(reviews_csv, dev_size=50), tmp_path / "model", **LINEAR)
    assert result.held_out == "held-out" and result.held_out_examples == 120  # a fifth of 600, balanced, seeded
    assert result.train_examples == 600 - 120 - 50
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert metrics["split"] == "held-out" and metrics["held_out_reviews"] == 120 and metrics["accuracy"] > 0.4
    assert "held-out" in (tmp_path / "model" / "README.md").read_text()


def test_evaluate_split_held_out_scores_the_reviews_the_training_held_out(reviews_csv, tmp_path):
    """A probe scored a model on the very file it was trained from (0.81, 64% of it learned)
    and was not told how to score what the training had held out (0.48)."""
    from reviewstars.errors import ModelError, ReviewstarsError
    from reviewstars.jobs import evaluate

    from support import run_cli

    model = tmp_path / "model"
    train("linear", DataSettings(reviews_csv, dev_size=50, seed=5), model, **LINEAR)
    metrics = json.loads((model / "metrics.json").read_text())
    whole = run_cli("evaluate", "--model", model, "--data", reviews_csv)
    assert whole.returncode == 0 and "(--split held-out scores the reviews its training held out)" in " ".join(whole.stderr.split())
    again = evaluate(model, split="held-out")  # its own data, seed and columns, as recorded: the same 120 reviews
    assert (again.split, again.n, again.accuracy, again.confusion_matrix) == ("held-out", 120, metrics["accuracy"], metrics["confusion_matrix"])
    assert not again.warnings or "trained on" not in again.warnings[0]
    assert evaluate(model, reviews_csv, split="held-out", n=30).n == 30
    with pytest.raises(ReviewstarsError, match=r"--split held-out: .* was trained on .*mine.csv, not .*other.csv: its held-out reviews"):
        evaluate(model, tmp_path / "other.csv", split="held-out")
    yelp = run_cli("evaluate", "--model", model, "--data", "yelp_review_full", "--split", "held-out")  # given, not the default
    assert yelp.returncode == 2 and "was trained on" in yelp.stderr and "not yelp_review_full" in yelp.stderr
    with pytest.raises(ReviewstarsError, match="leave out --text-column, --label-column and --label-scale"):
        evaluate(model, split="held-out", columns=Columns("review", "rating"))
    foreign = tmp_path / "foreign"
    shutil.copytree(model, foreign)
    config = json.loads((foreign / "config.json").read_text())
    del config["reviewstars"]["training"]
    (foreign / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="--split held-out needs a folder `reviewstars train` wrote"):
        evaluate(foreign, split="held-out")


def test_eval_size_and_train_size_mean_what_they_say_on_a_single_file(reviews_csv):
    splits = training_splits(DataSettings(reviews_csv, train_size=200, eval_size=80, dev_size=50))
    assert (len(splits.train), len(splits.dev), len(splits.held_out)) == (200, 50, 80)
    texts = lambda split: set(split["text"])  # noqa: E731
    assert not texts(splits.train) & texts(splits.held_out) and not texts(splits.dev) & texts(splits.held_out)
    small = training_splits(DataSettings(reviews_csv))  # no --dev-size given: the note does not say one was
    assert any(line.startswith("the dev slice holds") and "not the default --dev-size 500" in line for line in small.notes)


def test_named_columns_and_a_mapping_of_words_to_stars(tmp_path):
    rows = synthetic_reviews(300, seed=12)
    words = {0: "awful", 1: "bad", 2: "ok", 3: "good", 4: "great"}
    path = tmp_path / "words.jsonl"
    pd.DataFrame({"Comment": rows["text"], "verdict": rows["label"].map(words)}).to_json(path, orient="records", lines=True)
    with pytest.raises(DataError, match=r"no column of ratings .* its columns: 'Comment', 'verdict': name it with --label-column"):
        load_data(path)
    loaded = load_data(path, columns=DataSettings(path, label_column="verdict",
                                                  label_scale="awful=1,bad=2,ok=3,good=4,great=5").columns())["train"]
    assert loaded["label"] == rows["label"].tolist() and loaded["text"] == rows["text"].tolist()
    with pytest.raises(DataError, match=r"verdict '(good|great|ok)' is not in --label-scale \(awful, bad\)"):
        load_data(path, columns=DataSettings(path, label_column="verdict", label_scale="awful=1,bad=2").columns())


def test_a_scale_that_does_not_fit_says_which_would(tmp_path):
    path = tmp_path / "zero_based.csv"
    pd.DataFrame({"review": ["good", "bad", "fine"], "rating": [4, 0, 2]}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"rating 0 is out of range 1..5 \(if rating counts from 0, say --label-scale 0-4\)"):
        load_data(path)
    assert load_data(path, columns=DataSettings(path, label_scale="0-4").columns())["train"]["label"] == [4, 0, 2]
    with pytest.raises(ReviewstarsError, match="--label-scale: expected auto, 0-4, 1-5"):
        DataSettings(path, label_scale="5-stars")


def test_a_csv_whose_columns_are_not_found_lists_them(tmp_path):
    path = tmp_path / "odd.csv"
    pd.DataFrame({"body_text": ["good"], "score_x": [5]}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"'body_text', 'score_x'\) names no column of reviews .*--text-column"):
        load_data(path)
    named = load_data(path, columns=DataSettings(path, text_column="body_text", label_column="score_x").columns())["train"]
    assert named["text"] == ["good"] and named["label"] == [4]


def test_predict_finds_or_takes_the_column_of_reviews_in_every_format(linear_model, reviews_csv, tmp_path):
    found = predict_file(linear_model, reviews_csv, tmp_path / "found.csv")
    assert found["rows"] == 600 and pd.read_csv(tmp_path / "found.csv").columns[0] == "review"
    for suffix in (".csv", ".parquet", ".jsonl"):
        path = tmp_path / f"named{suffix}"
        frame = pd.DataFrame({"Opinion": ["great food", "awful"], "id": [1, 2]})
        {".csv": lambda: frame.to_csv(path, index=False), ".parquet": lambda: frame.to_parquet(path),
         ".jsonl": lambda: frame.to_json(path, orient="records", lines=True)}[suffix]()
        assert predict_file(linear_model, path, tmp_path / f"out{suffix}", column="opinion")["rows"] == 2
    with pytest.raises(DataError, match=r"no column 'nope' \(--column\); its columns: 'Opinion', 'id'"):
        predict_file(linear_model, path, tmp_path / "nope.csv", column="nope")


def test_a_parquet_file_named_with_a_colon_is_a_local_file(linear_model, tmp_path, monkeypatch):
    """pyarrow read "batch:1.parquet" as a URI of a filesystem "batch" ("Unrecognized filesystem type in URI")."""
    monkeypatch.chdir(tmp_path)
    synthetic_reviews(100, seed=4).to_parquet("batch:1.parquet")
    assert len(training_splits(DataSettings("batch:1.parquet", dev_size=10)).train) > 0
    assert predict_file(linear_model, "batch:1.parquet", "stars:1.parquet")["rows"] == 100
    assert len(pd.read_parquet(tmp_path / "stars:1.parquet")) == 100


def test_an_unreachable_hub_is_found_out_in_seconds_and_named(tmp_path):
    """Offline without HF_HUB_OFFLINE set: the one-line error comes at once, and says to set it."""
    import os
    import subprocess
    import time

    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    env["HF_ENDPOINT"] = "http://127.0.0.1:9"  # nothing listens there: refused at once, as a missing network is
    started = time.perf_counter()
    done = subprocess.run(cli_command("train", "--model", "linear", "--output", tmp_path / "m"),
                          capture_output=True, text=True, env=env, timeout=120)
    assert time.perf_counter() - started < 20  # it took 25-56 s of retries
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "--data PATH" in done.stderr and "set HF_HUB_OFFLINE=1" in done.stderr
    # the cause is the Hub that did not answer, not the offline mode the user never set (we switched it on)
    assert "the Hub did not answer from this machine" in done.stderr and "OfflineMode" not in done.stderr
    assert not (tmp_path / "m").exists()
    tokens = subprocess.run(cli_command("tokens", "show", "hello"), capture_output=True, text=True, env=env, timeout=120)
    assert tokens.returncode == 2 and len(tokens.stderr.strip().splitlines()) == 1
    assert "cannot load the tokenizer 'bert-base-cased'" in tokens.stderr and "--tokenizer PATH" in tokens.stderr, tokens.stderr


def test_compare_checks_every_folder_and_hub_id_before_training_any(reviews_csv, tmp_path):
    from reviewstars.jobs.compare import compare

    with pytest.raises(ReviewstarsError, match="--evaluate-only ./runs/nonexistent: no such model folder"):
        compare(DataSettings(reviews_csv, dev_size=50), tmp_path / "out", ["linear"], ["./runs/nonexistent"])
    with pytest.raises(ReviewstarsError, match="could not load 'no-such-org/no-such-model'"):
        compare(DataSettings(reviews_csv, dev_size=50), tmp_path / "out", ["linear", "no-such-org/no-such-model"])
    assert not (tmp_path / "out" / "models").exists()  # nothing trained first


def test_compare_refuses_before_any_training_what_it_would_refuse_after(reviews_csv, linear_model, tmp_path, monkeypatch):
    """A probe's broken folder, a kind's name, one folder twice, and --dev-size 0 for a torch
    kind were each refused only once the other models had trained (30 minutes, under a budget)."""
    import reviewstars.jobs.compare as compare_module
    from reviewstars.errors import ModelError

    monkeypatch.setattr(compare_module, "train", lambda *a, **k: pytest.fail("a model trained first"))
    data = DataSettings(reviews_csv, dev_size=50)
    broken = tmp_path / "broken"
    shutil.copytree(linear_model, broken)
    (broken / "linear.npz").write_bytes((linear_model / "linear.npz").read_bytes()[:1000])
    empty = tmp_path / "empty"
    empty.mkdir()
    for evaluate_only, refused in (([str(broken)], f"{broken}: not a readable linear model folder"),
                                   (["linear"], "--evaluate-only linear: also in --models: give each model once"),
                                   (["scratch"], "--evaluate-only scratch: a model to train, not a trained one to score"),
                                   ([str(linear_model), f"{linear_model}/"], "--evaluate-only names one folder twice"),
                                   ([str(linear_model)] * 2, "--evaluate-only names one folder twice"),  # (scored twice, "1=")
                                   (["org/a-model", "org/a-model"], "--evaluate-only names one model twice"),
                                   ([str(empty)], rf"--evaluate-only {empty}: not a model folder \(no config.json\)")):
        with pytest.raises(ModelError, match=refused):
            compare_module.compare(data, tmp_path / "out", ["linear"], evaluate_only)
    with pytest.raises(ReviewstarsError, match=r"--dev-size 0: this model follows its training, and is calibrated, on a dev slice"):
        compare_module.compare(DataSettings(reviews_csv, dev_size=0), tmp_path / "out", ["linear", "scratch"])
    with pytest.raises(ReviewstarsError, match=r"--dev-size 0: this model follows its training"):  # not "too few training reviews"
        train("scratch", DataSettings(reviews_csv, dev_size=0), tmp_path / "scratch")
    # a probe's two names of one folder: the second model trained over the first, and the ensemble of "both" never loaded
    with pytest.raises(ModelError, match=r"--models \.\./m_scr1 and \.\./m_scr1/ would train into one folder \(models/\.\._m_scr1\)"):
        compare_module.compare(data, tmp_path / "out", ["../m_scr1", "../m_scr1/"])
    folder = tmp_path / "to-tune"
    folder.mkdir()
    with pytest.raises(ModelError, match=r"--models .*to-tune and .*to-tune/ name one model: give each model once"):
        compare_module.compare(data, tmp_path / "out", [str(folder), f"{folder}/"])
    assert compare_module._folder_name("./minilm") != compare_module._folder_name("minilm")  # two models, two folders
    # a probe's folder named ensemble: the table showed the built ensemble's scores twice, under both names
    monkeypatch.chdir(tmp_path)
    shutil.copytree(linear_model, tmp_path / "ensemble")
    with pytest.raises(ModelError, match=r"--evaluate-only ensemble: 'ensemble' names the ensemble compare adds .*\./ensemble"):
        compare_module.compare(data, tmp_path / "out", ["linear", "bag"], ["ensemble"])
    assert compare_module._check_names(["linear", "bag"], ["ensemble"], ensemble=False)
    assert not (tmp_path / "out" / "models").exists()
    shutil.rmtree(tmp_path / "ensemble")  # typed as a kind, with no folder of that name: nothing to rename
    with pytest.raises(ModelError, match=r"--models ensemble: not a kind of model to train: compare adds an ensemble of the "
                                         r"models it trains by itself"):
        compare_module.compare(data, tmp_path / "out", ["linear", "ensemble"])


def test_a_comma_in_a_model_folders_name_is_part_of_it(tmp_path, monkeypatch):
    """`--evaluate-only runs/sc,1` was split into the folder `runs/sc` and a Hub id `1`."""
    from reviewstars.cli.app import _names

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "sc,1").mkdir(parents=True)
    (tmp_path / " spaced").mkdir()
    assert _names("linear, scratch") == ["linear", "scratch"]
    assert _names("runs/sc,1") == ["runs/sc,1"] and _names("linear,runs/sc,1, minilm") == ["linear", "runs/sc,1", "minilm"]
    assert _names(" spaced,linear") == [" spaced", "linear"] and _names(",,") == []


def test_scores_kept_beside_a_model_are_its_weights_own(linear_model, tmp_path):
    """A folder's kept scores whose weights changed since (another model copied in) are not
    read as the new weights' scores: compare ranked a folder with no weights left at all."""
    from reviewstars.scoring.evaluation import load_scores, save_scores, scores_key
    from reviewstars.scoring.scores import score_predictions

    import numpy as np

    folder = tmp_path / "model"
    shutil.copytree(linear_model, folder)
    proba, labels = np.eye(5)[[0, 1, 2]], [0, 1, 2]
    key = scores_key("validation", ["a", "b", "c"], labels)
    save_scores(folder, key, score_predictions(proba, labels), proba, "linear", 10)
    assert load_scores(folder, key) is not None
    (folder / "linear.npz").write_bytes((folder / "linear.npz").read_bytes() + b"\0")
    assert load_scores(folder, key) is None


def test_a_file_that_repeats_its_reviews_is_still_scored_on_reviews_the_model_did_not_learn(tmp_path):
    """Three copies of 400 reviews with ratings drawn at random: nothing to learn, only to
    remember. With a copy on both sides of the cut, the held-out score was 0.93."""
    import numpy as np

    from reviewstars.jobs.context import RunContext

    rows = synthetic_reviews(400, seed=3)
    rows["label"] = np.random.default_rng(0).integers(0, 5, len(rows))
    path = tmp_path / "thrice.csv"
    pd.concat([rows] * 3).rename(columns={"label": "stars"}).assign(stars=lambda f: f["stars"] + 1).to_csv(path, index=False)

    splits = training_splits(DataSettings(str(path), dev_size=60))
    kept_apart = set(splits.held_out["text"]) | set(splits.dev["text"])
    assert splits.copies_left_out > 0 and not kept_apart & set(splits.train["text"])
    assert not set(splits.held_out["text"]) & set(splits.dev["text"])  # the dev slice steers training: no copies there either
    held = list(splits.held_out["text"])  # each scored once: a probe's 60 held out were 47 reviews, the interval too narrow
    assert len(held) == len(set(held)) and any("copies of others among them: each is scored once" in line for line in splits.notes)
    assert splits.sampled is None  # every row was read: none was sampled away
    assert f"left out {splits.copies_left_out:,} training and dev reviews that are copies" in splits.notes[0]
    # a capped cut keeps the very reviews a capped read keeps, copies left out alike
    data = DataSettings(str(path), dev_size=60)
    read_capped = training_splits(data, at_most=300)
    context = RunContext.open(data, check_device=False)
    context.splits()
    assert context.splits(300).train["text"] == read_capped.train["text"]
    assert context.splits(300).copies_left_out == read_capped.copies_left_out > 0
    assert context.splits(300).sampled == read_capped.sampled  # held-out rows read count, repeats scored once or not

    result = train("linear", DataSettings(str(path), dev_size=60), tmp_path / "model", **LINEAR)
    assert result.metrics.accuracy < 0.4  # chance is 0.2: a score of memory would be near 0.9
    assert any("copies of reviews in the dev slice or the scored split" in line for line in result.data_notes)


def test_copies_that_differ_only_in_case_or_spacing_are_copies_too(tmp_path):
    """A probe's file held upper-cased copies of training reviews among those scored: the linear
    model (which lowercases) got 93% of those right against 47% on the rest."""
    import numpy as np

    from reviewstars.scoring.evaluation import seen_in_training

    rows = synthetic_reviews(400, seed=4)
    rows["label"] = np.random.default_rng(1).integers(0, 5, len(rows))
    variants = rows.assign(text=[text.upper() if i % 2 else "  " + text.replace(" ", "\t ") for i, text in enumerate(rows["text"])])
    path = tmp_path / "variants.csv"
    pd.concat([rows, variants]).to_csv(path, index=False)
    splits = training_splits(DataSettings(str(path), dev_size=60))
    kept_apart = {" ".join(text.casefold().split()) for text in [*splits.held_out["text"], *splits.dev["text"]]}
    assert splits.copies_left_out > 0 and not kept_apart & {" ".join(text.casefold().split()) for text in splits.train["text"]}
    train("linear", DataSettings(str(path), dev_size=60), tmp_path / "model", **LINEAR)
    assert seen_in_training(tmp_path / "model", [text.upper() for text in splits.train["text"][:50]]) == 50


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_label_column_that_is_never_0_must_say_its_scale_rather_than_move_every_rating_up_a_star(tmp_path, suffix):
    rows = synthetic_reviews(200, seed=5)
    rows = rows[rows["label"] < 4].assign(label=lambda f: f["label"] + 1)  # 1..5 ratings without a 5: values 1..4
    path = tmp_path / f"one_to_four{suffix}"
    rows.to_csv(path, index=False) if suffix == ".csv" else rows.to_parquet(path, index=False)
    for read in (lambda: load_data(str(path)), lambda: training_splits(DataSettings(str(path)))):
        with pytest.raises(DataError, match=r"label runs 1\.\.4 and is never 0: say which rating is one star: --label-scale 1-5"):
            read()
    assert sorted(set(load_data(str(path), columns=Columns(scale="1-5"))["train"]["label"])) == [0, 1, 2, 3]
    assert sorted(set(load_data(str(path), columns=Columns(scale="0-4"))["train"]["label"])) == [1, 2, 3, 4]


def test_a_small_label_file_that_is_never_0_is_refused_from_20_rows_and_warned_of_below(tmp_path, monkeypatch):
    """49 such rows were read as 0-4, every star moved up one, with no word (the refusal began at 50)."""
    from reviewstars.data import arrow

    rows = synthetic_reviews(200, seed=5)
    rows = rows[rows["label"] < 4].assign(label=lambda f: f["label"] + 1).reset_index(drop=True)
    rows.head(arrow.SCALE_EVIDENCE_ROWS).to_csv(tmp_path / "twenty.csv", index=False)
    with pytest.raises(DataError, match=r"twenty\.csv: label runs 1\.\.4 and is never 0: say which rating is one star"):
        load_data(str(tmp_path / "twenty.csv"))
    warned = []
    monkeypatch.setattr(arrow, "warn", warned.append)
    few = rows.head(12)
    few.to_csv(tmp_path / "twelve.csv", index=False)
    assert load_data(str(tmp_path / "twelve.csv"))["train"]["label"] == few["label"].tolist()  # read as 0-4, as it says
    load_data(str(tmp_path / "twelve.csv"))  # the same file again: said once
    assert len(warned) == 1 and f"twelve.csv: label runs {few['label'].min()}..{few['label'].max()} in 12 rows, never 0: " \
        "read as 0-4 (0 is one star, as in yelp_review_full); if 1 is one star, give --label-scale 1-5" in warned[0]
    assert load_data(str(tmp_path / "twelve.csv"), columns=Columns(scale="1-5"))["train"]["label"] == (few["label"] - 1).tolist()
    assert len(warned) == 1


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_a_null_review_is_rated_and_flagged_empty_as_an_empty_csv_cell_is(linear_model, tmp_path, suffix):
    rows = pd.DataFrame({"text": ["great food", None, "awful service"]})
    path = tmp_path / f"with_null{suffix}"
    rows.to_parquet(path, index=False) if suffix == ".parquet" else rows.to_json(path, orient="records", lines=True)
    predict_file(linear_model, path, tmp_path / "out.csv")
    rated = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert rated["empty"].tolist() == [False, True, False] and rated["text"].tolist() == ["great food", "", "awful service"]


def test_reviews_without_words_are_marked_in_the_table_and_counted_in_a_files_summary(linear_model, tmp_path):
    done = run_cli("predict", "--model", linear_model, "great food", "   ")
    assert done.returncode == 0, done.stderr
    table = done.stdout.replace("│", " ")
    assert table.count("no words: these stars say nothing of a review") == 1
    path = tmp_path / "some_empty.csv"
    pd.DataFrame({"text": ["great food", "", "  ", "awful service"]}).to_csv(path, index=False)
    done = run_cli("predict", "--model", linear_model, "--file", path, "--output", tmp_path / "out.csv")
    assert done.returncode == 0 and "2 of them have no words (flagged in the empty column)" in done.stdout, done.stderr
    pd.DataFrame({"text": ["great food", "", "awful service"]}).to_csv(path, index=False)
    done = run_cli("predict", "--model", linear_model, "--file", path, "--output", tmp_path / "one.csv")
    assert "1 of them has no words (flagged in the empty column): its stars say nothing" in done.stdout, done.stderr


@pytest.mark.parametrize("separator", [";", "\t"])
def test_a_spreadsheets_semicolons_or_tabs_and_its_review_text_header_are_read_as_a_csv_is(reviews_csv, tmp_path, separator):
    frame = pd.read_csv(reviews_csv).rename(columns={"review": "Review Text", "rating": "Rating"})
    frame["review"] = frame.pop("Review Text").str.replace(",", ";") + " (50,5 km away)"  # the other separator inside cells
    frame = frame.rename(columns={"review": "Review Text"})
    path = tmp_path / "export.csv"
    frame.to_csv(path, index=False, sep=separator)
    read = load_data(str(path))["train"]
    assert len(read) == 600 and read["text"] == frame["Review Text"].tolist()
    assert read["label"] == (frame["Rating"] - 1).tolist()
    rated = predict_file(train("linear", str(path), tmp_path / "model", **LINEAR).output, path, tmp_path / "out.csv", shard="1/3")
    assert rated["rows"] == 200  # a shard's byte ranges hold whole rows of this file too
    (tmp_path / "export.tsv").write_bytes(path.read_bytes())
    with pytest.raises(DataError, match=r"unknown format '\.tsv'.*a tab- or semicolon-separated file is read as one: name it \.csv"):
        load_data(str(tmp_path / "export.tsv"))


def test_a_file_with_many_bad_rows_says_how_many_and_where_in_one_line(tmp_path):
    rows = synthetic_reviews(100, seed=2).assign(rating=lambda f: (f["label"] + 1).astype(object)).drop(columns="label")
    rows.loc[rows.index % 10 == 0, "rating"] = ""  # every tenth rating missing, as an export leaves them
    path = tmp_path / "gaps.csv"
    rows.to_csv(path, index=False)
    for read in (lambda: load_data(str(path)), lambda: training_splits(DataSettings(str(path)))):
        with pytest.raises(DataError) as caught:
            read()
        assert str(caught.value).endswith("gaps.csv: row 1 (line 2): rating is missing (expected a rating, 1..5): fill it in, or "
                                          "drop the row (and 9 more bad rows: 11, 21, 31, 41, 51, ...)")


def test_label_scale_pairs_match_values_as_a_file_spells_them(tmp_path, linear_model):
    path = tmp_path / "spelt.csv"
    pd.DataFrame({"text": ["a", "b", "c", "d"], "verdict": ["Negative", "POSITIVE", "3.0", "neutral "]}).to_csv(path, index=False)
    read = load_data(str(path), columns=Columns(label="verdict", scale="negative=1,neutral=3,positive=5,3=2"))["train"]
    assert read["label"] == [0, 4, 1, 2]
    with pytest.raises(DataError, match=r"is a folder: give one of its files"):
        predict_file(linear_model, tmp_path, tmp_path / "out.csv")


# --------------------------------------------------------------------------- predict --file --keep-columns

def _with_columns_of_the_users(n: int = 50):
    rows = synthetic_reviews(n, seed=8)
    return pd.DataFrame({"id": [f"{i:03d}" for i in range(n)], "text": rows["text"], "stars": rows["label"] + 1,
                         "p_1": "mine", "when": pd.Timestamp("2026-01-01") + pd.to_timedelta(range(n), unit="h")})


@pytest.mark.parametrize("suffix, out_suffix", [(".csv", ".csv"), (".parquet", ".parquet"), (".jsonl", ".jsonl"), (".csv", ".parquet"),
                                                (".parquet", ".jsonl")])
def test_keep_columns_keeps_every_column_of_the_input_beside_the_predictions_row_for_row(linear_model, tmp_path, suffix, out_suffix):
    import pyarrow as pa
    import pyarrow.parquet as pq

    users = _with_columns_of_the_users()
    path = tmp_path / f"mine{suffix}"
    if suffix == ".csv":
        users.to_csv(path, index=False)
    elif suffix == ".parquet":  # small row groups, read in chunks of another size: rows must still meet their predictions
        pq.write_table(pa.Table.from_pandas(users.assign(n=pd.array([1, None] * 25, dtype="Int64")), preserve_index=False),
                       path, row_group_size=6)
    else:
        users.assign(when=users["when"].astype(str), tags=[{"lang": "en"}] * len(users)).to_json(path, orient="records", lines=True)
    plain = predict_file(linear_model, path, tmp_path / f"plain{out_suffix}", chunk_rows=8)
    kept = predict_file(linear_model, path, tmp_path / f"kept{out_suffix}", chunk_rows=8, keep_columns=True)
    assert plain["rows"] == kept["rows"] == 50
    from reviewstars.data.frames import read_frame

    with_columns, without = read_frame(tmp_path / f"kept{out_suffix}"), read_frame(tmp_path / f"plain{out_suffix}")
    assert list(with_columns.columns[:5]) == ["id", "text", "input_stars", "input_p_1", "when"]
    assert list(with_columns.columns[-8:]) == list(without.columns[-8:]) == ["stars", *(f"p_{s}" for s in range(1, 6)), "expected_stars", "empty"]
    predictions = [name for name in without.columns if name != "text"]  # the reviews come back with the input's own type
    pd.testing.assert_frame_equal(with_columns[predictions], without[predictions])  # the predictions are the same ones
    assert with_columns["text"].tolist() == without["text"].tolist()
    assert [str(i) for i in with_columns["id"]] == users["id"].tolist() or suffix == ".jsonl"
    assert [int(s) for s in with_columns["input_stars"]] == users["stars"].tolist() and set(with_columns["input_p_1"]) == {"mine"}
    if suffix == ".parquet" and out_suffix == ".jsonl":
        first, second = (json.loads(line) for line in (tmp_path / "kept.jsonl").read_text().splitlines()[:2])
        assert (first["n"], second["n"]) == (1, None) and second["when"].startswith("2026-01-01T01:00")  # an integer stays one
    if suffix == ".jsonl":
        assert with_columns["tags"][0] == {"lang": "en"}  # JSON to JSON: a nested value stays one


def test_keep_columns_writes_a_null_review_back_as_null(linear_model, tmp_path):
    """It is rated as a review of no words (read as ""), and written back as the input had it."""
    path = tmp_path / "mine.jsonl"
    path.write_text('{"id": 1, "body": "great food", "n": null}\n{"id": 2, "body": null, "n": 3}\n')
    predict_file(linear_model, path, tmp_path / "out.jsonl", column="body", keep_columns=True)
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [(row["body"], row["n"], row["empty"]) for row in rows] == [("great food", None, False), (None, 3, True)]
    predict_file(linear_model, path, tmp_path / "plain.jsonl", column="body")
    assert [json.loads(line)["body"] for line in (tmp_path / "plain.jsonl").read_text().splitlines()] == ["great food", ""]


def test_keep_columns_in_shards_merges_into_the_whole_files_output(linear_model, tmp_path):
    from reviewstars.jobs import merge_predictions

    path = tmp_path / "mine.csv"
    _with_columns_of_the_users(60).to_csv(path, index=False)
    predict_file(linear_model, path, tmp_path / "whole.csv", keep_columns=True)
    parts = [tmp_path / f"part{i}.csv" for i in range(3)]
    for i, part in enumerate(parts):
        predict_file(linear_model, path, part, shard=f"{i}/3", keep_columns=True)
    merge_predictions(parts, tmp_path / "merged.csv")
    assert (tmp_path / "merged.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    done = run_cli("predict", "--model", linear_model, "--file", path, "-o", tmp_path / "ray.csv", "--engine", "ray", "--keep-columns")
    assert done.returncode != 0 and "--keep-columns goes with --engine local" in done.stderr


def test_evaluate_reads_a_models_own_kind_of_file_as_it_was_trained_to(tmp_path):
    rows = synthetic_reviews(300, seed=4)
    rows = rows[rows["label"].isin([0, 2, 4])]
    path = tmp_path / "sentiment.csv"
    pd.DataFrame({"text": rows["text"], "verdict": rows["label"].map({0: "negative", 2: "neutral", 4: "positive"})}).to_csv(path, index=False)
    scale = "negative=1,neutral=3,positive=5"
    assert run_cli("train", "--model", "linear", "--data", path, "--label-column", "verdict", "--label-scale", scale,
                   "--min-df", 1, "-o", tmp_path / "model").returncode == 0
    card = (tmp_path / "model" / "README.md").read_text()  # the stars no review had: said, not a list of noise
    assert "- 2★: (no training review had this rating: the model never predicts it)" in card and "- 3★: " in card
    done = run_cli("evaluate", "--model", tmp_path / "model", "--data", path, env={"REVIEWSTARS_QUIET": None})
    assert done.returncode == 0, done.stderr
    assert f"reading the reviews as model was trained to: --label-column verdict, --label-scale {scale}" in done.stdout + done.stderr
    assert "accuracy" in done.stdout
    assert "model on sentiment.csv" in done.stdout  # one file is named as itself, not "train" (read as a training score)
    rows.sample(frac=1, random_state=1).assign(verdict=lambda f: f["label"].map({0: "Negative", 2: "neutral", 4: "positive"})) \
        .drop(columns="label").to_csv(tmp_path / "survey_test.csv", index=False)  # another file of the same kind: read alike
    done = run_cli("evaluate", "--model", tmp_path / "model", "--data", tmp_path / "survey_test.csv", env={"REVIEWSTARS_QUIET": None})
    assert done.returncode == 0 and "was trained to" in done.stdout + done.stderr, done.stderr
    scale_only = tmp_path / "scale_only"  # a model that named no ratings' column: its scale is for its own file alone
    assert run_cli("train", "--model", "linear", "--data", path, "--text-column", "text", "--label-column", "verdict",
                   "--label-scale", scale, "--min-df", 1, "-o", scale_only).returncode == 0
    from reviewstars.jobs.evaluate import columns_trained_with

    yelp_like = tmp_path / "yelp_like.csv"
    synthetic_reviews(60, seed=1).to_csv(yelp_like, index=False)  # text, label 0..4
    assert columns_trained_with(scale_only, yelp_like) == Columns("text", None, "auto")
    other = tmp_path / "other.csv"  # another data set is read by its own names: nothing remembered applies to it
    synthetic_reviews(100, seed=9).to_csv(other, index=False)
    done = run_cli("evaluate", "--model", tmp_path / "model", "--data", other, env={"REVIEWSTARS_QUIET": None})
    assert done.returncode == 0 and "trained to" not in done.stdout + done.stderr, done.stderr


def test_a_file_whose_reviews_are_all_the_same_text_says_so(tmp_path):
    path = tmp_path / "same.csv"
    pd.DataFrame({"text": ["the very same words"] * 200, "stars": [1, 2, 3, 4, 5] * 40}).to_csv(path, index=False)
    with pytest.raises(DataError, match="reviews to train on are copies of reviews held out to score or follow the model "
                                        r"\(the file repeats its reviews\): none is left to learn from"):
        train("linear", str(path), tmp_path / "model")


def test_keep_columns_from_json_lines_whose_rows_differ(linear_model, tmp_path):
    import pyarrow.parquet as pq

    from support import run_cli as cli

    rows = synthetic_reviews(30, seed=6)
    records = []
    for i, text in enumerate(rows["text"]):
        record = {"id": i if i % 4 else f"a{i}", "text": text}  # an id that is a number or a text
        if i % 3 == 0:
            record["extra"] = "only some rows"  # a field the first row has and others lack
        if i == 7:
            record["late"] = True  # a field the first row lacks
        records.append(record)
    records[0]["tag"] = None  # null in the first rows of a chunk...
    records[-1]["tag"] = "x"  # ...a text later: one type a column all the same
    path = tmp_path / "differ.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    done = cli("predict", "--model", linear_model, "--file", path, "-o", tmp_path / "out.parquet", "--keep-columns")
    assert done.returncode == 0, done.stderr
    assert "not kept: late, fields some rows have but the first one lacks" in done.stderr
    out = pq.read_table(tmp_path / "out.parquet").to_pandas().astype(object).where(lambda f: f.notna(), None)
    assert out["id"].tolist() == [str(r["id"]) if not isinstance(r["id"], str) else r["id"] for r in records]
    assert out["extra"].tolist() == ["only some rows" if i % 3 == 0 else None for i in range(30)]
    assert out["tag"].tolist() == [None] * 29 + ["x"]
    done = cli("predict", "--model", linear_model, "--file", path, "-o", tmp_path / "out.jsonl", "--keep-columns")
    assert done.returncode == 0, done.stderr
    first = json.loads((tmp_path / "out.jsonl").read_text().splitlines()[1])
    assert first["id"] == 1 and first["extra"] is None  # JSON to JSON: its own types


def test_a_semicolon_file_whose_header_holds_a_comma_and_yelp_csv_keep_their_separators(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text('id;"review, full text";rating\n1;"great, really";5\n2;awful;1\n')
    read = load_data(str(path), columns=Columns(text="review, full text"))["train"]
    assert read["text"] == ["great, really", "awful"] and read["label"] == [4, 0]
    yelp = tmp_path / "yelp.csv"
    yelp.write_text('"5","I love it; really; great"\n"1","no; never"\n')
    assert load_data(str(yelp))["train"]["text"] == ["I love it; really; great", "no; never"]
    with pytest.raises(ValueError, match="'bad' is given twice, as 1 and 5 stars"):
        from reviewstars.data import parse_label_scale

        parse_label_scale("Bad=1,bad=5")


def test_slices_carved_from_a_skewed_file_leave_every_star_reviews_to_learn_from(tmp_path):
    rows = synthetic_reviews(2000, seed=12)
    rare = pd.concat([rows[rows["label"] == star].head(50) for star in range(4)] + [rows[rows["label"] == 4]] * 5)
    rare = rare.assign(text=[f"{text} #{i}" for i, text in enumerate(rare["text"])])  # no copies: every review its own
    path = tmp_path / "skewed.parquet"
    rare.sample(frac=1, random_state=0).to_parquet(path, index=False)
    splits = training_splits(DataSettings(str(path)))
    trained = pd.Series(splits.train["label"]).value_counts()
    assert all(trained.get(star, 0) >= 50 // 4 for star in range(4))  # at least a quarter of each star stays
    assert all(pd.Series(part["label"]).value_counts().get(star, 0) <= 25 for part in (splits.held_out, splits.dev) for star in range(4))
    assert train("linear", str(path), tmp_path / "model", **LINEAR).metrics is not None


def test_predict_keep_columns_with_a_column_named_otherwise_than_usual(linear_model, tmp_path):
    path = tmp_path / "survey.csv"
    pd.DataFrame({"Resp ID": [1, 2], "Customer Comment": ["great food", "awful"]}).to_csv(path, index=False)
    predict_file(linear_model, path, tmp_path / "out.csv", column="Customer Comment", keep_columns=True)
    assert list(pd.read_csv(tmp_path / "out.csv").columns[:2]) == ["Resp ID", "Customer Comment"]


def test_a_balanced_carve_is_as_it_always_was_and_only_a_rare_star_is_spared():
    import numpy as np

    from reviewstars.data import carve_rows

    balanced = np.repeat(np.arange(5), 140)
    np.random.default_rng(0).shuffle(balanced)
    kept, carved = carve_rows(balanced, 500, seed=42, at_most=500)  # --train-size 200 beside --dev-size 500
    assert np.bincount(balanced[carved]).tolist() == [100] * 5 and len(kept) == 200
    rare = np.concatenate([np.repeat(np.arange(4), 30), np.repeat(4, 580)])  # 30 of each star but five: 700 in all
    kept, carved = carve_rows(rare, 500, seed=42, at_most=500)
    assert all(np.bincount(rare[kept], minlength=5)[:4] >= 8)  # each rare star keeps reviews to learn from


def test_a_file_of_three_stars_gives_slices_balanced_among_them_and_says_so_only_when_they_are(tmp_path):
    """A survey of bad=1, ok=3, good=5: the slices take an even share of each star it has (a
    probe saw 32/30/58 called 'balanced by star': the absent stars' share was drawn at random)."""
    import numpy as np

    from reviewstars.data import DataSettings, carve_rows, is_balanced, training_splits

    three = np.repeat([0, 2, 4], [69, 120, 200])
    np.random.default_rng(1).shuffle(three)
    kept, carved = carve_rows(three, 120, seed=42, at_most=120)
    assert np.bincount(three[carved], minlength=5).tolist() == [40, 0, 40, 0, 40] and len(kept) == len(three) - 120
    odd = carve_rows(three, 121, seed=42, at_most=121)[1]
    assert sorted(np.bincount(three[odd], minlength=5)[[0, 2, 4]].tolist()) == [40, 40, 41]
    assert is_balanced([0, 2, 4, 0]) and not is_balanced([0, 0, 0, 2, 4])

    path = tmp_path / "survey.csv"
    pd.DataFrame({"text": [f"review number {i} of a survey" for i in range(len(three))], "label": three}).to_csv(path, index=False)
    splits = training_splits(DataSettings(path, dev_size=60))
    assert "balanced by star (it has no validation" in splits.describe()
    lopsided = np.repeat([0, 4], [6, 400])  # one star too rare for an even share: said as it is
    pd.DataFrame({"text": [f"review number {i} of a survey" for i in range(406)], "label": lopsided}).to_csv(path, index=False)
    assert "as balanced by star as the file's stars allow" in training_splits(DataSettings(path, dev_size=60)).describe()


def test_stars_no_training_review_has_are_named_before_training(tmp_path, capsys):
    """Three rows of 1 and 3 stars trained "fine": a model that rates anything 1 or 3 stars, without a word."""
    survey = synthetic_reviews(200, seed=3)
    survey = survey[survey["label"].isin([0, 2])]
    survey.to_csv(tmp_path / "survey.csv", index=False)
    result = train("linear", DataSettings(tmp_path / "survey.csv", dev_size=20), tmp_path / "model", **LINEAR)
    line = "no training review has 2, 4 or 5 stars: the model will never predict them"
    assert f"warning: linear: {line}" in " ".join(capsys.readouterr().err.split()) and line in result.data_notes


def test_a_train_size_the_dev_slice_leaves_one_star_says_so_not_that_the_data_has_one(tiny_data, tmp_path):
    """--train-size 5 --dev-size 50 on the Yelp data said "the train split needs reviews of at least two star ratings"."""
    with pytest.raises(DataError, match=r"the 1 review left to train on beside the dev slice \(50, balanced by star\) has "
                                        r"\d stars: give a larger --train-size or a smaller --dev-size"):
        train("linear", DataSettings(tiny_data, train_size=1, dev_size=50), tmp_path / "model", **LINEAR)


def test_held_out_is_cut_from_the_very_file_trained_on_from_any_folder(tmp_path, monkeypatch):
    """The data was recorded as typed ("reviews.csv"): from another folder, --split held-out cut
    another file of that name and scored its reviews as the held-out ones."""
    from reviewstars.jobs import evaluate

    first, second = tmp_path / "A", tmp_path / "B"
    first.mkdir()
    second.mkdir()
    rows = synthetic_reviews(600, seed=21)
    rows.iloc[:300].to_csv(first / "reviews.csv", index=False)
    rows.iloc[300:].to_csv(second / "reviews.csv", index=False)
    monkeypatch.chdir(first)
    train("linear", DataSettings("reviews.csv", dev_size=50), first / "model", **LINEAR)
    config = json.loads((first / "model" / "config.json").read_text())
    assert config["reviewstars"]["training"]["data"]["data"] == str(first / "reviews.csv")
    held_out = evaluate(first / "model", split="held-out")
    monkeypatch.chdir(second)
    assert evaluate(first / "model", split="held-out").accuracy == held_out.accuracy  # A's reviews, from B too
    config["reviewstars"]["training"]["data"]["data"] = "reviews.csv"  # as a folder written before recorded it
    (first / "model" / "config.json").write_text(json.dumps(config))
    with pytest.raises(DataError, match="not the reviews .* was trained on: .* of those it learned are not in the part cut"):
        evaluate(first / "model", split="held-out")  # B's reviews.csv: refused, not scored as A's held-out


def test_a_file_with_two_columns_of_ratings_says_which_it_reads(tmp_path):
    """A probe's file had `label` and `stars` that disagreed: `label` was read without a word."""
    from reviewstars.data import training_splits

    rows = synthetic_reviews(200, seed=6)
    path = tmp_path / "both.csv"
    rows.assign(stars=(rows["label"] + 2) % 5 + 1).to_csv(path, index=False)
    notes = training_splits(DataSettings(str(path), dev_size=20)).notes
    assert notes[0] == "both.csv has 'stars' beside 'label': the ratings are read from 'label' (--label-column names the one to read)"
    named = training_splits(DataSettings(str(path), dev_size=20, label_column="stars", label_scale="1-5")).notes
    assert not any("beside" in line for line in named)


def test_offline_a_hub_id_not_in_the_cache_is_refused_before_torch_or_transformers_load(tmp_path):
    """Offline, `predict --model typo` imported transformers and torch (5-9 s) only to be told
    the name was not in the cache; a cached one still passes the check."""
    import os
    import subprocess
    import sys

    cache = tmp_path / "hub"
    snapshot = cache / "models--someone--cached-model" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (cache / "models--someone--cached-model" / "refs").mkdir()
    (cache / "models--someone--cached-model" / "refs" / "main").write_text("abc123")
    script = """
import sys
from reviewstars.errors import ModelError
from reviewstars.models import check_model_name, load_predictor
from reviewstars.models.onnx import export_onnx
check_model_name("someone/cached-model")
for attempt in (lambda: load_predictor("someone/not-cached"), lambda: export_onnx("typo", "out-onnx"),
                lambda: load_predictor("my model"), lambda: load_predictor("a" * 300), lambda: export_onnx("linear-folder", "o")):
    try:
        attempt()
    except ModelError as error:
        print(error)
print("imported:", sorted(m for m in ("torch", "transformers") if m in sys.modules))
"""
    (tmp_path / "linear-folder").mkdir()
    (tmp_path / "linear-folder" / "config.json").write_text(json.dumps({"reviewstars": {"kind": "linear"}}))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0 and len(lines) == 6, done.stdout + done.stderr
    assert lines[0].startswith("could not load 'someone/not-cached' from the Hugging Face Hub (HF_HUB_OFFLINE is set, and the "
                               "name is not in the local Hugging Face cache)")
    assert "Give a model folder reviewstars trained" in lines[0] and lines[1].startswith("could not load 'typo'")
    assert lines[2].startswith("--model 'my model': no such folder here, and not a Hub id either")  # it took 4.5-8 s
    assert lines[3] == "a" * 60 + "...: no such model folder (File name too long)"  # a traceback (ENAMETOOLONG)
    assert lines[4] == "linear-folder: only transformer models export to ONNX (this one is 'linear')"  # after 8 s
    assert lines[5] == "imported: []"


@pytest.mark.parametrize("name, message", [
    ("", r"^--model is empty: give a model folder"),
    (".", r"^\.: not a model folder \(no config\.json\)"),  # not a link of the user's beside it, named instead
    ("folder/config.json", r"folder/config\.json: a file, not a model folder: give the folder that holds config\.json$"),
    ("dangling", r"^dangling: a link that leads nowhere$"),
])
def test_a_model_name_that_names_no_model_says_what_it_names(name, message, tmp_path, monkeypatch):
    """A probe's `--model ""` in a folder with a dead link was told about the link, and
    `--model folder/config.json` that folder/config.json had no config.json."""
    from reviewstars.errors import ModelError
    from reviewstars.models import load_predictor

    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "config.json").write_text("{}")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(ModelError, match=message):
        load_predictor(name)


def test_an_eval_size_larger_than_the_reviews_there_says_so_and_records_no_sample(linear_model, tiny_data, tmp_path, monkeypatch):
    """`--eval-size 5000` on 2,000 validation reviews said nothing, and its JSON read "sample": 5000
    beside "n": 2000; train held out 200 of an asked 300 without a word."""
    import importlib

    evaluate_module = importlib.import_module("reviewstars.jobs.evaluate")  # (the package's `evaluate` is the function)
    said = []
    monkeypatch.setattr(evaluate_module, "note", said.append)
    scores = evaluate_module.evaluate(linear_model, tiny_data, split="validation", n=1000, output=tmp_path / "scores.json")
    written = json.loads((tmp_path / "scores.json").read_text())
    assert scores.n == written["n"] == 150 and written["sample"] is None
    assert said == ["--eval-size 1,000, but validation has 150 reviews: each of them is scored"]
    evaluate_module.evaluate(linear_model, tiny_data, split="validation", n=100, output=tmp_path / "sample.json")
    assert json.loads((tmp_path / "sample.json").read_text())["sample"] == 100 and len(said) == 1  # a real sample: as before

    assert "--eval-size 1,000, but validation has 150 reviews: each of them is scored" in \
        training_splits(DataSettings(str(tiny_data), eval_size=1000)).notes
    assert "--eval-size 300, but 200 reviews are held out of train.parquet to score (at most half of it)" in \
        training_splits(DataSettings(str(tiny_data / "train.parquet"), eval_size=300, dev_size=50)).notes
    assert not [n for n in training_splits(DataSettings(str(tiny_data), eval_size=100)).notes if "--eval-size" in n]


def test_a_predictions_file_is_not_taken_for_labelled_reviews(linear_model, tiny_data, tmp_path):
    """`evaluate --data PREDICTIONS.csv` read the model's own `stars` as the ratings: accuracy 1.0000, no word."""
    from reviewstars.jobs import evaluate

    reviews = tmp_path / "reviews.csv"
    pd.read_parquet(tiny_data / "validation.parquet").to_csv(reviews, index=False)
    predict_file(linear_model, reviews, tmp_path / "stars.csv")
    with pytest.raises(DataError, match=r"stars\.csv: holds predictions \(stars beside p_1\.\.p_5 and expected_stars, as "
                                        r"`predict` writes them\): its stars are a model's"):
        evaluate(linear_model, tmp_path / "stars.csv")
    truth = evaluate(linear_model, reviews).accuracy
    assert truth < 1
    predict_file(linear_model, reviews, tmp_path / "kept.csv", keep_columns=True)  # the true label kept beside: read first
    assert evaluate(linear_model, tmp_path / "kept.csv").accuracy == pytest.approx(truth)
    assert evaluate(linear_model, tmp_path / "stars.csv", columns=Columns(label="stars")).accuracy == 1  # named: as asked
