"""The AlphaZero iteration inside Lightning's epoch loop.

One `Trainer.fit` runs the whole loop: iteration k is `epochs_per_iteration` epochs of
training on the replay window, and this callback plays the games of iteration k with the
weights of the end of iteration k-1, before those epochs start:

- iteration 0's games in `on_fit_start` (before the first dataloader is built);
- iteration k+1's games at the end of iteration k's last epoch, so that Lightning's
  dataloader reload at the next epoch (`reload_dataloaders_every_n_epochs`) sees them.

Fresh games are measured by the network before it trains on them (held out by
construction) under the canonical metric names, with the self-play statistics. Each
iteration exports `models/iter_NNNN.pt`, plays the baselines every `eval_every`
iterations, and is published once its training metrics exist (at the next epoch start,
or at the end of training). The callback's state travels in Lightning checkpoints, so a
resumed run continues at the same iteration with the same replay store.
"""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path

import lightning as L
import torch

from razzle.game.rules import Rules
from razzle.model.evaluator import NetworkEvaluator
from razzle.model.io import save_model_file
from razzle.search import MCTSPlayer, RandomPlayer, SearchConfig, UniformEvaluator, play_match
from razzle.selfplay.games import SelfPlayConfig, play_games
from razzle.selfplay.replay import ReplayStore
from razzle.train.metrics import GAME_METRICS, learning_metrics
from razzle.model.samples import Samples

log = logging.getLogger(__name__)
MEASURE_BATCH = 512


class SelfPlayLoop(L.Callback):
    def __init__(
        self,
        replay_dir: str,
        models_dir: str,
        rules: Rules,
        search: SearchConfig,
        games: SelfPlayConfig,
        epochs_per_iteration: int = 2,
        eval_every: int = 2,
        eval_games: int = 20,
        seed: int = 0,
        progress: bool = True,
    ):
        if epochs_per_iteration < 1:
            raise ValueError(f"selfplay.epochs_per_iteration must be >= 1, got {epochs_per_iteration}")
        if eval_every < 0 or eval_games < 0:
            raise ValueError("selfplay.eval_every and selfplay.eval_games must be >= 0 (0 turns evaluation off)")
        self.replay_dir, self.models_dir = Path(replay_dir), Path(models_dir)
        self.rules, self.search, self.games = rules, search, games
        self.epochs_per_iteration = epochs_per_iteration
        self.eval_every, self.eval_games = eval_every, eval_games
        self.seed = seed
        self.progress = progress
        self.iteration = 0  # the iteration whose games are in the store and being trained on
        self.pending: dict[str, float] = {}  # its record so far: self-play and held-out metrics
        self.pending_reliability: dict = {}  # reliability diagram of its fresh games
        self.finished: dict | None = None  # a trained iteration waiting for its training metrics
        self.history: list[dict[str, float]] = []  # every published record, for the summary

    # --- checkpointed state ---------------------------------------------------------------
    def state_dict(self) -> dict:
        names = ("iteration", "pending", "pending_reliability", "finished", "history")
        return {name: getattr(self, name) for name in names}

    def load_state_dict(self, state: dict) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    # --- hooks ----------------------------------------------------------------------------
    def on_fit_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.store = ReplayStore(self.replay_dir)
        for stale in [i for i in self.store.iterations() if i > self.iteration]:
            self.store.remove(stale)  # played after the checkpoint we resume from
        if self.iteration not in self.store.iterations():
            self._play(trainer, module, self.iteration)

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._publish_finished(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if epoch % self.epochs_per_iteration:
            return
        done = self.iteration
        record = {"iteration": float(done), **self.pending}
        model_path = self.models_dir / f"iter_{done:04d}.pt"
        if trainer.is_global_zero:
            save_model_file(module.net, model_path, {"iteration": done, "epoch": epoch, "rules": vars(self.rules)})
        last = epoch >= (trainer.max_epochs or epoch)
        if self.eval_games and self.eval_every and (done % self.eval_every == 0 or last):
            record.update(self._evaluate(module))
        self.finished = {
            "iteration": done,
            "record": record,
            "model": str(model_path),
            "reliability": self.pending_reliability,
        }
        self.iteration = done + 1
        if not last:
            self._play(trainer, module, self.iteration)

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._publish_finished(trainer)

    # --- the work -------------------------------------------------------------------------
    def _evaluator(self, module: L.LightningModule) -> NetworkEvaluator:
        """A frozen copy of the current network (training keeps the original in train mode)."""
        return NetworkEvaluator(copy.deepcopy(module.net), module.device)

    def _play(self, trainer: L.Trainer, module: L.LightningModule, iteration: int) -> None:
        started = time.perf_counter()
        output = play_games(
            self._evaluator(module),
            self.search,
            self.games,
            self.rules,
            seed=self.seed * 100_003 + iteration,
            progress=self.progress and trainer.is_global_zero,
            headers={"Iteration": str(iteration)},
        )
        if trainer.is_global_zero:
            self.store.write(iteration, output)
        measured, reliability = self._measure(module, output.samples)
        self.pending = {
            **measured,
            **{name: output.stats[name] for name in GAME_METRICS},
            "games": float(self.games.games),
            "positions": float(len(output.samples)),
            "selfplay_seconds": time.perf_counter() - started,
        }
        self.pending_reliability = reliability

    @torch.no_grad()
    def _measure(self, module: L.LightningModule, samples: Samples) -> tuple[dict[str, float], dict]:
        """The learning metrics of the network on games it has not trained on yet."""
        metrics = learning_metrics().to(module.device)
        was_training = module.training
        module.eval()
        for start in range(0, len(samples), MEASURE_BATCH):
            module.measure(samples[start : start + MEASURE_BATCH].to(module.device), metrics)
        module.train(was_training)
        values = {name: float(value) for name, value in metrics.compute().items()}
        return values, metrics["value_calibration_error"].reliability()

    def _evaluate(self, module: L.LightningModule) -> dict[str, float]:
        """The current network with search against a random player and against MCTS with a
        uniform prior at the same simulations; colours alternate."""
        player = MCTSPlayer(self._evaluator(module), self.search, seed=self.seed)
        results = {}
        for name, opponent in (
            ("random", RandomPlayer(seed=self.seed + 1)),
            ("mcts", MCTSPlayer(UniformEvaluator(), self.search, seed=self.seed + 2)),
        ):
            match = play_match(player, opponent, self.eval_games, self.rules)
            results[f"eval_{name}_win_rate"] = match.wins / match.games
            results[f"eval_{name}_score"] = match.score
        return results

    def _publish_finished(self, trainer: L.Trainer) -> None:
        """Log and publish the trained iteration, now that its training metrics are known."""
        if self.finished is None:
            return
        record = dict(self.finished["record"])
        if trainer.optimizers:
            record["lr"] = float(trainer.optimizers[0].param_groups[0]["lr"])
        for logger in trainer.loggers:
            logger.log_metrics(record, step=trainer.global_step)
        published = {name: value for name, value in record.items() if name != "iteration"}
        for name, value in trainer.callback_metrics.items():
            if name.startswith("train/"):  # the server's names have no '/': x_train_<name>
                published[f"x_train_{name[len('train/'):]}"] = float(value)
        for callback in trainer.callbacks:
            if hasattr(callback, "publish_iteration"):
                callback.publish_iteration(
                    None, self.finished["iteration"], published, self.finished["model"], reliability=self.finished["reliability"]
                )
        self.history.append(record)
        self.finished = None

