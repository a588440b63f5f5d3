"""Attention weights of the EDM UNet blocks as an autograd Function (docs/networks.md, 'Attention').

Not a Module and never pickled: it stores nothing, so it is not a persistent class.
"""

import numpy as np
import torch


class AttentionOp(torch.autograd.Function):
    """w = softmax_k(qᵀ·(k/√c)) for q, k of shape [n, c, T]; returns [n, T(q), T(k)] in q's dtype."""

    @staticmethod
    def forward(ctx, q, k):
        # k/√c in k's dtype BEFORE the product, then logits and softmax in f32 (docs/networks.md, 'Attention scaling
        # before the product').
        k_scaled = k / np.sqrt(k.shape[1])
        w = torch.einsum('ncq,nck->nqk', q.to(torch.float32), k_scaled.to(torch.float32)).softmax(dim=2).to(q.dtype)
        ctx.save_for_backward(q, k, w)
        return w

    @staticmethod
    def backward(ctx, dw):
        q, k, w = ctx.saved_tensors
        db = torch._softmax_backward_data(dw.to(torch.float32), w.to(torch.float32), 2, torch.float32)
        dq = torch.einsum('nck,nqk->ncq', k.to(torch.float32), db).to(q.dtype) / np.sqrt(k.shape[1])
        dk = torch.einsum('ncq,nqk->nck', q.to(torch.float32), db).to(k.dtype) / np.sqrt(k.shape[1])
        return dq, dk
