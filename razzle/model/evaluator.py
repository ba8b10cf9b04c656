"""The network as the search sees it: positions in, absolute policy logits and values out."""

from __future__ import annotations

import torch

from razzle.game.state import State
from razzle.model.network import RazzleNet, inference_copy
from razzle.model.planes import encode_states
from razzle.model.policy import reorient_policy


class NetworkEvaluator:
    """`evaluator(state) -> (logits [B, 897] in absolute action ids, value [B])`.

    The value is from the side to move's view, in [-1, 1]. Logits cover every action;
    the search masks the illegal ones (its prior is their softmax over legal actions).
    The network is moved to `device` and put in eval mode; what evaluates is a copy made
    here (`inference_copy`: batch norm folded, channels_last), so new weights reach it
    through `load_state_dict` alone. It runs without autograd, optionally under bf16
    autocast (faster for medium and larger nets). Results come back as float32 on the
    state's device.
    """

    def __init__(self, network: RazzleNet, device: str | torch.device = "cpu", bf16: bool = False):
        self.device = torch.device(device)
        self.network = network.to(self.device).eval()
        self.bf16 = bf16
        self._inference = inference_copy(self.network)

    def load_state_dict(self, state: dict) -> None:
        """New weights for the network, copied into the evaluating copy in place (where a
        CUDA graph that captured it reads them)."""
        self.network.load_state_dict(state)
        self._inference.load_state_dict(inference_copy(self.network).state_dict())

    @torch.inference_mode()
    def __call__(self, state: State) -> tuple[torch.Tensor, torch.Tensor]:
        planes = encode_states(state).to(self.device, non_blocking=True)
        planes = planes.contiguous(memory_format=torch.channels_last)
        # No cache of cast weights: a CUDA graph capturing this call must cast them itself.
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16, cache_enabled=False):
            policy, value = self._inference.policy_and_value(planes)
        to_move = state.to_move.to(self.device)
        logits = reorient_policy(policy.float(), to_move)
        return logits.to(state.device), value.float().to(state.device)
