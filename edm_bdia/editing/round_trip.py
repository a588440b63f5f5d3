"""What both halves of an exact round trip share (invert, edit): the invertible sampler's settings resolved for a
network (and a guiding network), the networks in exact float32 arithmetic, and the reference speed plan on the
inversion's tile.

Exactness: a round trip replays every denoiser call of the other direction, so the network runs in float32 without
TF32 (and without a `use_fp16` network's half precision), on fixed tiles of samples (a call's result does not
depend on the batch), and its first call is checked to repeat bit for bit (edm_bdia.samplers.exactness).
"""

import dataclasses

import torch

from edm_bdia.runs.runtime import open_runtime
from edm_bdia.sample import DEFAULT_BASE, DEFAULT_GAMMA, round_trip_settings
from edm_bdia.samplers.checks import warn_if_many_steps
from edm_bdia.samplers.guidance import guided
from edm_bdia.speed import make_plan


@dataclasses.dataclass(frozen=True)
class EditSettings:
    """The invertible sampler of a round trip: EDM's noise levels, BDIA's gamma and base, the strength (the fraction
    of the steps inverted; 1 = all the way to the latents) and the guidance weight (1: none)."""
    num_steps: int = 18
    sigma_min: float = 0.002
    sigma_max: float = 80
    rho: float = 7
    gamma: object = DEFAULT_GAMMA
    base: str = DEFAULT_BASE
    strength: float = 1.0
    guidance: float = 1

    def resolve(self, net, gnet=None):
        """The settings as a latents file records them, for `net` guided by `gnet`: its noise levels t_0 > ... >
        t_N = 0 (`sigmas`, a list), gamma, base, strength, the step the inversion stops at (`start_step`),
        `num_steps` and, when it is not 1, `guidance`; checks every setting (ArgumentError)."""
        guided(net, gnet, self.guidance)
        warn_if_many_steps(self.num_steps)
        sigmas, _, start_step = round_trip_settings(net, num_steps=self.num_steps, sigma_min=self.sigma_min,
                                                    sigma_max=self.sigma_max, rho=self.rho, gamma=self.gamma,
                                                    base=self.base, strength=self.strength)
        return dict(sigmas=sigmas.tolist(), gamma=self.gamma, base=self.base, strength=self.strength,
                    start_step=start_step, num_steps=self.num_steps,
                    **({} if self.guidance == 1 else dict(guidance=self.guidance)))


def callback_counts(resolved):
    """(the sampler callbacks of one encoding, those of one regeneration) under `resolved` (EditSettings.resolve, or
    a latents file's settings), for a progress bar: an encoding calls back once its start is solved (x_{N-1} from
    the images, edm_bdia.samplers.bdia.image_pair) and after each inverted step N-1 .. k+1; a regeneration after
    each step k+1 .. N-1."""
    num_steps, stop = len(resolved['sigmas']) - 1, resolved['start_step']
    return num_steps - stop, num_steps - 1 - stop


def round_trip_plan(device, tile, count):
    """The reference plan of a round trip over `count` images: `tile` samples per network call; by default the
    batch-invariant tile, but no more samples per call than there are images, so that a few images are not padded
    to the default tile (the rule depends on the images alone, so resumed runs with other batch sizes keep it)."""
    plan = make_plan('reference', device, tile=tile, batch_invariant=True)
    if tile is None and plan.tile is not None and count < plan.tile:
        plan = dataclasses.replace(plan, tile=count)
    return plan


def replay_plan(device, recorded):
    """The reference plan on the tile a latents file's settings (`recorded`) name, so that every network call of
    the regeneration repeats one of the inversion's; files without a tile (older versions) were inverted on the
    default tile."""
    if 'tile' not in recorded:
        return make_plan('reference', device, batch_invariant=True)
    return make_plan('reference', device, tile=recorded['tile'])


def open_guide(gnet, device, plan, trust_pickle_code):
    """The guiding network's runtime (as the network's, in exact arithmetic), or None without `gnet`."""
    if gnet is None:
        return None
    guide = open_runtime(gnet, device, plan, trust_pickle_code=trust_pickle_code, argument='gnet', uses_encoder=False)
    use_exact_arithmetic(guide.opened.net)
    return guide


def guide_record(guide):
    """What a latents file or manifest records of the guiding network: nothing without one (so that unguided
    files stay as they were), else its source and sha256."""
    return {} if guide is None else dict(gnet=dict(source=guide.opened.label, sha256=guide.opened.sha256))


def use_exact_arithmetic(net):
    """Run `net` in full float32: no TF32 inside convolutions and matmuls, no fp16 UNet."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision('highest')
    if getattr(net, 'use_fp16', False):
        net.use_fp16 = False

