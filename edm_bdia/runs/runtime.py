"""The network a sharded run samples with: opened once per rank (rank 0 first, since it may download into the
cache) and run under one speed plan, with where the float64 sampler state lives."""

import dataclasses

import torch

from edm_bdia import distributed
from edm_bdia.distributed.batching import num_batches
from edm_bdia.errors import ArgumentError
from edm_bdia.runs.network import OpenedNetwork, open_network
from edm_bdia.speed import apply_plan, state_device_for
from edm_bdia.speed.memory import check_call_memory, check_state_memory


@dataclasses.dataclass(frozen=True)
class Runtime:
    """The device, where the float64 sampler state lives, the opened network and the adapter the samplers call."""
    device: torch.device
    state_device: torch.device
    opened: OpenedNetwork
    net: object  # the speed adapter (edm_bdia.speed.AcceleratedNet) around opened.net; `net.plan` is the plan it runs

    def check_batch_memory(self, count, max_batch_size, argument='max_batch_size'):
        """ArgumentError naming `argument` when the largest batch of `count` items split NVlabs' way (at most
        `max_batch_size` per rank) clearly cannot fit: its float64 sampler state, and its network call where the
        plan calls the network on the whole batch (no tiles)."""
        if count == 0:
            return
        largest = -(-count // num_batches(count, max_batch_size, distributed.get_world_size()))
        check_state_memory(largest, self.opened.net, self.state_device, argument)
        if self.net.plan.tile is None:
            check_call_memory(largest, self.opened.net, self.device, argument)


def open_runtime(network, device, plan, *, trust_pickle_code=False, argument='network', uses_encoder=True):
    """Collective: open `network` on this rank's `device` (rank 0 first) and wrap it in the SpeedPlan `plan`; a
    failure on any rank stops every rank. Errors name `argument`. With `uses_encoder`, the encoder of its snapshot
    (if any) is made ready now (a latent model's VAE is found and loaded), so that a missing VAE fails before any
    sampling; a guiding network's encoder is never used."""
    with distributed.rank_zero_first():
        opened = open_network(network, device=device, trust_pickle_code=trust_pickle_code, argument=argument)
        if uses_encoder and opened.encoder is not None:
            _init_encoder(opened, device, argument)
    with distributed.all_ranks():
        net = apply_plan(opened.net, plan, device)
    return Runtime(device=device, state_device=state_device_for(device), opened=opened, net=net)


def _init_encoder(opened, device, argument):
    from edm_bdia.networks.stability_vae import VAEUnavailableError
    try:
        opened.encoder.init(device)
    except VAEUnavailableError as exc:
        raise ArgumentError(argument, f'{opened.label}: {exc}') from None
