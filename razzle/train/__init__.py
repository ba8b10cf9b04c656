"""Training: samples, the composite loss, metrics, the LightningModule and the AlphaZero loop."""

from omegaconf import OmegaConf

# conf/selfplay/default.yaml computes trainer.max_epochs = iterations x epochs_per_iteration.
if not OmegaConf.has_resolver("razzle_multiply"):
    OmegaConf.register_new_resolver("razzle_multiply", lambda a, b: int(a) * int(b))
