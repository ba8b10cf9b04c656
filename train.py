"""Train the network: `python train.py [overrides]` (Hydra; config in conf/train.yaml).

    python train.py data.dir=path/to/samples model=medium loss.quartic=0.25
    python train.py experiment=quartic trainer=gpu logger=many
    python train.py --cfg job model=medium      # print the composed config
"""

import sys

import hydra
from omegaconf import DictConfig

import razzle.train  # noqa: F401  (registers the config resolvers; imports no torch)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> None:
    # Imported here so that `--cfg job` and `--help` answer without loading torch.
    from hydra.errors import InstantiationException

    from razzle.memory import keep_freed_memory
    from razzle.model.io import ModelFileError
    from razzle.model.samples import SampleFileError
    from razzle.selfplay.backend import SelfPlayError
    from razzle.train.console import quiet_dependencies
    from razzle.train.loop import LoopError
    from razzle.train.run import train

    quiet_dependencies()
    keep_freed_memory()
    try:
        train(cfg)
    except (InstantiationException, SampleFileError, ModelFileError, LoopError, SelfPlayError, FileNotFoundError) as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
