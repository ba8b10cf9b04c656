"""Play self-play games with a model file into a replay folder: `python selfplay.py [overrides]`.

    python selfplay.py model_file=outputs/train/runs/<run>/models/iter_0023.pt games=200
    python selfplay.py model_file=... out_dir=shared/replay rounds=10 search.simulations=128

Each round is written atomically as the next `iter_NNNN/` folder of `out_dir` (samples,
game records, statistics), the same layout the training loop keeps.
"""

import hydra
from omegaconf import DictConfig

import razzle.train  # noqa: F401  (registers the config resolvers; imports no torch)


@hydra.main(version_base="1.3", config_path="conf", config_name="worker")
def main(cfg: DictConfig) -> None:
    from hydra.utils import instantiate

    from razzle.cli.common import load_evaluator
    from razzle.memory import keep_freed_memory
    from razzle.selfplay.games import SelfPlayConfig, play_games
    from razzle.selfplay.replay import ReplayStore

    keep_freed_memory()
    games = SelfPlayConfig(
        games=cfg.games,
        parallel=cfg.parallel,
        temperature=cfg.temperature,
        temperature_turns=cfg.temperature_turns,
        final_temperature=cfg.final_temperature,
    )
    evaluator = load_evaluator(cfg.model_file, cfg.device, "selfplay.py")
    store = ReplayStore(cfg.out_dir)
    first = max(store.iterations(), default=-1) + 1
    for iteration in range(first, first + cfg.rounds):
        output = play_games(
            evaluator,
            instantiate(cfg.search),
            games,
            instantiate(cfg.rules),
            device=cfg.device,
            seed=cfg.seed * 100_003 + iteration,
            headers={"Model": str(cfg.model_file), "Round": str(iteration)},
        )
        folder = store.write(iteration, output)
        stats = output.stats
        print(
            f"{folder}: {games.games} games, {len(output.samples)} positions in {stats['selfplay_seconds']:.0f} s; "
            f"Player 1 won {stats['p1_win_rate']:.0%}, draws {stats['draw_rate']:.0%}, "
            f"{stats['game_length_mean']:.1f} turns a game"
        )


if __name__ == "__main__":
    main()
