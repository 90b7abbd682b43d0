"""How good is a model: its scores on labelled reviews (`evaluation`), how honest its
confidence is (`calibration`), whether a gap between two models is real (`significance`),
and the leaderboard row that shows them (`leaderboard`). A new metric lives here."""
