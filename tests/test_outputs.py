"""Outputs are never lost or mixed: a model folder is replaced whole or not at all, one
training writes a folder at a time, a wrong `--output` fails first, and what is written
gets the modes the umask asks for."""

from __future__ import annotations

import os

import pytest

from reviewstars.artifacts import write_json
from reviewstars.data.frames import FrameWriter
from reviewstars.models import LinearPredictor
from reviewstars.models.linear import LinearSettings

from conftest import synthetic_reviews


@pytest.mark.parametrize("umask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)], ids=["022", "027"])
def test_written_files_and_folders_follow_the_umask(tmp_path, umask, file_mode, dir_mode):
    previous = os.umask(umask)
    try:
        write_json(tmp_path / "metrics.json", {})
        texts = synthetic_reviews(50)
        LinearPredictor(LinearSettings(min_df=1)).fit(texts["text"].tolist(), texts["label"].tolist()).save(tmp_path / "model")
        with FrameWriter(tmp_path / "stars.csv") as writer:
            writer.write(texts)
    finally:
        os.umask(previous)
    mode = lambda path: path.stat().st_mode & 0o777  # noqa: E731
    assert mode(tmp_path / "metrics.json") == mode(tmp_path / "stars.csv") == mode(tmp_path / "model" / "config.json") == file_mode
    assert mode(tmp_path / "model") == dir_mode
