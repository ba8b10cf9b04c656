"""The canonical metric names and what each one means: the one place they are defined.

The same names are used unchanged by the trainer (razzle.train.metrics, the iteration
reports), the loggers (CSV, W&B), the metrics store, the API and the dashboard. This
module imports nothing, so the server reads it without torch or Lightning.
"""

from __future__ import annotations

POLICY_METRICS = (
    "policy_top1_accuracy",
    "policy_top3_accuracy",
    "policy_entropy",
    "policy_ebf",
    "policy_confidence",
    "legal_mass",
)
VALUE_METRICS = (
    "value_mean",
    "value_std",
    "value_extremity",
    "value_calibration_error",
    "value_confident_accuracy",
    "value_skill",
    "search_value_skill",
)
LOSS_METRICS = (
    "loss_total",
    "policy_loss",
    "value_loss",
    "value_loss_quartic",
    "difficulty_loss",
    "illegal_penalty",
)
# Measured on self-play games.
GAME_METRICS = (
    "pass_decision_rate",
    "game_length_mean",
    "game_length_std",
    "p1_win_rate",
    "draw_rate",
    "opening_diversity",
    "selfplay_games_per_s",
    "selfplay_evals_per_s",
)
# Self-play spread over actors (razzle.selfplay.backend): in the report when measured.
DISTRIBUTED_METRICS = ("selfplay_stale_games_dropped", "selfplay_actor_restarts")
CANONICAL_METRICS = POLICY_METRICS + VALUE_METRICS + LOSS_METRICS + GAME_METRICS

# Bookkeeping of every iteration report (razzle.train.report.IterationReport).
ITERATION_METRICS = (
    "lr",
    "games",
    "positions",
    "iteration_seconds",
    "selfplay_seconds",
    "training_seconds",
    "evaluation_seconds",
)
# The Elo ladder over the run's models (razzle.search.ladder), rated at each evaluation.
LADDER_METRICS = ("elo", "elo_low", "elo_high")

METRIC_DESCRIPTIONS = {
    "policy_top1_accuracy": "share of positions where the network's top move is the search's top move",
    "policy_top3_accuracy": "share of positions where the search's top move is among the network's top 3",
    "policy_entropy": "entropy of the network's policy over legal moves (nats)",
    "policy_ebf": "effective branching factor: exp(policy entropy)",
    "policy_confidence": "mean probability of the network's top move",
    "legal_mass": "probability mass the network puts on legal moves",
    "value_mean": "mean value prediction",
    "value_std": "standard deviation of value predictions",
    "value_extremity": "mean |value|: how decided the network thinks positions are",
    "value_calibration_error": "expected calibration error of the value head against outcomes",
    "value_confident_accuracy": "accuracy of the outcome sign where |value| is large",
    "value_skill": "1 - value MSE / MSE of always predicting the mean outcome (> 0: better than a constant)",
    "search_value_skill": (
        "value_skill of the search's root value on the same positions: what the search knew, the value head's bar"
    ),
    "loss_total": "total training loss",
    "policy_loss": "policy cross-entropy against the search policy",
    "value_loss": "value mean squared error",
    "value_loss_quartic": "quartic value term mean((v - z)^4)",
    "difficulty_loss": "difficulty head binary cross-entropy",
    "illegal_penalty": "probability mass on illegal actions, as a loss term",
    "pass_decision_rate": "share of turns that are pass chains",
    "game_length_mean": "mean game length (turns)",
    "game_length_std": "standard deviation of game length (turns)",
    "p1_win_rate": "share of self-play games won by Player 1",
    "draw_rate": "share of self-play games drawn",
    "opening_diversity": "share of distinct openings among the iteration's games",
    "selfplay_games_per_s": "self-play games finished per second",
    "selfplay_evals_per_s": "network evaluations per second during self-play",
    "selfplay_stale_games_dropped": (
        "games dropped because the network that played them was more than selfplay.max_staleness iterations old"
    ),
    "selfplay_actor_restarts": "self-play actors that died during the iteration and were started again",
    "lr": "learning rate at the end of the iteration",
    "games": "self-play games played in this iteration",
    "positions": "training positions added in this iteration",
    "epoch": "trainer epoch at the end of the iteration",
    "iteration_seconds": "wall time of the whole iteration (the sum of its phases)",
    "selfplay_seconds": "wall time of the iteration's self-play",
    "training_seconds": "wall time of the iteration's training epochs",
    "evaluation_seconds": "wall time of the iteration's measurement, export and evaluation matches",
    "elo": "Elo of the iteration's model on the run's ladder (random play = 0; razzle.search.ladder)",
    "elo_low": "lower end of the 95% interval of elo",
    "elo_high": "upper end of the 95% interval of elo",
}

KNOWN_METRICS = frozenset(METRIC_DESCRIPTIONS)
