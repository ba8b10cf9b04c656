"""A clean console for training runs: each log line once, no advertisements, no known noise.

Lightning gives its top-level logger a console handler of its own while also letting its
records reach the root logger, which Hydra configures: every INFO line came out twice.
Hydra's handler stays (it also writes the run's log file); Lightning's goes. Alembic
announces every plugin and migration step at INFO when the run's metrics store is created;
the store says in one line of its own what it upgraded.
"""

from __future__ import annotations

import logging
import warnings

ADVERTISEMENT_PREFIX = "💡 Tip:"
RANK_ZERO_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")
# Warnings that dependencies raise about their own internals; no call of ours causes them.
# The checkpoint folder warning is Lightning's reaction to the loop continuing one run, in
# one checkpoint folder, over many `fit` calls: expected, not a problem.
KNOWN_DEPENDENCY_NOISE = (
    (r".*isinstance\(treespec, LeafSpec\)", "lightning.pytorch.utilities._pytree"),
    (r"Checkpoint directory .* exists and is not empty", "lightning.pytorch.callbacks.model_checkpoint"),
)


class DropAdvertisements(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(ADVERTISEMENT_PREFIX)


def quiet_dependencies() -> None:
    """Call before building the Trainer; calling it again changes nothing."""
    import lightning  # noqa: F401  (importing it installs the handler removed here)

    lightning_logger = logging.getLogger("lightning")
    for handler in list(lightning_logger.handlers):
        lightning_logger.removeHandler(handler)
    lightning_logger.propagate = True
    for name in RANK_ZERO_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, DropAdvertisements) for existing in logger.filters):
            logger.addFilter(DropAdvertisements())
    logging.getLogger("alembic").setLevel(logging.WARNING)
    for message, module in KNOWN_DEPENDENCY_NOISE:
        warnings.filterwarnings("ignore", message=message, module=module)
