"""A weighted ensemble of saved models, answering the same interface as any one of them.

The folder holds no weights of its own, only `config.json` naming the member folders
and their weights (JSON, no pickle), so an ensemble costs nothing to save and always
uses its members as they are on disk. Member paths are stored relative to the ensemble
folder (`../linear` in a `compare` output), so a folder of models moved whole keeps working.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..artifacts import write_text
from .probabilities import combine
from ..errors import ModelError
from .base import StarPredictor
from .folder import CONFIG_FILE, config_text, model_digests, model_folder, read_section

KIND = "ensemble"
#: Ensemble folders being opened right now: a member naming one of them would recurse forever.
_OPENING: set[Path] = set()
#: How far the weights may sum from 1 (they are written as JSON floats).
WEIGHT_SUM_TOLERANCE = 1e-6
MAX_MEMBERS = 32   # an ensemble of more models than this is a mistake (or an attack on memory)
MAX_DEPTH = 4      # ensembles of ensembles, at most this deep


class EnsemblePredictor(StarPredictor):
    kind = KIND

    def __init__(self, members: Sequence[StarPredictor], weights: Sequence[float], member_folders: Sequence[str | Path]):
        self.members = list(members)
        self.member_folders = [Path(folder).resolve() for folder in member_folders]
        if len(self.member_folders) != len(self.members):
            raise ModelError(f"an ensemble needs one folder per member: {len(self.members)} members, {len(self.member_folders)} folders")
        self.weights = _checked_weights(weights, len(self.members))

    @classmethod
    def from_folders(cls, member_folders: Sequence[str | Path], weights: Sequence[float], device: str | None = None) -> "EnsemblePredictor":
        """Open each member folder as whatever kind it is, after checking the weights (cheap) first."""
        from . import load_predictor  # here: at the top it would cycle once `models` dispatches "ensemble" to us

        _checked_weights(weights, len(member_folders))
        for index, folder in enumerate(member_folders, start=1):
            if not Path(folder).is_dir():
                raise ModelError(f"ensemble member {index}: no model folder at {folder}")
        return cls([load_predictor(folder, device=device) for folder in member_folders], weights, member_folders)

    def warm_up(self, max_batch: int, cuda_graphs: bool = True) -> int:
        return sum(member.warm_up(max_batch, cuda_graphs) for member in self.members)

    def weights_proba(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        texts = list(texts)
        return combine([member.predict_proba(texts, batch_size=batch_size) for member in self.members], self.weights)

    @property
    def num_parameters(self) -> int:
        return sum(member.num_parameters for member in self.members)

    def layer_parameters(self) -> list[tuple[str, str, int]]:
        """Each member's layers, named after its folder: an ensemble has no weights of its own."""
        return [(f"{Path(folder).name}: {name}", layer, count) for folder, member in zip(self.member_folders, self.members)
                for name, layer, count in member.layer_parameters()]

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "members": [{"folder": str(folder), "kind": member.kind} for folder, member in zip(self.member_folders, self.members)],
            "weights": self.weights.tolist(),
        }

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        for index, folder in enumerate(self.member_folders, start=1):
            if not folder.is_dir():
                raise ModelError(f"ensemble member {index}: its folder {folder} is gone; save the member first")
        stored = [_relative_to(folder, path.resolve()) for folder in self.member_folders]
        with model_folder(path) as stage:
            digests = [model_digests(folder) for folder in self.member_folders]  # what the weights were fitted to
            write_text(stage / CONFIG_FILE, config_text(KIND, recipe=KIND, members=stored, weights=self.weights.tolist(),
                                                        member_digests=digests))
            write_text(stage / "README.md", _readme(stored, self.weights, self.members))
        return path

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> "EnsemblePredictor":
        path = Path(path)
        config_file = path / CONFIG_FILE
        settings = read_section(path)
        if settings.get("kind") != KIND:
            raise ModelError(f"{config_file}: kind is {settings.get('kind')!r}, not {KIND!r}")
        members = settings.get("members")
        if not isinstance(members, list) or not members or not all(isinstance(m, str) for m in members):
            raise ModelError(f"{config_file}: \"members\" must be a non-empty list of folder paths")
        if len(members) > MAX_MEMBERS:
            raise ModelError(f"{config_file}: {len(members):,} members; an ensemble holds at most {MAX_MEMBERS}")
        folders = [path / member for member in members]
        try:
            resolved = [folder.resolve() for folder in folders]
        except (OSError, RuntimeError):
            raise ModelError(f"{config_file}: a member's path is a loop of links") from None
        if len(set(resolved)) != len(resolved):
            raise ModelError(f"{config_file}: a member is named twice: give each model once (weights say how much it counts)")
        if any(folder in _OPENING or folder == path.resolve() for folder in resolved):
            raise ModelError(f"{config_file}: an ensemble cannot hold itself (directly or through another ensemble)")
        if len(_OPENING) >= MAX_DEPTH:
            raise ModelError(f"{config_file}: ensembles nested more than {MAX_DEPTH} deep")
        digests = settings.get("member_digests")  # absent in ensembles saved before they were kept
        if isinstance(digests, list) and len(digests) == len(folders):
            for member, folder, digest in zip(members, folders, digests):
                if (folder / CONFIG_FILE).is_file() and model_digests(folder) != digest:
                    raise ModelError(f"{config_file}: its member {member} has changed since the ensemble was weighed "
                                     "(other weights or config): weigh it again with `reviewstars ensemble`")
        _OPENING.add(path.resolve())
        try:
            return cls.from_folders(folders, settings.get("weights"), device=device)
        except ModelError as error:
            raise ModelError(f"{config_file}: {error}") from None
        finally:
            _OPENING.discard(path.resolve())


def _checked_weights(weights: Any, members: int) -> np.ndarray:
    """Weights as an array, or a ModelError saying what is wrong with them."""
    if members == 0:
        raise ModelError("an ensemble needs at least one member")
    if not isinstance(weights, (list, tuple, np.ndarray)) or not all(
        isinstance(w, (int, float, np.number)) and not isinstance(w, bool) for w in weights
    ):
        raise ModelError(f"ensemble weights must be a list of numbers, not {weights!r}")
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (members,):
        raise ModelError(f"ensemble has {members} members but {len(weights)} weights")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ModelError(f"ensemble weights must be finite and non-negative, not {weights.tolist()}")
    if not math.isclose(weights.sum(), 1.0, abs_tol=WEIGHT_SUM_TOLERANCE):
        raise ModelError(f"ensemble weights must sum to 1, not {weights.sum():.6g}")
    return weights


def _relative_to(folder: Path, ensemble: Path) -> str:
    """The member's path from the ensemble folder (absolute only where none exists: another drive)."""
    try:
        return Path(os.path.relpath(folder, ensemble)).as_posix()
    except ValueError:
        return str(folder)


def _readme(stored: list[str], weights: np.ndarray, members: list[StarPredictor]) -> str:
    rows = "\n".join(f"| `{folder}` | {member.kind} | {weight:.4f} |" for folder, member, weight in zip(stored, members, weights))
    return (
        "# reviewstars ensemble\n\n"
        "Predicts the weighted average of its members' star probabilities. The members are\n"
        "separate model folders (paths relative to this folder); this folder\n"
        "holds only their list and weights in `config.json`.\n\n"
        "| member | kind | weight |\n|---|---|---|\n"
        f"{rows}\n\n"
        "Open it with `reviewstars.models.ensemble.EnsemblePredictor.load(folder)`.\n"
    )
