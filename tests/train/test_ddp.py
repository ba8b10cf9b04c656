"""The loop under DDP: two CPU processes (gloo) split the self-play games (each keeping its
shard's session), rank 0 writes them once, and the processes train on disjoint shares of
the same window."""

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

from razzle.model.io import load_model_file
from razzle.model.samples import Samples
from razzle.selfplay.replay import ReplayStore
from razzle.train.metrics import learning_metrics
from razzle.train.module import AlphaZeroModule
from tests.train.test_loop import metric_rows

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_processes_share_the_games_and_the_window(tmp_path):
    run, probe = tmp_path / "run", tmp_path / "probe"
    result = subprocess.run(
        [
            sys.executable,
            "train.py",
            "experiment=smoke",
            "trainer=ddp_cpu",
            f"hydra.run.dir={run}",
            "rules.max_turns=8",
            "search.simulations=2",
            "selfplay.games=4",
            "selfplay.parallel=2",
            "selfplay.iterations=2",
            "selfplay.eval_every=0",
            "data.batch_size=4096",  # one batch per process and epoch: nothing dropped
            "data.mirror=false",  # trained samples as stored, to compare them with the window
            "+callbacks.probe._target_=tests.train.probes.RecordBatches",
            f"+callbacks.probe.dirpath={probe}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-4000:]

    store = ReplayStore(run / "replay")
    assert store.iterations() == [0, 1]  # one folder per iteration, written once
    for iteration in (0, 1):
        records = store.records(iteration)
        assert [record.headers["Game"] for record in records] == ["1", "2", "3", "4"]
        assert len({tuple(record.actions) for record in records}) == 4  # distinct seeds: distinct games
        # carry-over: each process kept its own shard's session, rank 0 stored both
        assert sorted(store.sessions(iteration)) == [0, 1]
    assert sorted(float(row["iteration"]) for row in metric_rows(run) if row.get("iteration")) == [0.0, 1.0]

    # Held out: each process measured half of iteration 1's games; reduced, they are the
    # metrics of all of them under the network that played them.
    network, _ = load_model_file(run / "models" / "iter_0000.pt")
    module, metrics = AlphaZeroModule(network).eval(), learning_metrics()
    with torch.no_grad():
        module.measure(Samples.load(store.folder(1) / "samples.pt"), metrics)
    heldout = json.loads((run / "loop_state.json").read_text())["history"][1]["heldout"]
    for name in ("legal_mass", "policy_top1_accuracy", "policy_entropy", "value_mean", "value_std"):
        assert heldout[name] == pytest.approx(float(metrics[name].compute()), rel=1e-4), name

    windows = []
    for epoch in (0, 1):
        ranks = [json.loads((probe / f"rank{rank}_epoch{epoch}.json").read_text()) for rank in (0, 1)]
        window = Counter(ranks[0]["window"])
        assert ranks[0]["window"] == ranks[1]["window"]  # the same window on both
        trained = [Counter(rank["trained"]) for rank in ranks]
        assert len(ranks[0]["trained"]) == len(ranks[1]["trained"]) == (sum(window.values()) + 1) // 2
        both = trained[0] + trained[1]
        assert not window - both  # every sample of the window is trained on
        assert sum((both - window).values()) <= 1  # disjoint, but for the sampler's padding to equal shares
        windows.append(window)
    assert not windows[0] - windows[1] and windows[1] - windows[0]  # iteration 1 reads its new games too
