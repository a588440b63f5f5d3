"""The one adapter between the samplers and a network: `AcceleratedNet` runs every call under a SpeedPlan.

It presents NVlabs' network interface (img_resolution, img_channels, label_dim, sigma_min, sigma_max, round_sigma,
__call__) to the samplers, whose float64 state lives on `state_device`, and calls the network on `net_device`:
on fixed-size tiles of samples when the plan says so, in NHWC when the plan says so, from CUDA graphs when the
plan says so. MPS has no float64, so there the sampler state stays on the CPU and only the network runs on MPS.
"""

import torch

from edm_bdia.speed import modes
from edm_bdia.speed.cuda_graphs import GraphedCall
from edm_bdia.speed.memory import check_call_memory
from edm_bdia.speed.precision import lower_unet_precision, takes_16_bit_unet
from edm_bdia.speed.tiling import EquivalentCallSizes, call_in_tiles


def state_device_for(device):
    """Where latents, random draws and the float64 sampler state live for a given compute device."""
    device = torch.device(device)
    return torch.device('cpu') if device.type == 'mps' else device


class AcceleratedNet:
    """A network with NVlabs' interface whose calls run under `plan`; other attributes come from `net`."""

    def __init__(self, net, plan, call, net_device, state_device):
        self.net = net
        self.plan = plan
        self._call = call
        self.net_device = net_device
        self.state_device = state_device
        # CPU only: GPU libraries may choose kernels by timing, and compiled or graphed calls cost one build per size
        probed = plan.tile is not None and net_device.type == 'cpu' and not plan.compile
        self._equivalent_sizes = EquivalentCallSizes(plan.tile) if probed else None

    def __getattr__(self, name):
        if name in ('net', 'plan', '_call', 'net_device', 'state_device', '_equivalent_sizes'):  # copy, unpickle
            raise AttributeError(name)
        return getattr(self.net, name)

    def _to_net(self, value):
        if not torch.is_tensor(value) or self.net_device == self.state_device:
            return value
        if value.dtype == torch.float64:
            value = value.to(torch.float32)  # the EDM preconditioners cast to float32 first anyway
        return value.to(self.net_device)

    def _call_tile(self, x, sigma, class_labels, model_kwargs):
        x, sigma, class_labels = self._to_net(x), self._to_net(sigma), self._to_net(class_labels)
        model_kwargs = {key: self._to_net(value) for key, value in model_kwargs.items()}
        if self.plan.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        out = self._call(x, sigma, class_labels, *model_kwargs.values(), keys=tuple(model_kwargs))
        return out.contiguous().to(self.state_device)

    def __call__(self, x, sigma, class_labels=None, force_fp32=False, **model_kwargs):
        if force_fp32:
            if self.plan.mode != 'reference':
                raise modes.SpeedModeError('force_fp32', f'is not available in mode {self.plan.mode}; use mode '
                                                         'reference')
            model_kwargs['force_fp32'] = True  # only when asked: analytic nets do not take it
        if self.plan.cuda_graphs and not torch.is_tensor(sigma):
            sigma = torch.as_tensor(sigma, dtype=torch.float64, device=x.device)  # a graph input, not a constant
        with torch.no_grad():  # not inference_mode: torch.compile fails there on numpy skip_scale
            if self.plan.tile is None:
                return self._call_tile(x, sigma, class_labels, model_kwargs)
            return call_in_tiles(self._call_tile, self.plan.tile, x, sigma, class_labels, model_kwargs,
                                 self._equivalent_sizes)

    forward = __call__

    def round_sigma(self, sigma):
        if self.net_device == self.state_device:
            return self.net.round_sigma(sigma)
        rounded = self.net.round_sigma(self._to_net(torch.as_tensor(sigma, device=self.state_device)))
        return rounded.to(device=self.state_device, dtype=torch.as_tensor(sigma).dtype)


def _network_call(network):
    """call(x, sigma, class_labels, *values, keys) -> network(x, sigma, class_labels, **dict(zip(keys, values)))."""
    def call(x, sigma, class_labels, *values, keys=()):
        return network(x, sigma, class_labels, **dict(zip(keys, values)))
    return call


def _graphed_call(network):
    graphs = {}

    def call(x, sigma, class_labels, *values, keys=()):
        if keys not in graphs:
            graphs[keys] = GraphedCall(lambda *args: network(*args[:3], **dict(zip(keys, args[3:]))))
        return graphs[keys](x, sigma, class_labels, *values)
    return call


def _module_device(net):
    first = next(iter(net.parameters()), None) if isinstance(net, torch.nn.Module) else None
    return first.device if first is not None else torch.device('cpu')


def apply_plan(net, plan, device=None):
    """The AcceleratedNet running `net` (on `device`, default: where its parameters are) under `plan`.
    Non-reference plans convert `net` in place (layout, 16-bit weights), like Module.to. An `auto` plan is first
    fitted to what `net` can take; the AcceleratedNet's `plan` is the plan it runs (record that one)."""
    device = torch.device(device) if device is not None else _module_device(net)
    plan = modes.fit_to_network(plan, net, is_module=isinstance(net, torch.nn.Module),
                                is_preconditioned=takes_16_bit_unet(net))
    if plan.tile is not None:
        check_call_memory(plan.tile, net, device, 'tile')
    if hasattr(net, 'freeze_weight_normalization'):  # EDM2: normalise each weight once, same bits (mp_layers)
        net.freeze_weight_normalization(True)
    if plan.mode != 'reference':
        if not isinstance(net, torch.nn.Module):
            raise modes.SpeedModeError('mode', f'{plan.mode} needs a torch.nn.Module network, not '
                                               f'{type(net).__name__}; use mode reference')
        net.eval().requires_grad_(False)
        if plan.unet_dtype is not None:
            lower_unet_precision(net, plan.unet_dtype)
        if plan.channels_last:
            net.to(memory_format=torch.channels_last)
    network = net
    if plan.compile:  # freezing folds the (constant) weights into prepacked oneDNN layouts on CPU
        network = torch.compile(net, dynamic=False, options=dict(freezing=True) if device.type == 'cpu' else None)
    call = _graphed_call(network) if plan.cuda_graphs else _network_call(network)
    return AcceleratedNet(net, plan, call, net_device=device, state_device=state_device_for(device))


def accelerate(net, mode='reference', device=None, tile=None, compile=False, cuda_graphs=False, channels_last=None,
               allow_emulated_bf16=False):
    """Apply a speed mode to a loaded network and return an AcceleratedNet for the samplers.

    mode: 'reference' (default; each call is the network's own, bit-identical), 'fast' (NHWC, CPU tiles), 'bf16'
    (refused on a CPU without bf16 hardware unless allow_emulated_bf16), 'fp16' (CUDA), 'auto' (the fastest
    precision the device computes natively, fixed tiles; `.plan.record()` says what was chosen).
    device: where the network runs (default: the device of its first parameter, else cpu).
    tile: samples per network call (default 8 on CPU in the fast modes, else the whole batch); the last tile is
    padded. compile: torch.compile the network call (on CPU with inductor's weight freezing: constants prepacked).
    cuda_graphs: replay each call shape from a CUDA graph. channels_last: NHWC activations (default: measured
    choice per device, modes.CHANNELS_LAST).
    """
    device = torch.device(device) if device is not None else _module_device(net)
    plan = modes.make_plan(mode, device, tile=tile, compile=compile, cuda_graphs=cuda_graphs,
                           channels_last=channels_last, allow_emulated_bf16=allow_emulated_bf16)
    return apply_plan(net, plan, device)
