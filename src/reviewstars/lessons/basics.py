"""Why neural networks: a 2-D problem that no straight line separates.

Points inside a circle (an inner disc) against points outside it (an outer ring). The
lesson first writes a rule by hand, four "hinges" max(0, ±x ± y - 0.75) whose sum is
zero exactly inside a diamond, then lets a network with four ReLU units learn such
hinges by itself; a linear model, one straight line, cannot do it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

THRESHOLD = 0.75


def circles(n: int = 1000, seed: int = 0, inner_radius: float = 0.5, ring: tuple[float, float] = (0.85, 1.15)) -> tuple[np.ndarray, np.ndarray]:
    """Half the points in a disc of `inner_radius` (label 0), half in a ring (label 1)."""
    rng = np.random.default_rng(seed)
    inside, outside = n // 2, n - n // 2
    radius = np.concatenate([inner_radius * np.sqrt(rng.uniform(0, 1, inside)), rng.uniform(*ring, outside)])
    angle = rng.uniform(0, 2 * np.pi, n)
    points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1).astype(np.float32)
    labels = np.concatenate([np.zeros(inside), np.ones(outside)]).astype(np.float32)
    order = rng.permutation(n)
    return points[order], labels[order]


def hand_rule_score(points: np.ndarray) -> np.ndarray:
    """The lesson's rule: the sum of four hinges; zero inside the diamond |x| + |y| <= 0.75."""
    x, y = points[:, 0], points[:, 1]
    hinge = lambda v: np.maximum(0.0, v - THRESHOLD)  # noqa: E731
    return hinge(x + y) + hinge(x - y) + hinge(-x - y) + hinge(-x + y)


def hand_rule(points: np.ndarray) -> np.ndarray:
    """1 (outside) where the score is above zero, else 0 (inside)."""
    return (hand_rule_score(points) > 0).astype(np.float32)


def accuracy(predicted: np.ndarray, labels: np.ndarray) -> float:
    return float((np.asarray(predicted) == np.asarray(labels)).mean())


def small_network(hidden: int = 4) -> nn.Sequential:
    """The lesson's network: Linear(2, 4) -> ReLU -> Linear(4, 1) -> Sigmoid."""
    return nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, 1), nn.Sigmoid())


def linear_model() -> nn.Sequential:
    """One straight line: Linear(2, 1) -> Sigmoid (logistic regression)."""
    return nn.Sequential(nn.Linear(2, 1), nn.Sigmoid())


@dataclass
class Fit:
    name: str
    model: nn.Module
    losses: list[float] = field(default_factory=list)
    accuracies: list[float] = field(default_factory=list)
    restart_accuracies: list[float] = field(default_factory=list)
    accuracy: float = float("nan")    # of the trained weights: the curves' last points come before the last update
    final_loss: float = float("nan")

    def predict(self, points: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return (self.model(torch.as_tensor(points)).squeeze(-1) > 0.5).float().numpy()


def fit(
    name: str,
    model: nn.Module,
    points: np.ndarray,
    labels: np.ndarray,
    optimizer: str = "adam",
    learning_rate: float = 0.05,
    epochs: int = 2000,
    report: Callable[[str, int, float, float], None] | None = None,
    report_every: int = 250,
) -> Fit:
    """Full-batch gradient descent on binary cross-entropy; records loss and accuracy."""
    x, y = torch.as_tensor(points), torch.as_tensor(labels)
    make = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[optimizer]
    step = make(model.parameters(), lr=learning_rate)
    result = Fit(name, model)
    for epoch in range(1, epochs + 1):
        probability = model(x).squeeze(-1)
        loss = nn.functional.binary_cross_entropy(probability, y)
        step.zero_grad()
        loss.backward()
        step.step()
        result.losses.append(float(loss.detach()))
        result.accuracies.append(float(((probability > 0.5).float() == y).float().mean()))
        if report is not None and (epoch % report_every == 0 or epoch in (1, epochs)):
            report(name, epoch, result.losses[-1], result.accuracies[-1])
    with torch.no_grad():  # the model as it is now, which the plot draws and `predict` uses
        probability = model(x).squeeze(-1)
        result.final_loss = float(nn.functional.binary_cross_entropy(probability, y))
        result.accuracy = accuracy((probability > 0.5).float().numpy(), labels)
    return result


@dataclass
class CirclesLesson:
    points: np.ndarray
    labels: np.ndarray
    rule_accuracy: float
    fits: list[Fit]

    def summary(self) -> dict:
        return {
            "points": int(len(self.labels)),
            "hand_rule_accuracy": self.rule_accuracy,
            **{f"{f.name}_accuracy": f.accuracy for f in self.fits},
            **{f"{f.name}_final_loss": f.final_loss for f in self.fits},
            **{f"{f.name}_restart_accuracies": f.restart_accuracies for f in self.fits},
        }


def best_of_restarts(name, make_model, points, labels, optimizer, learning_rate, epochs, seed, restarts, report=None) -> Fit:
    """Train from `restarts` random starts and keep the lowest final loss.

    Four ReLUs can draw the diamond exactly, but an unlucky start leaves a unit dead
    (never active, so never updated) and the network stuck near 80%: restarting from
    other random weights is the classic remedy.
    """
    best = None
    for attempt in range(restarts):
        torch.manual_seed(seed + attempt)
        result = fit(name, make_model(), points, labels, optimizer, learning_rate, epochs, report)
        result.restart_accuracies = getattr(best, "restart_accuracies", []) + [result.accuracy]
        if best is None or result.final_loss < best.final_loss:
            best = result
        else:
            best.restart_accuracies = result.restart_accuracies
    return best


def circles_lesson(n: int = 1000, seed: int = 0, epochs: int = 2000, restarts: int = 3, report=None) -> CirclesLesson:
    """The whole lesson: the hand rule, the network with plain SGD then Adam, and a line."""
    points, labels = circles(n, seed)
    rule_accuracy = accuracy(hand_rule(points), labels)
    fits = [
        best_of_restarts("network_sgd", small_network, points, labels, "sgd", 1.0, epochs, seed, restarts, report),
        best_of_restarts("network_adam", small_network, points, labels, "adam", 0.05, epochs, seed, restarts, report),
        best_of_restarts("linear", linear_model, points, labels, "adam", 0.05, epochs, seed, 1, report),
    ]
    return CirclesLesson(points, labels, rule_accuracy, fits)


# --------------------------------------------------------------------------- parameters


def linear_stack_parameters(sizes: Sequence[int]) -> list[tuple[str, int]]:
    """Trainable parameters of Linear(m, n) layers stacked by `sizes`: each has (m + 1) n."""
    if len(sizes) < 2 or any(s <= 0 for s in sizes):
        raise ValueError("give at least two positive layer sizes, e.g. 100 200 400 400 5")
    return [(f"Linear({m}, {n})", (m + 1) * n) for m, n in zip(sizes, sizes[1:])]
