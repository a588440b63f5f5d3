"""Our own implementations of the NVlabs EDM networks (docs/networks.md), loadable one-to-one from the
published pickles: same constructor keywords, module tree, parameter/buffer names and state_dict order, and
bit-identical fp32 CPU outputs.

Modules: `layers` (Linear, Conv2d, GroupNorm, init), `attention` (AttentionOp), `embeddings`
(Positional/FourierEmbedding), `unet_block` (UNetBlock), `songunet` (DDPM++/NCSN++), `dhariwal` (ADM),
`precond` (VP/VE/iDDPM/EDM preconditioners).
"""

from edm_bdia.networks.attention import AttentionOp
from edm_bdia.networks.dhariwal import DhariwalUNet
from edm_bdia.networks.embeddings import FourierEmbedding, PositionalEmbedding
from edm_bdia.networks.layers import Conv2d, GroupNorm, Linear
from edm_bdia.networks.precond import EDMPrecond, VEPrecond, VPPrecond, iDDPMPrecond
from edm_bdia.networks.songunet import SongUNet
from edm_bdia.networks.unet_block import UNetBlock

# Class name (as stored in a pickle's meta `class_name`) -> our persistent class.
PERSISTENT_CLASSES = {cls.__name__: cls for cls in (
    Linear, Conv2d, GroupNorm, UNetBlock, PositionalEmbedding, FourierEmbedding, SongUNet, DhariwalUNet,
    VPPrecond, VEPrecond, iDDPMPrecond, EDMPrecond)}

__all__ = ['AttentionOp', 'Linear', 'Conv2d', 'GroupNorm', 'UNetBlock', 'PositionalEmbedding', 'FourierEmbedding',
           'SongUNet', 'DhariwalUNet', 'VPPrecond', 'VEPrecond', 'iDDPMPrecond', 'EDMPrecond', 'PERSISTENT_CLASSES']
