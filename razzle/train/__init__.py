"""Training: the composite loss, metrics, the LightningModule, the DataModule and the AlphaZero loop."""

from omegaconf import OmegaConf


def _first_set(*values):
    """The first value that is not null (`oc.select` returns a key's null, not its default)."""
    return next((value for value in values if value is not None), None)


# conf/selfplay/default.yaml computes trainer.max_epochs = iterations x epochs_per_iteration.
if not OmegaConf.has_resolver("razzle_multiply"):
    OmegaConf.register_new_resolver("razzle_multiply", lambda a, b: int(a) * int(b))
# conf/hydra/default.yaml: the run folder is `resume` when set, else a new dated folder.
if not OmegaConf.has_resolver("razzle_first_set"):
    OmegaConf.register_new_resolver("razzle_first_set", _first_set)
