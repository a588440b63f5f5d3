"""A second, independent statement of the EDM2 denoiser for the tests: plain float64 functions of a flat state dict
(the names a published pickle stores) and the constructor keywords, written from the formulas of Karras et al.
(2024) rather than from edm_bdia's modules (root-mean-square normalisation, average pooling and pixel repetition
for the box-filter resampling, matrix-product attention). Supports the [1, 1] resampling filter (every published
configuration). Also: the state-dict keys an EDM2 Precond must have, in order, and the golden weights formula
(docs/networks.md, 'EDM2 golden vectors')."""

import math

import torch
import torch.nn.functional as F

EPS = 1e-4


def _rms_normalized(x, dims):
    """x / (eps + rms over dims): unit root-mean-square magnitude (the paper's normalize)."""
    return x / (EPS + x.pow(2).mean(dim=dims, keepdim=True).sqrt())


def _silu(x):
    return x * torch.sigmoid(x) / 0.596


def _sum(a, b, t):
    return ((1 - t) * a + t * b) / math.sqrt((1 - t) ** 2 + t ** 2)


def _cat(a, b, t):
    na, nb = a.shape[1], b.shape[1]
    scale = math.sqrt((na + nb) / ((1 - t) ** 2 + t ** 2))
    return torch.cat([a * (scale * (1 - t) / math.sqrt(na)), b * (scale * t / math.sqrt(nb))], dim=1)


class ReferenceEDM2:
    """D(x; σ) of an EDM2 Precond with the given keywords and state dict, in float64."""

    def __init__(self, kwargs, state):
        self.kw = dict(kwargs)
        self.w = {key: value.to(torch.float64) for key, value in state.items()}
        self.block_kw = dict(channels_per_head=64, res_balance=0.3, attn_balance=0.3, clip_act=256)
        self.block_kw.update({k: v for k, v in kwargs.items() if k in self.block_kw})

    def _weight(self, name, gain=1.0):
        w = self.w[name + '.weight']
        fan_in = w[0].numel()
        return _rms_normalized(w, list(range(1, w.ndim))) * (gain / math.sqrt(fan_in))

    def _linear(self, x, name, gain=1.0):
        return x @ self._weight(name, gain).T

    def _conv(self, x, name, gain=1.0):
        w = self._weight(name, gain)
        return F.conv2d(x, w, padding=w.shape[-1] // 2)

    def _has(self, name):
        return name + '.weight' in self.w

    def _attention(self, x, name):
        n, c, h, wd = x.shape
        heads = c // self.block_kw['channels_per_head']
        qkv = self._conv(x, name + '.attn_qkv').reshape(n, heads, c // heads, 3, h * wd)
        qkv = _rms_normalized(qkv, [2])
        q, k, v = qkv[:, :, :, 0], qkv[:, :, :, 1], qkv[:, :, :, 2]  # [n, heads, c_h, T]
        weights = torch.softmax(q.transpose(2, 3) @ k / math.sqrt(c // heads), dim=-1)  # [n, heads, Tq, Tk]
        out = v @ weights.transpose(2, 3)  # [n, heads, c_h, Tq]
        return self._conv(out.reshape(n, c, h, wd), name + '.attn_proj')

    def _block(self, x, emb, name, flavor, mode):
        if mode == 'down':
            x = F.avg_pool2d(x, 2)
        elif mode == 'up':
            x = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
        if flavor == 'enc':
            if self._has(name + '.conv_skip'):
                x = self._conv(x, name + '.conv_skip')
            x = _rms_normalized(x, [1])
        y = self._conv(_silu(x), name + '.conv_res0')
        scale = self._linear(emb, name + '.emb_linear', gain=float(self.w[name + '.emb_gain'])) + 1
        y = self._conv(_silu(y * scale[:, :, None, None]), name + '.conv_res1')
        if flavor == 'dec' and self._has(name + '.conv_skip'):
            x = self._conv(x, name + '.conv_skip')
        x = _sum(x, y, self.block_kw['res_balance'])
        if self._has(name + '.attn_qkv'):
            x = _sum(x, self._attention(x, name), self.block_kw['attn_balance'])
        return x.clamp(-self.block_kw['clip_act'], self.block_kw['clip_act'])

    def unet(self, x, c_noise, labels):
        kw = self.kw
        mults = kw.get('channel_mult', [1, 2, 3, 4])
        num_blocks = kw.get('num_blocks', 3)
        fourier = math.sqrt(2) * torch.cos(c_noise[:, None] * self.w['unet.emb_fourier.freqs']
                                           + self.w['unet.emb_fourier.phases'])
        emb = self._linear(fourier, 'unet.emb_noise')
        if labels is not None:
            emb = _sum(emb, self._linear(labels * math.sqrt(labels.shape[1]), 'unet.emb_label'),
                       kw.get('label_balance', 0.5))
        emb = _silu(emb)

        x = torch.cat([x, torch.ones_like(x[:, :1])], dim=1)
        skips = []
        for level in range(len(mults)):
            res = kw['img_resolution'] >> level
            if level == 0:
                x = self._conv(x, f'unet.enc.{res}x{res}_conv')
            else:
                x = self._block(x, emb, f'unet.enc.{res}x{res}_down', 'enc', 'down')
            skips.append(x)
            for idx in range(num_blocks):
                x = self._block(x, emb, f'unet.enc.{res}x{res}_block{idx}', 'enc', 'keep')
                skips.append(x)
        for level in reversed(range(len(mults))):
            res = kw['img_resolution'] >> level
            if level == len(mults) - 1:
                x = self._block(x, emb, f'unet.dec.{res}x{res}_in0', 'dec', 'keep')
                x = self._block(x, emb, f'unet.dec.{res}x{res}_in1', 'dec', 'keep')
            else:
                x = self._block(x, emb, f'unet.dec.{res}x{res}_up', 'dec', 'up')
            for idx in range(num_blocks + 1):
                x = _cat(x, skips.pop(), kw.get('concat_balance', 0.5))
                x = self._block(x, emb, f'unet.dec.{res}x{res}_block{idx}', 'dec', 'keep')
        return self._conv(x, 'unet.out_conv', gain=float(self.w['unet.out_gain']))

    def __call__(self, x, sigma, labels=None):
        """D(x; σ) and the log-variance, for x [N, C, H, W], σ [N] and one-hot labels [N, L] or None."""
        x = x.to(torch.float64)
        sigma = torch.as_tensor(sigma, dtype=torch.float64).reshape(-1)
        s = self.kw.get('sigma_data', 0.5)
        var = sigma ** 2 + s ** 2
        c_noise = sigma.log() / 4
        if self.kw['label_dim']:
            labels = torch.zeros(1, self.kw['label_dim'], dtype=torch.float64) if labels is None else labels.double()
        else:
            labels = None
        f = self.unet(x / var.sqrt()[:, None, None, None], c_noise, labels)
        denoised = (s ** 2 / var)[:, None, None, None] * x + (sigma * s / var.sqrt())[:, None, None, None] * f
        logvar_features = math.sqrt(2) * torch.cos(c_noise[:, None] * self.w['logvar_fourier.freqs']
                                                   + self.w['logvar_fourier.phases'])
        return denoised, self._linear(logvar_features, 'logvar_linear')


def expected_state_keys(kwargs):
    """The state-dict keys of an EDM2 Precond, in order, derived from the architecture's description (own
    parameters first, then the children in registration order): the layout a published pickle stores."""
    mults = kwargs.get('channel_mult', [1, 2, 3, 4])
    num_blocks = kwargs.get('num_blocks', 3)
    channels = [kwargs.get('model_channels', 192) * m for m in mults]
    attn = kwargs.get('attn_resolutions', [16, 8])
    per_head = kwargs.get('channels_per_head', 64)
    keys = ['unet.out_gain', 'unet.emb_fourier.freqs', 'unet.emb_fourier.phases', 'unet.emb_noise.weight']
    if kwargs['label_dim']:
        keys.append('unet.emb_label.weight')

    def block(name, cin, cout, attention):
        keys.extend(f'{name}.{part}' for part in ('emb_gain', 'conv_res0.weight', 'emb_linear.weight',
                                                  'conv_res1.weight'))
        if cin != cout:
            keys.append(f'{name}.conv_skip.weight')
        if attention and cout // per_head:
            keys.extend([f'{name}.attn_qkv.weight', f'{name}.attn_proj.weight'])

    skips, cout = [], None
    for level, width in enumerate(channels):
        res = kwargs['img_resolution'] >> level
        if level == 0:
            keys.append(f'unet.enc.{res}x{res}_conv.weight')
            cout = width
        else:
            block(f'unet.enc.{res}x{res}_down', cout, cout, False)
        skips.append(cout)
        for idx in range(num_blocks):
            block(f'unet.enc.{res}x{res}_block{idx}', cout, width, res in attn)
            cout = width
            skips.append(cout)
    for level in reversed(range(len(channels))):
        res = kwargs['img_resolution'] >> level
        if level == len(channels) - 1:
            block(f'unet.dec.{res}x{res}_in0', cout, cout, True)
            block(f'unet.dec.{res}x{res}_in1', cout, cout, False)
        else:
            block(f'unet.dec.{res}x{res}_up', cout, cout, False)
        for idx in range(num_blocks + 1):
            block(f'unet.dec.{res}x{res}_block{idx}', cout + skips.pop(), channels[level], res in attn)
            cout = channels[level]
    keys += ['unet.out_conv.weight', 'logvar_fourier.freqs', 'logvar_fourier.phases', 'logvar_linear.weight']
    return keys


def hashed_values(count, k, amplitude):
    """float32(amplitude·u) for elements i < count of entry k, u = h/2³¹ − 1 ∈ [−1, 1) with the integer hash
    h = (2654435761·i + 40503·(k + 1) + 12345) mod 2³²: exact integer arithmetic, the same on every machine."""
    i = torch.arange(count, dtype=torch.int64)
    h = (i * 2654435761 + (k + 1) * 40503 + 12345) % (1 << 32)
    return (amplitude * (h.to(torch.float64) / 2 ** 31 - 1)).to(torch.float32)


def formula_weights_(net):
    """The golden weights: state-dict entry k filled with hashed_values, amplitude 6 for `freqs`, 3 for `phases`,
    1 otherwise (gains included, so that no layer is switched off)."""
    with torch.no_grad():
        for k, (key, value) in enumerate(net.state_dict().items()):
            amplitude = 6.0 if key.endswith('freqs') else 3.0 if key.endswith('phases') else 1.0
            value.copy_(hashed_values(value.numel(), k, amplitude).reshape(value.shape))
    return net
