"""Settings declared once: a dataclass field carries its help, limits and CLI flag
(`fields`), and a run's settings can be read from and written to a file (`files`). Each
job's settings class lives with its job (`data.DataSettings`, `training.TrainSettings`,
a kind's own, `serving.limits.ServeLimits`); the CLI's options are made from them."""
