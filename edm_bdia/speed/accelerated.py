"""`accelerate(net, mode=...)`: a loaded network with the levers of a speed mode applied (see `modes`)."""

import torch

from edm_bdia.speed import modes
from edm_bdia.speed.cuda_graphs import GraphedCall
from edm_bdia.speed.precision import lower_unet_precision
from edm_bdia.speed.tiling import call_in_tiles


class AcceleratedNet:
    """A network with NVlabs' interface (img_resolution, img_channels, label_dim, sigma_min, sigma_max,
    round_sigma, forward / __call__) whose calls run under a SpeedPlan. Other attributes come from `net`."""

    def __init__(self, net, plan, call):
        self.net = net
        self.plan = plan
        self._call = call

    def __getattr__(self, name):
        if name in ('net', 'plan', '_call'):  # not set yet (copy/unpickle): no recursion through self.net
            raise AttributeError(name)
        return getattr(self.net, name)

    def _call_tile(self, x, sigma, class_labels, model_kwargs):
        if self.plan.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self._call(x, sigma, class_labels, *model_kwargs.values(), keys=tuple(model_kwargs)).contiguous()

    def __call__(self, x, sigma, class_labels=None, force_fp32=False, **model_kwargs):
        if self.plan.mode == 'reference':  # force_fp32 only when asked: analytic nets do not take it
            return self.net(x, sigma, class_labels, **model_kwargs, **(dict(force_fp32=True) if force_fp32 else {}))
        if force_fp32:
            raise modes.SpeedModeError(f'force_fp32=True is not available in mode {self.plan.mode!r}; use '
                                       "mode='reference'")
        if self.plan.cuda_graphs and not torch.is_tensor(sigma):
            sigma = torch.as_tensor(sigma, dtype=torch.float64, device=x.device)  # a graph input, not a constant
        with torch.no_grad():  # not inference_mode: torch.compile fails there on numpy skip_scale (perf.md §6)
            if self.plan.tile is None:
                return self._call_tile(x, sigma, class_labels, model_kwargs)
            return call_in_tiles(self._call_tile, self.plan.tile, x, sigma, class_labels, model_kwargs)

    forward = __call__


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


def accelerate(net, mode='reference', device=None, tile=None, compile=False, cuda_graphs=False, channels_last=None):
    """Apply a speed mode to a loaded network and return an AcceleratedNet for the samplers.

    mode: 'reference' (default; no change, bit-identical), 'fast' (NHWC, CPU tiles), 'bf16', 'fp16' (CUDA).
    device: where the network runs (default: the device of its first parameter, else cpu).
    tile: samples per network call (default 8 on CPU, the whole batch on CUDA); the last tile is padded.
    compile: torch.compile the network call (on CPU with inductor's weight freezing: constants prepacked).
    cuda_graphs: replay each call shape from a CUDA graph. channels_last: NHWC activations (default: measured
    choice per device, modes.CHANNELS_LAST).
    Non-reference modes convert `net` in place (layout, 16-bit weights), like Module.to.
    """
    if device is None:
        first = next(iter(net.parameters()), None) if isinstance(net, torch.nn.Module) else None
        device = first.device if first is not None else torch.device('cpu')
    device = torch.device(device)
    plan = modes.plan(mode, device, tile, compile, cuda_graphs, channels_last)
    if plan.mode != 'reference':
        if not isinstance(net, torch.nn.Module):
            raise modes.SpeedModeError(f'mode={mode!r} needs a torch.nn.Module network, not {type(net).__name__}')
        net.eval().requires_grad_(False)
        if plan.unet_dtype is not None:
            lower_unet_precision(net, plan.unet_dtype)
        if plan.channels_last:
            net.to(memory_format=torch.channels_last)
    network = net
    if plan.compile:  # freezing folds the (constant) weights into prepacked oneDNN layouts on CPU
        network = torch.compile(net, dynamic=False, options=dict(freezing=True) if device.type == 'cpu' else None)
    call = _graphed_call(network) if plan.cuda_graphs else _network_call(network)
    return AcceleratedNet(net, plan, call)
