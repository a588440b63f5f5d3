"""Adapters between the NVlabs network interface and k-diffusion's denoiser interface.

NVlabs interface: `net(x, sigma, class_labels)` returns D(x; sigma), where sigma is a scalar (NVlabs' samplers pass a
0-dim tensor) or one value per sample, and labels are one-hot rows [B, label_dim]; the network also carries
`img_channels`, `img_resolution`, `label_dim`, `sigma_min`, `sigma_max` and `round_sigma`.

k-diffusion interface: `model(x, sigma, **extra_args)` returns D(x; sigma), where sigma is always one value per
sample, [B] (k-diffusion's samplers pass `sigmas[i] * x.new_ones([B])`), and conditioning arrives as keyword
arguments. Both denoise in the same coordinates (x = y + sigma n, no input scaling outside the network), so the
adapters only translate the call.
"""

import math

import torch

from edm_bdia.sample import karras_sigmas


def _sigma_tensor(sigma, device):
    """sigma as a tensor on `device`; Python numbers become float64 (torch.as_tensor would round them to float32)."""
    return sigma.to(device) if torch.is_tensor(sigma) else torch.tensor(sigma, dtype=torch.float64, device=device)


def _one_hot_labels(class_labels, label_dim):
    """Integer class indices [B] become one-hot float32 rows [B, label_dim]; float labels pass unchanged."""
    if class_labels is None or class_labels.is_floating_point():
        return class_labels
    if not label_dim:
        raise ValueError('class_labels were given as class indices, but the network is unconditional '
                         '(label_dim = 0); pass no class_labels')
    return torch.nn.functional.one_hot(class_labels.reshape(-1).long(), label_dim).to(torch.float32)


class KDiffusionDenoiser(torch.nn.Module):
    """An NVlabs network as a k-diffusion denoiser: `model(x, sigma, class_labels=None)` -> D(x; sigma) in x's dtype.

    `class_labels` (passed by k-diffusion through `extra_args={'class_labels': ...}`) are one-hot rows or integer
    class indices. A per-sample sigma whose entries are all equal (every k-diffusion sampler's case) reaches the
    network as one 0-dim value, exactly as NVlabs' `edm_sampler` passes it: an unconditional NVlabs UNet computes
    its noise embedding for one row instead of B rows then, which changes float32 results by an ulp, so this keeps
    k-diffusion's samplers on the same arithmetic (and the same bits) as ours. The NVlabs attributes are forwarded,
    so the wrapper still works wherever the network did.
    """

    def __init__(self, net):
        super().__init__()
        self.inner_model = net

    img_channels = property(lambda self: self.inner_model.img_channels)
    img_resolution = property(lambda self: self.inner_model.img_resolution)
    label_dim = property(lambda self: self.inner_model.label_dim)
    sigma_min = property(lambda self: self.inner_model.sigma_min)
    sigma_max = property(lambda self: self.inner_model.sigma_max)

    def round_sigma(self, sigma):
        return self.inner_model.round_sigma(sigma)

    def karras_sigmas(self, num_steps, sigma_min=0.002, sigma_max=80, rho=7, device=None):
        """EDM's float64 schedule for this network (clamped to its range, rounded by its `round_sigma`), ending
        in 0: the `sigmas` to hand to a k-diffusion sampler to match `edm_sampler`."""
        return karras_sigmas(num_steps, sigma_min, sigma_max, rho, net=self.inner_model, device=device)

    def forward(self, x, sigma, class_labels=None):
        sigma = _sigma_tensor(sigma, x.device).reshape(-1)
        if sigma.numel() not in (1, x.shape[0]):
            raise ValueError(f'sigma must hold one value or one per sample ({x.shape[0]}), got {sigma.numel()}')
        if bool((sigma == sigma[0]).all()):
            sigma = sigma[0]  # one shared level: the 0-dim form NVlabs' samplers use (see the class docstring)
        labels = _one_hot_labels(class_labels, self.inner_model.label_dim)
        return self.inner_model(x, sigma, labels).to(x.dtype)


def _given_or_inferred(value, model, name, default):
    """An explicit argument, else the model's attribute of that name, else the default."""
    return value if value is not None else getattr(model, name, default)


class NVlabsDenoiser(torch.nn.Module):
    """A k-diffusion denoiser `model(x, sigma, **extra_args)` with the NVlabs interface, for this package's samplers.

    Each attribute is the argument when given, else the model's own attribute of that name, else a default:
    `img_channels`, `img_resolution` (None: the samplers skip their shape check), `label_dim` (None: labels are
    passed on unchecked), `sigma_min` = 0 and `sigma_max` = inf (the schedule is not clamped), `round_sigma` = the
    identity. One-hot `class_labels` from the samplers reach the model as the keyword `labels_keyword`, as class
    indices with `labels_as_indices=True` (k-diffusion's own image transformer takes `class_cond` indices), and
    `extra_args` go with every call, like k-diffusion's `extra_args`.
    """

    def __init__(self, model, *, img_channels=None, img_resolution=None, label_dim=None, sigma_min=None,
                 sigma_max=None, round_sigma=None, labels_keyword='class_labels', labels_as_indices=False,
                 extra_args=None):
        super().__init__()
        self.inner_model = model
        self.img_channels = _given_or_inferred(img_channels, model, 'img_channels', None)
        self.img_resolution = _given_or_inferred(img_resolution, model, 'img_resolution', None)
        self.label_dim = _given_or_inferred(label_dim, model, 'label_dim', None)
        self.sigma_min = float(_given_or_inferred(sigma_min, model, 'sigma_min', 0))
        self.sigma_max = float(_given_or_inferred(sigma_max, model, 'sigma_max', math.inf))
        if not 0 <= self.sigma_min < self.sigma_max:
            raise ValueError(f'need 0 <= sigma_min < sigma_max, got sigma_min={self.sigma_min}, '
                             f'sigma_max={self.sigma_max}')
        self._round_sigma = _given_or_inferred(round_sigma, model, 'round_sigma', torch.as_tensor)
        self.labels_keyword = labels_keyword
        self.labels_as_indices = labels_as_indices
        self.extra_args = dict(extra_args or {})
        if labels_keyword in self.extra_args:
            raise ValueError(f'extra_args must not hold {labels_keyword!r}: the samplers pass class labels under it')

    def round_sigma(self, sigma):
        return self._round_sigma(sigma)

    def forward(self, x, sigma, class_labels=None):
        sigma = _sigma_tensor(sigma, x.device)
        batch = x.shape[0]
        if sigma.numel() == 1:
            sigma = sigma.reshape(()) * x.new_ones([batch])  # k-diffusion's per-sample form, sigmas[i] * s_in
        elif sigma.numel() == batch:
            sigma = sigma.reshape(-1).to(x.dtype)
        else:
            raise ValueError(f'sigma must hold one value or one per sample ({batch}), got {sigma.numel()}')
        kwargs = dict(self.extra_args)
        if class_labels is not None:
            labels = class_labels.expand(batch, -1)  # a single [1, label_dim] row applies to every sample
            kwargs[self.labels_keyword] = labels.argmax(1) if self.labels_as_indices else labels
        return self.inner_model(x, sigma, **kwargs)
