"""Tiny DINOv2 ViTs for the FD_DINOv2 tests, and an independent float64 numpy restatement of the network.

* `tiny_dinov2_state` builds a state dict by key name in the layout of Meta's published checkpoints (it does not
  use edm_bdia's module, so a layout mistake there cannot be mirrored here);
* `reference_features` computes the class-token feature from that state dict in numpy float64, written from the
  formulas (patch projection, position grid resampled by cubic convolution, pre-norm blocks with LayerScale,
  exact GELU, final LayerNorm), sharing no code with edm_bdia.
"""

import numpy as np
import scipy.special
import torch

HEAD_DIM = 64
LAYER_NORM_EPS = 1e-6
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])
# One block's tensors in Meta's checkpoint: name -> shape as a function of the width D.
BLOCK_LAYOUT = {
    'norm1.weight': lambda d: (d,), 'norm1.bias': lambda d: (d,),
    'attn.qkv.weight': lambda d: (3 * d, d), 'attn.qkv.bias': lambda d: (3 * d,),
    'attn.proj.weight': lambda d: (d, d), 'attn.proj.bias': lambda d: (d,),
    'ls1.gamma': lambda d: (d,),
    'norm2.weight': lambda d: (d,), 'norm2.bias': lambda d: (d,),
    'mlp.fc1.weight': lambda d: (4 * d, d), 'mlp.fc1.bias': lambda d: (4 * d,),
    'mlp.fc2.weight': lambda d: (d, 4 * d), 'mlp.fc2.bias': lambda d: (d,),
    'ls2.gamma': lambda d: (d,),
}


def published_layout(embed_dim=1024, depth=24, patch_size=14, grid=37):
    """{name: shape} of a DINOv2 ViT checkpoint (ViT-L/14 by default: dinov2_vitl14_pretrain.pth)."""
    d = embed_dim
    layout = {'cls_token': (1, 1, d), 'pos_embed': (1, 1 + grid * grid, d), 'mask_token': (1, d),
              'patch_embed.proj.weight': (d, 3, patch_size, patch_size), 'patch_embed.proj.bias': (d,)}
    for i in range(depth):
        layout.update({f'blocks.{i}.{name}': shape(d) for name, shape in BLOCK_LAYOUT.items()})
    layout.update({'norm.weight': (d,), 'norm.bias': (d,)})
    return layout


def tiny_dinov2_state(seed=0, embed_dim=128, depth=2, patch_size=14, grid=4):
    """Random weights in the published layout, scaled so that activations stay O(1) through the blocks."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in published_layout(embed_dim, depth, patch_size, grid).items():
        noise = torch.randn(shape, generator=generator)
        if name.endswith('weight') and len(shape) > 1:  # linear and convolution weights: unit gain
            value = noise / np.sqrt(np.prod(shape[1:]))
        elif 'norm' in name and name.endswith('weight'):
            value = 1 + 0.1 * noise
        elif name.endswith('gamma'):  # LayerScale
            value = 0.5 + 0.2 * noise
        else:  # biases, tokens, position embeddings
            value = 0.3 * noise
        state[name] = value
    return state


def save_dinov2_weights(path, **kwargs):
    """A weights file like Meta's: torch.save of the plain state dict."""
    torch.save(tiny_dinov2_state(**kwargs), path)
    return str(path)


def _cubic_weights(t, a=-0.75):
    """Cubic-convolution weights (Keys 1981) of the four neighbours at offsets -1, 0, 1, 2 from floor(x)."""
    distances = np.abs(np.stack([t + 1, t, 1 - t, 2 - t], axis=-1))
    near = ((a + 2) * distances - (a + 3)) * distances ** 2 + 1
    far = ((a * distances - 5 * a) * distances + 8 * a) * distances - 4 * a
    return np.where(distances <= 1, near, far)


def resample_axis(values, axis, count, scale):
    """Resample `values` along `axis` to `count` samples: output i reads input (i + 0.5) / scale - 0.5, cubic
    convolution with a = -0.75, indices beyond the edges clamped (PyTorch's bicubic, align_corners=False)."""
    source = (np.arange(count) + 0.5) / scale - 0.5
    base = np.floor(source)
    weights = _cubic_weights(source - base)  # [count, 4]
    indices = np.clip(base[:, None].astype(int) + np.arange(-1, 3), 0, values.shape[axis] - 1)
    moved = np.moveaxis(values, axis, 0)  # [n, ...]
    out = np.einsum('ck,ck...->c...', weights, moved[indices])
    return np.moveaxis(out, 0, axis)


def reference_position_grid(pos_embed, rows, cols, offset=0.1):
    """[rows*cols, D]: the stored G x G patch position grid resampled at scale (rows + 0.1) / G (and cols)."""
    grid = int(round(np.sqrt(pos_embed.shape[0])))
    table = pos_embed.reshape(grid, grid, -1)
    table = resample_axis(table, 0, rows, (rows + offset) / grid)
    table = resample_axis(table, 1, cols, (cols + offset) / grid)
    return table.reshape(rows * cols, -1)


def _layer_norm(x, weight, bias):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + LAYER_NORM_EPS) * weight + bias


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def reference_backbone(state, x):
    """Class-token features [N, D] of normalised float images x [N, 3, H, W], in float64 numpy."""
    p = {name: value.double().numpy() for name, value in state.items()}
    d = p['cls_token'].shape[-1]
    patch = p['patch_embed.proj.weight'].shape[-1]
    n, c, h, w = x.shape
    rows, cols = h // patch, w // patch
    patches = x.reshape(n, c, rows, patch, cols, patch).transpose(0, 2, 4, 1, 3, 5).reshape(n, rows * cols, -1)
    tokens = patches @ p['patch_embed.proj.weight'].reshape(d, -1).T + p['patch_embed.proj.bias']
    grid = int(round(np.sqrt(p['pos_embed'].shape[1] - 1)))
    positions = p['pos_embed'][0, 1:]
    if (rows, cols) != (grid, grid):
        positions = reference_position_grid(positions, rows, cols)
    tokens = np.concatenate([np.broadcast_to(p['cls_token'][0] + p['pos_embed'][0, :1], (n, 1, d)),
                             tokens + positions], axis=1)
    heads = d // HEAD_DIM
    depth = sum(1 for name in p if name.endswith('.norm1.weight'))
    for i in range(depth):
        b = {name[len(f'blocks.{i}.'):]: value for name, value in p.items() if name.startswith(f'blocks.{i}.')}
        h1 = _layer_norm(tokens, b['norm1.weight'], b['norm1.bias'])
        q, k, v = np.split(h1 @ b['attn.qkv.weight'].T + b['attn.qkv.bias'], 3, axis=-1)
        q, k, v = (t.reshape(n, -1, heads, HEAD_DIM).transpose(0, 2, 1, 3) for t in (q, k, v))
        attended = _softmax(q @ k.transpose(0, 1, 3, 2) / np.sqrt(HEAD_DIM)) @ v
        attended = attended.transpose(0, 2, 1, 3).reshape(n, -1, d)
        tokens = tokens + b['ls1.gamma'] * (attended @ b['attn.proj.weight'].T + b['attn.proj.bias'])
        h2 = _layer_norm(tokens, b['norm2.weight'], b['norm2.bias'])
        hidden = h2 @ b['mlp.fc1.weight'].T + b['mlp.fc1.bias']
        hidden = 0.5 * hidden * (1 + scipy.special.erf(hidden / np.sqrt(2)))  # exact GELU
        tokens = tokens + b['ls2.gamma'] * (hidden @ b['mlp.fc2.weight'].T + b['mlp.fc2.bias'])
    return _layer_norm(tokens[:, 0], p['norm.weight'], p['norm.bias'])


def reference_features(state, images_uint8_224):
    """The detector's features of uint8 NCHW images that are already 224x224 (no resize), float64 numpy."""
    x = images_uint8_224.double().numpy() / 255
    x = (x - IMAGENET_MEAN.reshape(1, 3, 1, 1)) / IMAGENET_STD.reshape(1, 3, 1, 1)
    return reference_backbone(state, x)
