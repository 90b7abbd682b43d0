"""Past one process: a shard reads only its own rows, a stopped run goes on where it stopped,
`merge` streams, and Ray Data rates a file (or a user's own pipeline) as `predict --file` does."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import time

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import reviewstars.jobs.predict as predict_module
from reviewstars.data import iter_text_chunks
from reviewstars.data.frames import read_frame
from reviewstars.data.pieces import EVERY, index_rows, iter_span_texts, shard_rows
from reviewstars.errors import DataError, Interrupted, ReviewstarsError
from reviewstars.jobs import merge_predictions, predict_file
from reviewstars.models import load_predictor

from conftest import synthetic_reviews
from support import cli_command, cli_env

ODD = ['line one\n\nline "quoted" two\r\n,comma', "", '"', "a,b", "ünï\u2028cödé"]


def _reviews(n: int, seed: int = 0) -> pd.DataFrame:
    frame = synthetic_reviews(n, seed)[["text"]]
    for i, text in enumerate(ODD):  # newlines and quotes inside reviews: records are not lines
        frame.iloc[7 + 31 * i, 0] = text
    return frame


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scale")
    frame = _reviews(1000)
    frame.to_csv(folder / "in.csv", index=False)
    with open(folder / "in.jsonl", "w", encoding="utf-8") as handle:  # blank lines are skipped, and counted as no row
        for i, text in enumerate(frame["text"]):
            handle.write(json.dumps({"text": text}, ensure_ascii=False) + "\n" + ("\n   \n" if i % 97 == 0 else ""))
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), folder / "in.parquet", row_group_size=130)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), folder / "one-group.parquet")  # as pandas writes
    return folder, frame["text"].tolist()


@pytest.mark.parametrize("name", ["in.csv", "in.jsonl", "in.parquet", "one-group.parquet"])
def test_any_run_of_rows_reads_as_the_whole_file_does(files, name, monkeypatch):
    import reviewstars.data.formats as formats

    monkeypatch.setattr(formats, "PARQUET_BATCH_ROWS", 64)  # a row group is streamed in batches, never read whole
    folder, texts = files
    index = index_rows(folder / name)
    assert index.rows == len(texts) == len([t for chunk in iter_text_chunks(folder / name) for t in chunk])
    rng = random.Random(0)
    for first, rows in [(0, 1), (EVERY - 1, 2), (EVERY, EVERY), (999, 5), *((rng.randrange(1000), rng.randrange(1, 300)) for _ in range(20))]:
        read = [text for chunk in iter_span_texts(folder / name, "text", index.span(first, rows), 17) for text in chunk]
        assert read == texts[first:first + rows], (first, rows)


def test_the_original_yelp_csv_without_header_is_indexed_too(tmp_path):
    source = tmp_path / "train.csv"
    source.write_text('"5","great ""food""\\nyes"\n"1","awful,\nreally"\n"3","ok"\n', encoding="utf-8")
    index = index_rows(source)
    assert index.rows == 3
    assert [t for chunk in iter_span_texts(source, "text", index.span(1, 2)) for t in chunk] == ["awful,\nreally", "ok"]


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_a_quote_inside_an_unquoted_field_is_text_as_the_csv_reader_has_it(tmp_path, delimiter):
    """A probe's `the 12" pizza` (one quote, unquoted) made the index read every later newline as
    inside a quote: "rated 11 reviews" of 1,000, exit 0, in plain runs, shards and Ray alike."""
    import csv

    rng = random.Random(3)
    pieces = ['12" pizza', 'say "hi"', '"quoted, with a comma"', '"two\nlines"', '"a ""doubled"" quote"', 'plain',
              '""', '', '"ends in a quote"""', 'it\'s', '6\'2" tall', '"\r\ninside"']
    path = tmp_path / "odd.csv"
    rows = []
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(f"id{delimiter}text\r\n")
        for i in range(700):
            # after a field's start, quotes are text: a newline there would end the record
            unquoted = [piece for piece in pieces if not piece.startswith('"')]
            text = rng.choice(pieces) if i % 5 else rng.choice(unquoted) + " and " + rng.choice(pieces).replace("\r", "").replace("\n", " ").replace(delimiter, " ")
            handle.write(f"{i}{delimiter}{text}" + ("\r\n" if i % 2 else "\n") + ("\n" if i % 50 == 0 else ""))
    with open(path, encoding="utf-8", newline="") as handle:
        expected = [cells[1] for cells in list(csv.reader(handle, strict=True, delimiter=delimiter))[1:] if cells]
    index = index_rows(path)
    assert index.rows == len(expected) == 700
    for first, count in [(0, 700), (EVERY - 1, 3), (333, 200), (699, 1)]:
        read = [text for chunk in iter_span_texts(path, "text", index.span(first, count), 17) for text in chunk]
        assert read == expected[first:first + count], (first, count)


def test_a_json_lines_line_of_white_space_is_no_row_however_long(tmp_path):
    """A line of 80 spaces was counted as a record: shards and Ray rated a row twice."""
    path = tmp_path / "ws.jsonl"
    lines = [json.dumps({"id": i, "text": f"review {i}"}) for i in range(200)]
    lines[10:10] = [" " * 80, "\t \u3000 \x1c", ""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    index = index_rows(path)
    assert index.rows == 200
    assert [t for chunk in iter_span_texts(path, "text", index.span(100, 100)) for t in chunk] == [f"review {i}" for i in range(100, 200)]


def test_a_first_line_of_a_byte_order_mark_alone_is_blank_to_the_index_as_to_the_reader(linear_model, tmp_path):
    """A JSON Lines file whose first line held only a BOM failed ("1 rows fewer than counted"); a
    CSV's header after such a line was rated as a review."""
    jsonl, csv_file = tmp_path / "bom.jsonl", tmp_path / "bom.csv"
    jsonl.write_bytes(b'\xef\xbb\xbf\n{"text": "great food"}\n{"text": "awful"}\n')
    csv_file.write_bytes(b"\xef\xbb\xbf\ntext,label\ngreat food,4\nawful,0\n")
    for path in (jsonl, csv_file):
        assert index_rows(path).rows == 2
        predict_file(linear_model, path, tmp_path / f"{path.stem}{path.suffix}.parquet")
        assert pd.read_parquet(tmp_path / f"{path.stem}{path.suffix}.parquet")["text"].tolist() == ["great food", "awful"]


def test_shards_are_consecutive_runs_of_nearly_equal_size():
    assert [shard_rows(203, i, 3) for i in range(3)] == [(0, 68), (68, 136), (136, 203)]
    assert [shard_rows(2, i, 4) for i in range(4)] == [(0, 1), (1, 1), (1, 2), (2, 2)]


def test_a_shard_reads_only_its_own_rows(linear_model, tmp_path, monkeypatch):
    """A JSON Lines shard never parses the other shards' rows (their faults are not its
    business); a Parquet shard reads only the row groups that hold its rows."""
    lines = [json.dumps({"text": f"review {i}"}) for i in range(400)]
    lines[50] = "{not json"  # in shard 0's half
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")
    assert predict_file(linear_model, source, tmp_path / "p1.csv", shard="1/2")["rows"] == 200
    with pytest.raises(DataError, match=r"in.jsonl: row 51: not valid JSON"):
        predict_file(linear_model, source, tmp_path / "p0.csv", shard="0/2")

    table = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": [f"review {i}" for i in range(1000)]}), table, row_group_size=100)
    read = []
    original = pq.ParquetFile.iter_batches
    monkeypatch.setattr(pq.ParquetFile, "iter_batches", lambda self, *a, row_groups=None, **kw: read.extend(row_groups or []) or original(
        self, *a, row_groups=row_groups, **kw))
    predict_file(linear_model, table, tmp_path / "q.parquet", shard="2/4")  # rows 500..749
    assert sorted(set(read)) == [5, 6, 7]


def test_merge_streams_the_shards_a_batch_at_a_time(linear_model, files, tmp_path, monkeypatch):
    folder, _ = files
    whole = tmp_path / "whole.csv"
    predict_file(linear_model, folder / "in.csv", whole)
    parts = [tmp_path / f"p{i}.csv" for i in range(3)]
    for i, part in enumerate(parts):
        predict_file(linear_model, folder / "in.csv", part, shard=f"{i}/3")
    sizes = []
    original = predict_module.read_frames
    monkeypatch.setattr(predict_module, "read_frames", lambda path, batch_rows=0, **options: (sizes.append(len(f)) or f for f in original(path, 64, **options)))
    assert merge_predictions(parts, tmp_path / "merged.csv")["rows"] == 1000
    pd.testing.assert_frame_equal(read_frame(tmp_path / "merged.csv"), read_frame(whole))
    assert sum(sizes) == 1000 and max(sizes) == 64  # a batch at a time, never a whole shard in memory

    swapped = pd.read_csv(parts[1], keep_default_na=False, dtype=str)
    swapped.loc[[0, 1], "row"] = swapped.loc[[1, 0], "row"].to_numpy()
    swapped.to_csv(parts[1], index=False)
    record = parts[1].with_name(parts[1].name + ".shard.json")
    from reviewstars.jobs.shards import fingerprint

    record.write_text(json.dumps({**json.loads(record.read_text()), "output": fingerprint(parts[1])}))
    with pytest.raises(ReviewstarsError, match=r"p1.csv: the shard outputs overlap or miss rows \(row 335 where row 334 was due\)"):
        merge_predictions(parts, tmp_path / "bad.csv")
    assert not (tmp_path / "bad.csv").exists()


class _StopsAfter:
    """The model, until its `calls`-th call: then Ctrl-C."""

    def __init__(self, predictor, calls: int):
        self.predictor, self.calls, self.rated = predictor, calls, 0

    def predict_proba(self, texts, batch_size=None):
        self.calls -= 1
        if self.calls < 0:
            raise KeyboardInterrupt
        self.rated += len(texts)
        return self.predictor.predict_proba(texts, batch_size=batch_size)


def test_a_stopped_prediction_goes_on_where_it_stopped(linear_model, files, tmp_path, monkeypatch):
    folder, texts = files
    whole = tmp_path / "whole.parquet"
    predict_file(linear_model, folder / "in.csv", whole, chunk_rows=100)
    stopping = _StopsAfter(load_predictor(linear_model), calls=3)
    monkeypatch.setattr(predict_module, "opened", lambda model, device=None: stopping)
    output = tmp_path / "out.parquet"
    with pytest.raises(Interrupted):  # Ctrl-C, said in one line
        predict_file(linear_model, folder / "in.csv", output, chunk_rows=100)
    assert not output.exists() and len(list((tmp_path / ".out.parquet.partial").glob("rows-*.parquet"))) == 3

    going_on = _StopsAfter(load_predictor(linear_model), calls=10**6)
    monkeypatch.setattr(predict_module, "opened", lambda model, device=None: going_on)
    summary = predict_file(linear_model, folder / "in.csv", output, chunk_rows=100)
    assert going_on.rated == summary["rated"] == len(texts) - 300 and summary["rows"] == len(texts)
    pd.testing.assert_frame_equal(pd.read_parquet(output), pd.read_parquet(whole))
    assert not (tmp_path / ".out.parquet.partial").exists()

    stopping = _StopsAfter(load_predictor(linear_model), calls=2)  # the input changed meanwhile: nothing is kept
    monkeypatch.setattr(predict_module, "opened", lambda model, device=None: stopping)
    with pytest.raises(Interrupted):  # Ctrl-C, said in one line
        predict_file(linear_model, folder / "in.csv", tmp_path / "again.parquet", chunk_rows=100)
    changed = tmp_path / "changed.csv"
    _reviews(1000, seed=9).to_csv(changed, index=False)
    monkeypatch.setattr(predict_module, "opened", lambda model, device=None: going_on)
    going_on.rated = 0
    predict_file(linear_model, changed, tmp_path / "again.parquet", chunk_rows=100)
    assert going_on.rated == 1000


def test_an_input_rewritten_in_place_with_its_old_size_and_time_is_rated_afresh(linear_model, files, tmp_path, monkeypatch):
    """`rsync -t` or an editor may rewrite a file and keep its size and modification time: the
    ratings of the old file must not be taken for the new one's."""
    folder, texts = files
    source = tmp_path / "in.csv"
    shutil.copy(folder / "in.csv", source)
    before = source.stat()
    stopping = _StopsAfter(load_predictor(linear_model), calls=3)
    monkeypatch.setattr(predict_module, "opened", lambda model, device=None: stopping)
    output = tmp_path / "out.csv"
    with pytest.raises(Interrupted):
        predict_file(linear_model, source, output, chunk_rows=100)
    old = source.read_bytes()
    swapped = old.replace(b"good", b"poor").replace(b"great", b"awful")  # same length
    assert len(swapped) == len(old) and swapped != old
    source.write_bytes(swapped)
    os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert source.stat().st_size == before.st_size and source.stat().st_mtime_ns == before.st_mtime_ns

    going_on = _StopsAfter(load_predictor(linear_model), calls=10**6)
    monkeypatch.setattr(predict_module, "opened", lambda model, device=None: going_on)
    predict_file(linear_model, source, output, chunk_rows=100)
    assert going_on.rated == len(texts)
    fresh = tmp_path / "fresh.csv"
    predict_file(linear_model, source, fresh, chunk_rows=100)
    pd.testing.assert_frame_equal(pd.read_csv(output), pd.read_csv(fresh))


def test_sigterm_mid_file_keeps_the_rated_rows_and_says_how_to_go_on(linear_model, tmp_path):
    source = tmp_path / "reviews.csv"
    synthetic_reviews(40_000, seed=3)[["text"]].to_csv(source, index=False)
    output = tmp_path / "stars.parquet"
    partial = tmp_path / ".stars.parquet.partial"
    command = cli_command("predict", "--model", linear_model, "--file", source, "--output", output)
    process = subprocess.Popen(command, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if partial.is_dir() and any(partial.glob("rows-*.parquet")):
            process.send_signal(signal.SIGTERM)
            break
        time.sleep(0.002)
    stderr = process.communicate(timeout=60)[1]
    assert process.returncode == 143, stderr
    kept = sorted(partial.glob("rows-*.parquet"))
    rated = sum(pq.ParquetFile(part).metadata.num_rows for part in kept)
    assert f"{rated:,} of 40,000 rows are rated and kept in {partial}: run the same command again" in stderr.replace("\n", " ")
    assert not output.exists() and not any(partial.glob(".*.tmp"))
    summary = predict_file(linear_model, source, output)
    assert summary["rated"] == 40_000 - rated > 0
    expected = load_predictor(linear_model).predict_proba(pd.read_csv(source)["text"].tolist())
    assert pd.read_parquet(output)["stars"].tolist() == (expected.argmax(axis=1) + 1).tolist()


ODD_JSON = [
    '{"id": 12345678901234567890, "text": "great tacos", "price": 0.30000000000000004, "n": 1, "lat": 40.712775312345}',
    '{"id": 2, "text": "2021-05-06", "price": 1e-320, "n": null, "lat": 1.7976931348623157e308}',
    '{"id": 3, "text": "1.50", "price": 123456789.123456789, "n": 3, "lat": -0.0}',
    '{"id": "x7", "text": "true", "price": 1.7976931348623157e308, "n": 4, "lat": [1, {"a": 2}]}',
]


def _whole_and_merged(model, source, folder, suffix: str, parts_suffix: str, name: str = ""):
    """`source` rated whole into `suffix`, and in two shards into `parts_suffix` merged into
    `suffix`, its columns kept: (the whole run's output, the merged one, the parts)."""
    whole = folder / f"{name}whole{suffix}"
    predict_file(model, source, whole, keep_columns=True)
    parts = [folder / f"{name}part{i}{parts_suffix}" for i in range(2)]
    for i, part in enumerate(parts):
        predict_file(model, source, part, shard=f"{i}/2", keep_columns=True)
    merged = folder / f"{name}merged{suffix}"
    merge_predictions(parts, merged)
    return whole, merged, parts


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet", ".csv"])
def test_json_lines_shards_merge_into_the_file_a_whole_run_writes_every_number_as_it_was(linear_model, tmp_path, suffix):
    """A probe's merge of JSON Lines shards turned a kept 1 into 1.0, moved a number's last
    digits and made a Parquet merge a traceback; a .jsonl output kept 10 significant digits."""
    source = tmp_path / "odd.jsonl"
    source.write_text("\n".join(ODD_JSON) + "\n", encoding="utf-8")
    whole, merged, _ = _whole_and_merged(linear_model, source, tmp_path, suffix, ".jsonl")
    if suffix == ".parquet":
        merged_table, whole_table = pq.read_table(merged), pq.read_table(whole)
        assert merged_table.schema.remove_metadata() == whole_table.schema.remove_metadata()
        assert merged_table.to_pylist() == whole_table.to_pylist()
    else:
        assert merged.read_bytes() == whole.read_bytes()
    plain = [tmp_path / f"plain{i}{suffix}" for i in range(2)]  # without --keep-columns: pandas' writer, both ways
    for i, part in enumerate(plain):
        predict_file(linear_model, source, part, shard=f"{i}/2")
    predict_file(linear_model, source, tmp_path / f"plain-whole{suffix}")
    merge_predictions(plain, tmp_path / f"plain-merged{suffix}")
    if suffix != ".parquet":
        assert (tmp_path / f"plain-merged{suffix}").read_bytes() == (tmp_path / f"plain-whole{suffix}").read_bytes()
    if suffix == ".jsonl":
        rows = [json.loads(line) for line in whole.read_text(encoding="utf-8").splitlines()]
        originals = [json.loads(line) for line in ODD_JSON]
        for name in ("id", "price", "n", "lat"):
            assert [row[name] for row in rows] == [row[name] for row in originals], name


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl", ".csv"])
def test_parquet_shards_with_kept_lists_and_structs_merge_into_the_file_a_whole_run_writes(linear_model, tmp_path, suffix):
    """Kept Parquet lists and structs: `merge` of such shards was a traceback (pandas could not
    read back the type it had recorded), `pd.read_parquet` of the output failed the same way,
    and a merge into a CSV wrote a list as numpy's "[1 2]" where the whole run writes "[1, 2]"."""
    source = tmp_path / "nested.parquet"
    pd.DataFrame({"text": ["great tacos", "cold soup", "fine", "loved it", "never again"],
                  "tags": [[1, 2], [3], [], None, [4, 5, 6]],
                  "meta": [{"a": 1, "b": "x"}, {"a": 2, "b": None}, None, {"a": 4, "b": "y"}, {"a": 5, "b": "z"}]}).to_parquet(source)
    whole, merged, parts = _whole_and_merged(linear_model, source, tmp_path, suffix, ".parquet")
    read_back = pd.concat([pd.read_parquet(part) for part in parts])["tags"]  # pandas reads what it wrote
    assert [None if tags is None else list(tags) for tags in read_back] == [[1, 2], [3], [], None, [4, 5, 6]]
    if suffix == ".parquet":
        merged_table, whole_table = pq.read_table(merged), pq.read_table(whole)
        assert merged_table.schema.equals(whole_table.schema, check_metadata=True)
        assert merged_table.to_pylist() == whole_table.to_pylist()
        assert pd.read_parquet(merged)["meta"].tolist()[0] == {"a": 1, "b": "x"}
    else:
        assert merged.read_bytes() == whole.read_bytes()
    if suffix == ".csv":
        assert pd.read_csv(merged)["tags"].tolist()[:3] == ["[1, 2]", "[3]", "[]"]


def test_parquet_shards_merge_with_the_whole_runs_types_and_pandas_reads_them_alike(linear_model, tmp_path):
    """A review's merge through pandas made a CSV source's strings large_string, a decimal(5, 2)
    decimal(3, 2) and failed when a later shard's decimals were wider."""
    import decimal

    import pyarrow as pa

    cases = {"csv": tmp_path / "in.csv", "decimal": tmp_path / "in.parquet"}
    pd.DataFrame({"text": ["great tacos", "cold soup", "fine", "loved it"], "city": list("abcd"), "n": [1, 2, 3, 4]}).to_csv(cases["csv"], index=False)
    pq.write_table(pa.table({"text": ["great tacos", "cold soup", "fine", "loved it", "never again", "ok"],
                             "price": pa.array([decimal.Decimal(v) for v in ("1.10", "2.20", "3.30", "123.45", "999.99", "100.00")],
                                               pa.decimal128(5, 2))}), cases["decimal"])
    for name, source in cases.items():
        whole, merged, _ = _whole_and_merged(linear_model, source, tmp_path, ".parquet", ".parquet", name=f"{name}-")
        assert pq.read_table(merged).schema.equals(pq.read_table(whole).schema, check_metadata=True), name
        pd.testing.assert_frame_equal(pd.read_parquet(merged), pd.read_parquet(whole))


@pytest.mark.parametrize("part_suffix", [".csv", ".jsonl", ".parquet"])
def test_shards_that_got_no_rows_leave_no_blank_line_in_a_json_lines_merge(linear_model, tmp_path, part_suffix):
    """Five shards of three reviews merged into .jsonl: each empty CSV shard wrote a blank line amid the rows."""
    source = tmp_path / "three.csv"
    source.write_text("text\ngood food\nawful\nok I guess\n")
    parts = [tmp_path / f"part{i}{part_suffix}" for i in range(5)]
    for i, part in enumerate(parts):
        predict_file(linear_model, source, part, shard=f"{i}/5")
    merge_predictions(parts, tmp_path / "merged.jsonl")
    lines = (tmp_path / "merged.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["text"] for line in lines] == ["good food", "awful", "ok I guess"]


def test_json_lines_are_valid_json_whatever_a_kept_column_holds():
    """NaN inside a kept list was written as NaN (no JSON reader takes it), bytes as "b'ab'", an
    Arrow float32 4.7 as 4.699999809265137, and a numpy array inside a cell raised."""
    import numpy as np

    from reviewstars.data.frames import json_lines

    frame = pd.DataFrame({"nested": [[1.5, float("nan")], {"a": float("inf")}], "raw": [b"ab", None],
                          "array": [np.array([1, 2]), np.array([0.5])],
                          "small": pd.array([4.7, None], dtype=pd.ArrowDtype(pa.float32()))})
    strict = dict(parse_constant=lambda constant: pytest.fail(f"{constant} is not JSON"))
    rows = [json.loads(line, **strict) for line in json_lines(frame).splitlines()]
    assert rows == [{"nested": [1.5, None], "raw": "ab", "array": [1, 2], "small": 4.7},
                    {"nested": {"a": None}, "raw": None, "array": [0.5], "small": None}]


def test_chunks_are_bounded_by_characters_too():
    """8,192 reviews of 90,000 characters a chunk held 10.6 GB in the linear model's features."""
    from reviewstars.data.files import in_chunks

    texts = ["x" * 40, "y" * 10, "z" * 100, "w" * 5, "v" * 5, "u" * 5]
    chunks = list(in_chunks(texts, rows_per_chunk=2, chars_per_chunk=50))
    assert chunks == [texts[:2], [texts[2]], texts[3:5], [texts[5]]] and sum(chunks, []) == texts


def test_long_reviews_are_rated_in_chunks_of_bounded_characters_as_a_whole_file_is(linear_model, tmp_path, monkeypatch):
    import reviewstars.data.files as files

    source = tmp_path / "long.csv"
    frame = synthetic_reviews(120, seed=9)[["text"]]
    frame["text"] = [text * (1 + i % 7) for i, text in enumerate(frame["text"])]
    frame.to_csv(source, index=False)
    whole = predict_file(linear_model, source, tmp_path / "whole.parquet")
    sizes = []
    real = predict_module.opened

    class Counting:
        def __init__(self, predictor):
            self.predictor = predictor

        def predict_proba(self, texts, batch_size=None):
            sizes.append(sum(map(len, texts)))
            return self.predictor.predict_proba(texts, batch_size=batch_size)

    monkeypatch.setattr(files, "CHUNK_CHARS", 2_000)
    monkeypatch.setattr(predict_module, "opened", lambda model, device: Counting(real(model, device)))
    chunked = predict_file(linear_model, source, tmp_path / "chunked.parquet")
    assert chunked["rows"] == whole["rows"] == 120 and len(sizes) > 10
    assert max(sizes) <= 2_000 + max(map(len, frame["text"]))
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "chunked.parquet"), pd.read_parquet(tmp_path / "whole.parquet"))


def test_a_file_that_loses_rows_while_it_is_read_is_an_error_not_a_summary_of_rows_never_written(linear_model, tmp_path, monkeypatch):
    """A probe cut a file in half mid-run: "rated 300,000 reviews", exit 0, 150,000 in the output."""
    import reviewstars.data.pieces as pieces

    source = tmp_path / "in.csv"
    synthetic_reviews(300, seed=5)[["text"]].to_csv(source, index=False)

    def counted_then_cut(path, column=None):
        index = pieces.index_rows(path, column)
        source.write_text("\n".join(source.read_text().splitlines()[:201]) + "\n")  # the header and 200 rows
        return index

    monkeypatch.setattr(predict_module, "index_rows", counted_then_cut)
    with pytest.raises(DataError, match=r"has 100 rows fewer than counted when the run began \(row 201 of 300 is missing\)"):
        predict_file(linear_model, source, tmp_path / "out.csv", chunk_rows=64)
    assert not (tmp_path / "out.csv").exists()


# --------------------------------------------------------------------------- Ray Data

def test_ray_never_writes_over_a_users_own_file(linear_model, tmp_path):
    """The local engine refused it; `--engine ray --output notes.csv` replaced the user's notes."""
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'reviewstars[ray]')")
    from reviewstars.integrations.ray import predict_with_ray

    source, notes = tmp_path / "in.csv", tmp_path / "notes.csv"
    synthetic_reviews(20, seed=1)[["text"]].to_csv(source, index=False)
    notes.write_text("my precious notes\n")
    with pytest.raises(ReviewstarsError, match="a file that is not predictions is already there"):
        predict_with_ray(linear_model, source, notes)
    assert notes.read_text() == "my precious notes\n"
    link = tmp_path / "stars"
    link.symlink_to(tmp_path / "nowhere" / "deep")  # a probe's traceback, after Ray had started
    with pytest.raises(ReviewstarsError, match=r"--output .*stars: a link that leads nowhere: give a folder$"):
        predict_with_ray(linear_model, source, link)


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'reviewstars[ray]')")
    from reviewstars.integrations.ray import start_ray

    try:
        start_ray(None)
    except ReviewstarsError as error:
        pytest.skip(f"a local Ray cannot start here: {error}")
    yield ray
    ray.shutdown()


def test_ray_rates_every_row_as_predict_file_does(local_ray, linear_model, files, tmp_path):
    from reviewstars.integrations.ray import predict_with_ray

    folder, texts = files
    single = tmp_path / "single.parquet"
    predict_file(linear_model, folder / "in.jsonl", single)
    summary = predict_with_ray(linear_model, folder / "in.jsonl", tmp_path / "parts", rows_per_piece=150)
    assert summary["rows"] == summary["rated"] == len(texts) and summary["workers"] >= 1
    parts = sorted((tmp_path / "parts" / "part-00000-in").glob("rows-*.parquet"))
    assert len(parts) >= 2
    rated = pd.concat([pd.read_parquet(part) for part in parts], ignore_index=True)
    assert rated["row"].tolist() == list(range(len(texts)))  # the parts' names put them in input order
    pd.testing.assert_frame_equal(rated.drop(columns="row"), pd.read_parquet(single))
    manifest = json.loads((tmp_path / "parts" / "predictions.json").read_text())
    assert manifest["rows"] == len(texts) and manifest["files"][0]["name"] == "in.jsonl"
    assert manifest["files"][0]["path"] == str(folder / "in.jsonl")  # files of one name in two folders told apart
    with pytest.raises(DataError, match=r"nothere: no such file or folder$"):  # was "unknown format ''"
        predict_with_ray(linear_model, folder / "nothere", tmp_path / "parts")

    as_file = tmp_path / "one.csv"  # one output file, as predict --file writes it
    predict_with_ray(linear_model, folder / "in.csv", as_file)
    pd.testing.assert_frame_equal(predict_module.with_output_types(read_frame(as_file)), read_frame(single), check_dtype=False)

    pattern = str(folder / "in.*")  # a glob: every file, each into its own parts, by one pool of workers
    summary = predict_with_ray(linear_model, pattern, tmp_path / "all", workers=2)
    assert summary["rows"] == summary["rated"] == 3 * len(texts) and summary["files"] == 3
    assert 1 <= summary["worker_processes"] <= 2  # a pool per file started 2 more processes for each
    for part in ("part-00000-in", "part-00001-in", "part-00002-in"):
        rated = pd.concat([pd.read_parquet(p) for p in sorted((tmp_path / "all" / part).glob("rows-*.parquet"))])
        assert rated["row"].tolist() == list(range(len(texts)))
        pd.testing.assert_frame_equal(rated.drop(columns="row").reset_index(drop=True), pd.read_parquet(single))


def test_a_ctrl_c_on_ray_says_what_is_kept_and_the_rerun_goes_on(local_ray, linear_model, tmp_path, monkeypatch):
    """Ray's Ctrl-C said only "nothing half-written was left", though the rated rows were kept."""
    import contextlib

    import reviewstars.integrations.ray as on_ray

    source = tmp_path / "in.csv"
    synthetic_reviews(400, seed=2)[["text"]].to_csv(source, index=False)

    @contextlib.contextmanager
    def stopped_after_the_first_part(*_args, **_kwargs):
        def advance(count):
            if count:
                raise KeyboardInterrupt
        yield advance

    monkeypatch.setattr(on_ray, "progress_bar", stopped_after_the_first_part)
    # (Ray was started before, not by this call: the workers may still be writing parts, and it is not ours to stop)
    with pytest.raises(Interrupted, match=r"stopped \(Ctrl-C\): at least [\d,]+ of 400 rows are rated and kept in .*: run the same command"):
        on_ray.predict_with_ray(linear_model, source, tmp_path / "out.parquet", rows_per_piece=50, workers=1)
    monkeypatch.undo()
    summary = on_ray.predict_with_ray(linear_model, source, tmp_path / "out.parquet", rows_per_piece=50, workers=1)
    assert summary["rows"] == 400 and 0 < summary["rated"] < 400 and len(pd.read_parquet(tmp_path / "out.parquet")) == 400


def test_ray_reports_a_bad_row_in_one_line_and_keeps_nothing(local_ray, linear_model, tmp_path):
    from reviewstars.integrations.ray import predict_with_ray

    source = tmp_path / "in.jsonl"
    lines = [json.dumps({"text": f"review {i}"}) for i in range(600)]
    lines[470] = json.dumps({"text": 5})
    source.write_text("\n".join(lines) + "\n")
    with pytest.raises(ReviewstarsError, match=r"^.*in.jsonl: row 471: text must be a string, got int$"):
        predict_with_ray(linear_model, source, tmp_path / "out", rows_per_piece=100)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]
    with pytest.raises(ReviewstarsError, match="holds an input"):
        predict_with_ray(linear_model, source, tmp_path)


def test_star_rater_goes_into_a_users_own_ray_pipeline(local_ray, linear_model):
    from reviewstars.integrations.ray import StarRater, pool, worker_resources

    reviews = synthetic_reviews(300, seed=5)
    ds = local_ray.data.from_pandas(reviews[["text"]]).map_batches(
        StarRater, fn_constructor_kwargs={"model": str(linear_model)}, batch_format="pandas", **pool(worker_resources(workers=1)))
    rated = ds.to_pandas()
    expected = load_predictor(linear_model).predict_proba(reviews["text"].tolist())
    assert sorted(zip(rated["text"], rated["stars"])) == sorted(zip(reviews["text"], expected.argmax(axis=1) + 1))
    assert {"p_1", "p_5", "expected_stars", "empty"} <= set(rated.columns)


def test_star_rater_keeps_a_labelled_sets_stars_apart_and_refuses_what_is_not_a_text(linear_model):
    """A probe's labelled set got two `stars` columns (Ray then failed on it), and a number or
    bytes in the reviews' column were rated as empty reviews."""
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'reviewstars[ray]')")
    from reviewstars.integrations.ray import StarRater

    rater = StarRater(str(linear_model))
    rated = rater(pd.DataFrame({"text": ["great food", None, "awful"], "stars": [5, 3, 1]}))
    assert list(rated.columns[:2]) == ["text", "input_stars"] and rated["input_stars"].tolist() == [5, 3, 1]
    assert rated["stars"].between(1, 5).all() and rated["empty"].tolist() == [False, True, False]
    for value in (12345, b"bytes review"):
        with pytest.raises(DataError, match=rf"column 'text': row 1 of a batch is {type(value).__name__} .*not a text"):
            rater(pd.DataFrame({"text": ["fine", value]}))


def test_ray_parts_of_files_no_longer_rated_go(local_ray, linear_model, tmp_path):
    """A probe's rerun over a folder with another file kept the old file's part: 7 rows of 4."""
    from reviewstars.integrations.ray import predict_with_ray

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a", "b"):
        synthetic_reviews(3, seed=len(name))[["text"]].to_csv(folder / f"{name}.csv", index=False)
    predict_with_ray(linear_model, folder, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["part-00000-a", "part-00001-b", "predictions.json"]
    (folder / "b.csv").unlink()
    predict_with_ray(linear_model, folder, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["part-00000-a", "predictions.json"]


def test_ray_refuses_an_empty_file_among_several_before_rating_any(local_ray, linear_model, tmp_path):
    """The files were indexed one at a time, each after the one before was rated: an empty
    last file was found after all the others' work."""
    from reviewstars.integrations.ray import predict_with_ray

    folder = tmp_path / "in"
    folder.mkdir()
    synthetic_reviews(30, seed=1)[["text"]].to_csv(folder / "a.csv", index=False)
    (folder / "b.csv").write_text("text\n")
    with pytest.raises(DataError, match=r"b\.csv: file has no rows"):
        predict_with_ray(linear_model, folder, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_ctrl_c_on_ray_over_several_files_keeps_each_files_rows(local_ray, linear_model, tmp_path, monkeypatch):
    import contextlib

    import reviewstars.integrations.ray as on_ray

    folder = tmp_path / "in"
    folder.mkdir()
    for name, seed in (("a", 1), ("b", 2)):
        synthetic_reviews(200, seed=seed)[["text"]].to_csv(folder / f"{name}.csv", index=False)
    seen = []

    @contextlib.contextmanager
    def stopped_after_some_of_both(*_args, **_kwargs):
        def advance(count):
            seen.append(count)
            if sum(seen) >= 250:  # past the first file's rows: some of the second's are rated too
                raise KeyboardInterrupt
        yield advance

    monkeypatch.setattr(on_ray, "progress_bar", stopped_after_some_of_both)
    local_ray.shutdown()  # this call starts its own Ray, as the CLI does: stopped, it stops the workers, then counts
    with pytest.raises(Interrupted, match=r"stopped \(Ctrl-C\): ([\d,]+) of 400 rows are rated and kept in 2 \.partial") as stopped:
        on_ray.predict_with_ray(linear_model, folder, tmp_path / "out", rows_per_piece=50, workers=1)
    kept = int(re.search(r"([\d,]+) of 400", str(stopped.value))[1].replace(",", ""))
    assert not local_ray.is_initialized()
    time.sleep(1)  # a worker still writing would add a part now (a probe was told 500 rows, and found 5,250)
    on_disk = sum(len(pd.read_parquet(part)) for part in (tmp_path / "out").glob(".part-*.partial/rows-*.parquet"))
    assert on_disk == kept
    monkeypatch.undo()
    summary = on_ray.predict_with_ray(linear_model, folder, tmp_path / "out", rows_per_piece=50, workers=1)
    assert kept >= 250 and summary["rows"] == 400 and summary["rated"] == 400 - kept  # only the rows the stop left
    for number, name in enumerate("ab"):
        parts = sorted((tmp_path / "out" / f"part-0000{number}-{name}").glob("rows-*.parquet"))
        assert pd.concat([pd.read_parquet(p) for p in parts])["row"].tolist() == list(range(200))


def test_a_ray_address_where_nothing_answers_is_one_line_at_once():
    """A probe's --ray-address 127.0.0.1:1 hung for minutes, printing Ray's warnings."""
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'reviewstars[ray]')")
    import socket

    from reviewstars.integrations.ray import _check_reachable  # (what start_ray asks first: a Ray may run in this process)

    with socket.socket() as closed:  # a port of this machine that nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    started = time.perf_counter()
    with pytest.raises(ReviewstarsError, match=rf"could not start the Ray cluster at 127.0.0.1:{port} \(nothing answers there"):
        _check_reachable(f"127.0.0.1:{port}")
    assert time.perf_counter() - started < 10
    with pytest.raises(ReviewstarsError, match="expected HOST:PORT"):
        _check_reachable("headnode")


def test_the_worker_pool_fits_the_cluster():
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'reviewstars[ray]')")
    from reviewstars.integrations.ray import worker_resources

    assert worker_resources(resources={"CPU": 2.0}) == {"workers": 2, "num_cpus": 0.5}  # CPUs left for the read tasks
    assert worker_resources(resources={"CPU": 64.0, "GPU": 8.0}) == {"workers": 8, "num_gpus": 1, "num_cpus": 1}
    assert worker_resources(workers=3, resources={"CPU": 2.0})["workers"] == 3


def test_more_workers_than_the_machine_holds_is_one_line_not_a_wait_forever(monkeypatch):
    """A probe's --workers 4 on 2 CPUs sat at 0 rows for 11 minutes: 4 half-CPU workers left
    no CPU for the read tasks, and Ray waited for one."""
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'reviewstars[ray]')")
    import reviewstars.integrations.ray as on_ray
    from reviewstars.integrations.ray import check_pool_fits, worker_resources

    two_cpus = {"CPU": 2.0}
    for workers in (None, 1, 3):  # 3 x 0.5 + 0.5 for reading = 2: fits
        check_pool_fits(worker_resources(workers, two_cpus), two_cpus, fixed=True)
    with pytest.raises(ReviewstarsError, match=r"^--workers 4: needs 2\.5 CPUs \(each worker takes 0\.5, reading half of one\) "
                                              r"of the 2 there: give --workers 3 or fewer$"):
        check_pool_fits(worker_resources(4, two_cpus), two_cpus, fixed=True)
    gpus = {"CPU": 16.0, "GPU": 2.0}
    check_pool_fits(worker_resources(None, gpus), gpus, fixed=True)
    with pytest.raises(ReviewstarsError, match=r"^--workers 3: needs 3 GPUs of the 2 there: give --workers 2 or fewer$"):
        check_pool_fits(worker_resources(3, gpus), gpus, fixed=True)
    said = []
    monkeypatch.setattr(on_ray, "warn", said.append)
    check_pool_fits(worker_resources(64, two_cpus), two_cpus, fixed=False)  # a cluster may grow: told, not refused
    assert said == ["--workers 64: needs 32.5 CPUs (each worker takes 0.5, reading half of one) of the 2 there: "
                    "the run waits until the cluster has them"]


def test_merge_given_a_ray_part_says_its_folder_is_the_output(tmp_path):
    """A probe's `merge out/part-00000-a/*.parquet` was told only that no shard record was beside it."""
    from reviewstars.jobs.shards import read_shard

    part = tmp_path / "out" / "part-00000-a" / "rows-000000000000-000000000003.parquet"
    part.parent.mkdir(parents=True)
    pd.DataFrame({"row": [0, 1, 2], "stars": [1, 2, 3]}).to_parquet(part)
    with pytest.raises(DataError, match=r"a part of `predict --engine ray`, which needs no merge: its folder is the output"):
        read_shard(part)
