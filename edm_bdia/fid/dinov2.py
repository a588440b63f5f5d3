"""DINOv2's ViT (Oquab et al. 2023, "DINOv2: Learning Robust Visual Features without Supervision") in plain PyTorch:
the network of the FD_DINOv2 detector (docs/fid.md, 'DINOv2 network').

Module and parameter names are those of Meta's published checkpoints (``dinov2_vitl14_pretrain.pth``, a plain
state dict), so the weights load by name:

    cls_token [1, 1, D], pos_embed [1, 1 + G*G, D], mask_token [1, D], patch_embed.proj.{weight, bias},
    blocks.<i>.{norm1, attn.qkv, attn.proj, ls1.gamma, norm2, mlp.fc1, mlp.fc2, ls2.gamma}, norm.{weight, bias}

ViT-L/14 is D = 1024, 24 blocks, 16 heads of 64, 14x14 patches, a 37x37 position grid (trained at 518x518). Each
block is pre-norm: x + ls1 * attn(norm1(x)), then x + ls2 * mlp(norm2(x)), LayerNorm eps 1e-6, exact GELU. The
feature is the class token after the final norm. Smaller models of the same layout (other D, depth, grid) build
from their state dict too; the tests use them.
"""

import math

import torch
import torch.nn.functional as F

HEAD_DIM = 64  # every DINOv2 ViT (S, B, L, g) uses 64 channels per attention head
MLP_RATIO = 4
LAYER_NORM_EPS = 1e-6
# Meta's position-embedding resampling asks for a scale of (grid + 0.1) / stored grid rather than an output size
# (docs/fid.md, 'Position embedding'), which moves the sampling positions slightly; kept for identical features.
POSITION_GRID_OFFSET = 0.1
VITL14 = dict(embed_dim=1024, depth=24, patch_size=14, position_grid=37)


class PatchEmbedding(torch.nn.Module):
    """Non-overlapping patch x patch convolution: [N, 3, H, W] -> [N, (H/patch)(W/patch), D], row-major tokens."""

    def __init__(self, embed_dim, patch_size, in_channels=3):
        super().__init__()
        self.proj = torch.nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class SelfAttention(torch.nn.Module):
    """Multi-head self-attention with one fused qkv projection (q, k, v in that order along the output)."""

    def __init__(self, embed_dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = torch.nn.Linear(embed_dim, 3 * embed_dim)
        self.proj = torch.nn.Linear(embed_dim, embed_dim)

    def forward(self, x):
        n, tokens, channels = x.shape
        q, k, v = self.qkv(x).reshape(n, tokens, 3, self.num_heads, channels // self.num_heads).permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(head_dim)) v
        return self.proj(x.transpose(1, 2).reshape(n, tokens, channels))


class LayerScale(torch.nn.Module):
    """Per-channel scale of a residual branch (Touvron et al. 2021, CaiT)."""

    def __init__(self, embed_dim):
        super().__init__()
        self.gamma = torch.nn.Parameter(torch.ones(embed_dim))

    def forward(self, x):
        return x * self.gamma


class FeedForward(torch.nn.Module):
    """fc1 -> exact GELU -> fc2."""

    def __init__(self, embed_dim, hidden_dim):
        super().__init__()
        self.fc1 = torch.nn.Linear(embed_dim, hidden_dim)
        self.fc2 = torch.nn.Linear(hidden_dim, embed_dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(torch.nn.Module):
    """Pre-norm transformer block with LayerScale on both residual branches."""

    def __init__(self, embed_dim, num_heads):
        super().__init__()
        self.norm1 = torch.nn.LayerNorm(embed_dim, eps=LAYER_NORM_EPS)
        self.attn = SelfAttention(embed_dim, num_heads)
        self.ls1 = LayerScale(embed_dim)
        self.norm2 = torch.nn.LayerNorm(embed_dim, eps=LAYER_NORM_EPS)
        self.mlp = FeedForward(embed_dim, MLP_RATIO * embed_dim)
        self.ls2 = LayerScale(embed_dim)

    def forward(self, x):
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


def resample_position_grid(patch_positions, rows, cols):
    """Patch position embeddings [1, G*G, D] on their stored G x G grid resampled to rows x cols, as Meta's model
    does it: bicubic (a = -0.75, half-pixel centres, edge rows repeated) at the scale (rows + 0.1) / G, in float32."""
    grid = math.isqrt(patch_positions.shape[1])
    dim = patch_positions.shape[2]
    stored = patch_positions.float().reshape(1, grid, grid, dim).permute(0, 3, 1, 2)
    scale = ((rows + POSITION_GRID_OFFSET) / grid, (cols + POSITION_GRID_OFFSET) / grid)
    resampled = F.interpolate(stored, scale_factor=scale, mode='bicubic', align_corners=False)
    assert resampled.shape[-2:] == (rows, cols)  # floor(G * (rows + 0.1) / G) = rows
    return resampled.permute(0, 2, 3, 1).reshape(1, rows * cols, dim)


class DinoVisionTransformer(torch.nn.Module):
    """DINOv2 backbone: normalised float images [N, 3, H, W] (H, W multiples of the patch size) -> the class token
    after the final norm, [N, embed_dim]."""

    def __init__(self, embed_dim=VITL14['embed_dim'], depth=VITL14['depth'], patch_size=VITL14['patch_size'],
                 position_grid=VITL14['position_grid']):
        super().__init__()
        if embed_dim % HEAD_DIM:
            raise ValueError(f'embed_dim must be a multiple of {HEAD_DIM} (the head size), got {embed_dim}')
        self.embed_dim = embed_dim
        self.patch_size = patch_size
        self.position_grid = position_grid
        self.patch_embed = PatchEmbedding(embed_dim, patch_size)
        self.cls_token = torch.nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = torch.nn.Parameter(torch.zeros(1, 1 + position_grid ** 2, embed_dim))
        self.mask_token = torch.nn.Parameter(torch.zeros(1, embed_dim))  # for masked training; kept for the layout
        self.blocks = torch.nn.ModuleList(Block(embed_dim, embed_dim // HEAD_DIM) for _ in range(depth))
        self.norm = torch.nn.LayerNorm(embed_dim, eps=LAYER_NORM_EPS)

    def position_embedding(self, rows, cols, dtype):
        """[1, 1 + rows*cols, D]: the stored embedding on its own square grid, else the resampled one."""
        if rows == cols == self.position_grid:
            return self.pos_embed
        patches = resample_position_grid(self.pos_embed[:, 1:], rows, cols)
        return torch.cat([self.pos_embed[:, :1].float(), patches], dim=1).to(dtype)

    def forward(self, x):
        rows, cols = x.shape[2] // self.patch_size, x.shape[3] // self.patch_size
        if (rows * self.patch_size, cols * self.patch_size) != tuple(x.shape[2:]):
            raise ValueError(f'image size {tuple(x.shape[2:])} is not a multiple of the patch size {self.patch_size}')
        # The residual stream stays in the parameters' dtype (float32) when autocast runs the products in 16 bits.
        tokens = self.patch_embed(x).to(self.cls_token.dtype)
        tokens = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), tokens], dim=1)
        tokens = tokens + self.position_embedding(rows, cols, tokens.dtype)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens[:, 0])
