"""The run context: what every job starts from, made once.

A job that trains, weighs or scores models on a data set needs the same three things:
the data read and checked, the reviews it is cut into (the held-out reviews scored, the
dev slice carved from train, the reviews trained on: the same for every model of a run),
and the device. `train`, `evaluate`, `ensemble` and `compare` each open one; `compare`
hands its own to every model it trains, so the data is read once for the whole ladder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data import DataSettings, TrainingSplits, training_splits
from ..errors import DataError
from ..ledger import spent


def as_data_settings(data: DataSettings | str | Path) -> DataSettings:
    return data if isinstance(data, DataSettings) else DataSettings(data=str(data))


@dataclass
class RunContext:
    data: DataSettings
    device: str | None = None   # as given: None or "auto" picks the accelerator found
    _splits: TrainingSplits | None = field(default=None, repr=False)
    _device: str | None = field(default=None, repr=False)
    _cap: int | None = field(default=None, repr=False)  # the cap the splits held were read under
    said: set = field(default_factory=set, repr=False)  # the data's notes already said in this run (once, not once a model)

    @classmethod
    def open(cls, data: DataSettings | str | Path, device: str | None = None, *, check_device: bool = True) -> "RunContext":
        """A context for `data` on `device`. A device named but not here fails now, before
        the data is read (`check_device=False` leaves "auto" unresolved, so a job that may
        not need torch does not import it to look for an accelerator)."""
        context = cls(as_data_settings(data), device)
        if check_device or device not in (None, "auto"):
            context.resolved_device()
        return context

    def resolved_device(self) -> str:
        """The torch device every model of the run uses, resolved once."""
        if self._device is None:
            from ..devices import resolve_device

            self._device = resolve_device(self.device)
        return self._device

    def splits(self, at_most: int | None = None, why: str = "") -> TrainingSplits:
        """The reviews trained on, the dev slice and the held-out reviews, cut once
        (`data.training_splits`). `at_most` caps the reviews trained on (what a time budget
        can use): a capped run reads only the reviews it keeps, and the held-out reviews and
        dev slice stay the same whatever the cap."""
        wider = self._cap is not None and (at_most is None or at_most > self._cap)
        if self._splits is None or wider:  # a capped read holds too few reviews for a wider cut: read again
            with spent("loading data"):
                self._splits, self._cap = training_splits(self.data, at_most, why), at_most
            return self._splits
        return self._splits.capped(at_most, self.data, why)

    def held_out(self) -> tuple[str, list[str], list[int]]:
        """(split name, texts, labels) of the reviews every model of the run is scored on."""
        splits = self.splits()
        if splits.held_out_name is None:
            raise DataError(self.data.data, "too few reviews to hold any out to score the models on")
        return splits.held_out_name, list(splits.held_out["text"]), list(splits.held_out["label"])

    def dev(self) -> Any:
        """The dev slice (a datasets.Dataset: text, label), refused when the data is too small for one."""
        dev = self.splits().dev
        if len(dev) == 0 and self.data.dev_size == 0:
            raise no_dev_slice_asked()
        if len(dev) == 0:
            raise DataError(self.data.data, "too few training reviews to carve a dev slice from")
        return dev

    def scored_split(self, split: str | None, n: int | None) -> tuple[str, Any]:
        """(name, rows) of a split of the data as given (`evaluate`: test, else validation,
        else train), or a seeded sample of `n` of its rows."""
        from ..data import load_data, pick_split, subset

        with spent("loading data"):
            dataset = load_data(self.data.data, columns=self.data.columns())
        name = pick_split(dataset, split)
        return name, subset(dataset[name], n, self.data.seed)


def no_dev_slice_asked() -> DataError:
    """--dev-size 0 for a kind that needs a dev slice: the cause named, not the data's size."""
    return DataError("--dev-size 0", "this model follows its training, and is calibrated, on a dev slice carved from "
                                     "train: give --dev-size N (the default is 500)")
