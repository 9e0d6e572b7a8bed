"""Building blocks shared by the model families (4DS, MooG, RVM) and their readout heads.

Everything here reproduces a specific behaviour of the original JAX/Flax code
(google-deepmind/representations4d); each docstring names the trap it avoids:

* :class:`Attention`: multi-head attention through :func:`scaled_dot_product_attention` with the
  original's two variants (4DS: biased q/k/v/out; MooG: bias-free q/k/v, RMS-normalised q and k).
* :func:`scaled_dot_product_attention`: ``F.scaled_dot_product_attention``, except for bfloat16
  inference on CPUs with AVX-512-BF16 but no AMX, where torch's flash kernel runs its GEMMs through
  MKL's ``cblas_gemm_bf16bf16f32`` at no more than the float32 rate; there the attention is
  computed with oneDNN bf16 GEMMs instead, about 1.4-1.7x faster (docs/performance.md).
* :class:`MLP`: ``Dense -> gelu(tanh) -> Dense`` (Flax ``nn.gelu`` is the tanh approximation).
* :func:`linear`: ``nn.Linear`` (+ tanh GELU), as one oneDNN matmul with the bias and GELU fused
  for bf16 CPU inference (:data:`CPU_BF16_FUSED_OPS`); :class:`Attention` and :class:`MLP` use it.
* :func:`fourier_features`: the ``[sin(x), sin(x + pi/2)]`` features of the MooG code and the
  tracking-query initialisers, laid out exactly as the original (basis-major, coordinate-minor).
* :func:`jax_resize` / :func:`resize_weights`: ``jax.image.resize`` semantics (Keys cubic kernel
  with ``a = -0.5``, half-pixel centres, out-of-range taps dropped and the rest renormalised,
  antialiasing when downsampling). ``torch.nn.functional.interpolate(mode="bicubic")`` differs
  (``a = -0.75``, clamped edges), which is why 4DS readout features need this routine.
* :func:`jax_linspace` / :func:`grid_fourier_features`: ``jax.numpy.linspace`` in float32, whose
  rounding the MooG position tables depend on, and the MooG Fourier table of an (h, w) grid.
* :func:`flax_same_padding`: Flax ``padding="SAME"`` puts the odd padding pixel at the end
  (bottom/right), which torch's symmetric ``padding=1`` does not.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# Flax's default LayerNorm / RMSNorm epsilon (torch's default is 1e-5).
FLAX_NORM_EPS = 1e-6


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """Flax ``nn.gelu``: the tanh approximation, not torch's default exact erf form."""
    return F.gelu(x, approximate="tanh")


# Set to False to send bfloat16 CPU attention to torch's SDPA too (its flash kernel keeps the logits
# in float32; the path below rounds them to bfloat16, as Flax and transformers' eager attention do).
CPU_BF16_ATTENTION = True

# Elements of one bfloat16 score block of :func:`_cpu_bf16_attention` (8 MiB): large enough that
# the GEMMs are large and the ops few (each is an OpenMP parallel region), small enough to stay in
# the L3 cache (4DS-B: one 1568 x 1568 block per head; MooG: 4 heads of 1024 x 1024). 2**21 and
# 2**22 measure the same; 2**23 and up lose 7-33% (benchmarks/attention_bf16.py, docs/performance.md).
CPU_BF16_SCORE_BLOCK = 1 << 22

# Below this many multiply-adds in q @ k^T (batch * heads * L * S * E) SDPA's single fused call is
# as fast: the explicit path's fixed cost (a few ops per block, ~0.1 ms) is not paid back. Measured
# crossover: 2 x 128 x 128 x 32 (1M) 0.8x, 2 x 256 x 256 x 32 (4M) 1.0-1.2x, 6 x 256 x 256 x 64 1.6x.
CPU_BF16_MIN_WORK = 1 << 22


@lru_cache(maxsize=1)
def _cpu_has_fast_bf16_gemm_only() -> bool:
    """Whether this CPU has AVX-512-BF16 (oneDNN's bf16 GEMMs run at twice the float32 rate) but no AMX.

    With AMX, torch's flash kernel packs its blocks for oneDNN's AMX micro-kernels and is fast; without
    AVX-512-BF16, oneDNN's bf16 GEMMs are no faster than MKL's, so SDPA is kept in both cases.
    """
    cpu = getattr(torch, "cpu", None)
    has_bf16 = getattr(cpu, "_is_avx512_bf16_supported", None)
    has_amx = getattr(cpu, "_is_amx_tile_supported", None)
    if has_bf16 is None or has_amx is None:  # a torch without these probes: keep SDPA
        return False
    return bool(has_bf16()) and not bool(has_amx())


# Set to False to keep torch's separate ops in bfloat16 CPU inference: ``F.linear`` then the bias /
# tanh-GELU, ``nn.RMSNorm`` of q and k (through float32 copies), q scaled inside the attention.
# With it True (the default) and :func:`use_cpu_bf16_fused_ops`, linears run as oneDNN matmuls with the
# bias and the GELU fused in, and q/k are RMS-normalised straight into the head-major layout the
# attention GEMMs read, with 1/sqrt(head_dim) folded into q's scale (docs/performance.md).
CPU_BF16_FUSED_OPS = True


def _is_plain_tensor(tensor: torch.Tensor | None) -> bool:
    """A dense strided tensor (or Parameter), not a subclass such as DTensor that oneDNN cannot read."""
    return tensor is None or (type(tensor) in (torch.Tensor, nn.Parameter) and tensor.layout == torch.strided)


@lru_cache(maxsize=None)
def _onednn_bf16_matmul() -> bool:
    """Whether this torch has oneDNN and oneDNN runs bf16 matmuls on this CPU (avx512bw/vl/dq),
    which ``mkldnn::_linear_pointwise`` needs (it raises otherwise)."""
    return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def _transformed() -> bool:
    """Whether the code runs under a tracer or transform the fused op has no rule for: torch.compile /
    export, ``torch.jit`` tracing or scripting, ``torch.func`` transforms (``jvp``, ``vmap``, ...)
    or forward-mode AD (``_linear_pointwise`` has no forward-AD formula: tangents would silently be
    zero). (``torch.fx`` symbolic tracing is caught earlier: its inputs are Proxies.)"""
    if torch.compiler.is_compiling() or torch.jit.is_tracing() or torch.jit.is_scripting():
        return True
    functorch_active = getattr(torch._C, "_are_functorch_transforms_active", None)
    if functorch_active is not None and functorch_active():
        return True
    return getattr(torch.autograd.forward_ad, "_current_level", -1) >= 0


def use_cpu_bf16_fused_ops(x: torch.Tensor, *params: torch.Tensor | None) -> bool:
    """Whether bfloat16 CPU inference on ``x`` with these weights takes the fused oneDNN ops.

    The same conditions as :func:`use_cpu_bf16_attention` (bfloat16 CPU tensors, autograd not
    recording through them, not while ``torch.compile`` traces, a CPU with AVX-512-BF16 and no
    AMX, the only kind measured), unless :data:`CPU_BF16_FUSED_OPS` is False; and plain tensors
    (FSDP2's unsharded weights are; DTensors are not). float32 never takes it.

    Args:
        x: the activation, any shape.
        params: the weights / biases the op reads (None for an absent bias).
    """
    if not CPU_BF16_FUSED_OPS or isinstance(x, torch.fx.Proxy):  # fx symbolic tracing: x is a Proxy
        return False
    if x.device.type != "cpu" or x.dtype != torch.bfloat16 or _transformed():  # the cheap checks first
        return False
    if not _onednn_bf16_matmul():
        return False
    if not all(p is None or (p.dtype == torch.bfloat16 and p.device.type == "cpu") for p in params):
        return False
    if not _is_plain_tensor(x) or not all(_is_plain_tensor(p) for p in params):
        return False
    if torch.is_grad_enabled() and (x.requires_grad or any(p is not None and p.requires_grad for p in params)):
        return False
    return _cpu_has_fast_bf16_gemm_only()


def _plain_linear(layer: nn.Module) -> bool:
    """An ``nn.Linear`` itself (no subclass or wrapper) whose call no forward hook observes or changes,
    so that computing ``F.linear`` of its weights directly is what calling it would do."""
    from torch.nn.modules import module as module_globals

    return (
        type(layer) is nn.Linear
        and not layer._forward_hooks
        and not layer._forward_pre_hooks
        and not module_globals._global_forward_hooks
        and not module_globals._global_forward_pre_hooks
    )


def linear(x: torch.Tensor, layer: nn.Linear, activation: str | None = None) -> torch.Tensor:
    """``layer(x)``, then ``gelu_tanh`` if ``activation == "gelu_tanh"``; fused for bf16 CPU inference.

    Where :func:`use_cpu_bf16_fused_ops` says so, one oneDNN matmul (``mkldnn::_linear_pointwise``)
    computes it with the bias and the GELU applied to the float32 accumulator as post-ops: one
    rounding to bfloat16 instead of two, and no separate passes over the output. torch's own bf16
    ``addmm`` first copies the broadcast bias into the output, and its tanh GELU is a slow
    element-wise kernel (about as long as the 512 -> 2048 GEMM before it).

    Args:
        x: (..., in_features).
        layer: the ``nn.Linear``.
        activation: None or ``"gelu_tanh"``.

    Returns:
        (..., out_features), ``x``'s dtype.
    """
    if activation not in (None, "gelu_tanh"):
        raise ValueError(f"unknown activation {activation!r}")
    if use_cpu_bf16_fused_ops(x, layer.weight, layer.bias) and _plain_linear(layer):
        if activation is None:
            return torch.ops.mkldnn._linear_pointwise(x, layer.weight, layer.bias, "none", [], "")
        return torch.ops.mkldnn._linear_pointwise(x, layer.weight, layer.bias, "gelu", [], "tanh")
    out = layer(x)
    return out if activation is None else gelu_tanh(out)


def rms_norm_heads_first(x: torch.Tensor, norm: nn.Module, scale: float = 1.0) -> torch.Tensor:
    """``scale * norm(x)`` of per-head vectors, written in the head-major layout the attention GEMMs read.

    The normalisation is ``norm``'s own (``nn.RMSNorm``: bit for bit what the unfused path
    computes); the multiply by ``scale`` and the move to the head-major layout are one pass into a
    new tensor, instead of the copy the batched GEMMs would make of the strided q / k and the
    scaling of every logit. Pass a power of two as ``scale`` (``1 / sqrt(64)``), where the product
    is exact, so that the logits equal those of the unfused path.

    Args:
        x: (B, L, heads, head_dim).
        norm: the per-head norm (``nn.RMSNorm(head_dim)``).
        scale: factor on the output.

    Returns:
        (B, heads, L, head_dim), contiguous, ``x``'s dtype.
    """
    normed = norm(x)
    out = torch.empty(normed.shape[0], normed.shape[2], normed.shape[1], normed.shape[3], dtype=normed.dtype, device=normed.device)
    if scale == 1.0:
        out.transpose(1, 2).copy_(normed)
    else:
        torch.mul(normed, scale, out=out.transpose(1, 2))
    return out


def use_cpu_bf16_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, dropout_p: float = 0.0) -> bool:
    """Whether :func:`scaled_dot_product_attention` takes the oneDNN bf16 path for these inputs.

    Only for inference: bfloat16 CPU tensors, no dropout, autograd not recording through them
    (``torch.no_grad()`` / ``torch.inference_mode()``, or inputs that do not require grad), not
    while ``torch.compile`` traces, on a CPU with AVX-512-BF16 and without AMX, and for at least
    :data:`CPU_BF16_MIN_WORK` multiply-adds in ``q @ k^T``, unless :data:`CPU_BF16_ATTENTION` is False.
    Everything else (float32, CUDA, training) goes to ``F.scaled_dot_product_attention`` unchanged.
    """
    if not CPU_BF16_ATTENTION or query.device.type != "cpu":
        return False
    if not query.dtype == key.dtype == value.dtype == torch.bfloat16:
        return False
    if dropout_p or torch.compiler.is_compiling():
        return False
    if torch.is_grad_enabled() and (query.requires_grad or key.requires_grad or value.requires_grad):
        return False
    if query.ndim < 3 or not query.shape[:-2] == key.shape[:-2] == value.shape[:-2]:
        return False  # broadcast batch axes, or shapes SDPA will report on
    if key.shape[-2] != value.shape[-2] or key.shape[-1] != query.shape[-1] or query.numel() == 0:
        return False
    if query.numel() * key.shape[-2] < CPU_BF16_MIN_WORK:
        return False
    return _cpu_has_fast_bf16_gemm_only()


def _cpu_bf16_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float | None = None
) -> torch.Tensor:
    """Softmax attention from oneDNN bf16 GEMMs, one block of scores at a time (inference only).

    For each group of heads and chunk of queries: ``scores = scale * q @ k^T`` (``baddbmm``, fp32
    accumulation inside oneDNN, rounded once to bf16), an in-place softmax (computed in fp32 by
    torch, stored in bf16) and ``p @ v``; the score block holds at most
    :data:`CPU_BF16_SCORE_BLOCK` entries. The logits are thus rounded to bf16 before the softmax,
    as in Flax's ``nn.dot_product_attention`` and transformers' eager attention in bf16; SDPA's
    flash kernel keeps them in fp32. On random inputs the mean error against float32 is 1.4-2.2x
    that of bf16 SDPA (docs/performance.md).

    Args:
        query: (..., L, E) bfloat16.
        key: (..., S, E) bfloat16, the same leading axes.
        value: (..., S, Ev) bfloat16.
        scale: the logits' factor; None: ``1 / sqrt(E)``.

    Returns:
        (..., L, Ev) bfloat16, contiguous.
    """
    *batch, num_queries, head_dim = query.shape
    num_keys, value_dim = key.shape[-2], value.shape[-1]
    q = query.reshape(-1, num_queries, head_dim)
    k_t = key.reshape(-1, num_keys, head_dim).transpose(1, 2)
    v = value.reshape(-1, num_keys, value_dim)
    out = torch.empty(q.shape[0], num_queries, value_dim, dtype=query.dtype, device=query.device)
    blocks = cpu_bf16_score_blocks(q.shape[0], num_queries, num_keys)
    largest = max((h1 - h0) * (q1 - q0) for h0, h1, q0, q1 in blocks)
    buffer = torch.empty(largest * num_keys, dtype=query.dtype, device=query.device)
    scale = head_dim**-0.5 if scale is None else scale
    for h0, h1, q0, q1 in blocks:
        scores = buffer[: (h1 - h0) * (q1 - q0) * num_keys].view(h1 - h0, q1 - q0, num_keys)
        # beta=0: the buffer's previous contents are ignored (not even NaN propagates).
        torch.baddbmm(scores, q[h0:h1, q0:q1], k_t[h0:h1], beta=0.0, alpha=scale, out=scores)
        torch.softmax(scores, dim=-1, out=scores)
        torch.bmm(scores, v[h0:h1], out=out[h0:h1, q0:q1])
    return out.view(*batch, num_queries, value_dim)


def cpu_bf16_score_blocks(heads: int, num_queries: int, num_keys: int) -> list[tuple[int, int, int, int]]:
    """The ``(h0, h1, q0, q1)`` score blocks :func:`_cpu_bf16_attention` walks, in order.

    Each holds at most :data:`CPU_BF16_SCORE_BLOCK` scores (or one query row): whole heads, as
    many as fit, when a head fits; otherwise one head at a time, its queries in equal chunks.
    """
    rows = max(1, CPU_BF16_SCORE_BLOCK // num_keys)  # (head, query) rows per block
    if rows >= num_queries:
        group, chunk = max(1, min(heads, rows // num_queries)), num_queries
    else:
        group, chunk = 1, -(-num_queries // -(-num_queries // rows))
    return [
        (h0, min(h0 + group, heads), q0, min(q0 + chunk, num_queries))
        for h0 in range(0, heads, group)
        for q0 in range(0, num_queries, chunk)
    ]


def scaled_dot_product_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, dropout_p: float = 0.0, scale: float | None = None
) -> torch.Tensor:
    """``F.scaled_dot_product_attention`` (no mask), faster for bf16 CPU inference.

    Where :func:`use_cpu_bf16_attention` says so (bfloat16 inference on a CPU with AVX-512-BF16
    and no AMX), the attention is computed by :func:`_cpu_bf16_attention` from oneDNN bf16 GEMMs:
    torch's CPU flash kernel calls MKL's bf16 GEMM there, which runs no faster than float32. In
    every other case, float32 included, this is exactly ``F.scaled_dot_product_attention``.

    Args:
        query: (..., L, E)
        key: (..., S, E)
        value: (..., S, Ev)
        dropout_p: attention-probability dropout (training only; disables the bf16 CPU path).
        scale: the logits' factor; None (the default): ``1 / sqrt(E)``.

    Returns:
        (..., L, Ev)
    """
    if use_cpu_bf16_attention(query, key, value, dropout_p):
        return _cpu_bf16_attention(query, key, value, scale)
    if scale is None:  # the call as before, so that nothing changes for existing callers
        return F.scaled_dot_product_attention(query, key, value, dropout_p=dropout_p)
    return F.scaled_dot_product_attention(query, key, value, dropout_p=dropout_p, scale=scale)


def multi_head_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, num_heads: int, dropout_p: float = 0.0
) -> torch.Tensor:
    """Scaled dot-product attention over already projected, head-merged tensors.

    The softmax is over keys and the logits are ``(q / sqrt(head_dim)) . k`` as in the original.

    Args:
        query: (B, Q, num_heads * head_dim)
        key: (B, K, num_heads * head_dim)
        value: (B, K, num_heads * head_dim_v)
        num_heads: number of heads to split the last axis into.
        dropout_p: attention-probability dropout (training only).

    Returns:
        (B, Q, num_heads * head_dim_v)
    """
    batch, num_queries, _ = query.shape
    q = query.unflatten(-1, (num_heads, -1)).transpose(1, 2)
    k = key.unflatten(-1, (num_heads, -1)).transpose(1, 2)
    v = value.unflatten(-1, (num_heads, -1)).transpose(1, 2)
    out = scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
    return out.transpose(1, 2).reshape(batch, num_queries, -1)


class Attention(nn.Module):
    """Multi-head (self- or cross-) attention of both model families.

    Args:
        query_dim: width of the query stream (and of the output).
        num_heads: number of heads.
        head_dim: per-head width of q, k and v.
        context_dim: width of the key/value stream; defaults to ``query_dim`` (self-attention).
        qkv_bias: whether q, k, v projections have a bias (4DS: yes, MooG: no).
        qk_norm: RMS-normalise q and k per head (MooG), with a learned scale of size ``head_dim``.
        qk_norm_eps: epsilon of that RMSNorm (Flax default 1e-6).
        dropout: attention-probability dropout.

    Shapes:
        ``hidden_states`` (B, N, query_dim), ``context`` (B, M, context_dim) -> (B, N, query_dim).
    """

    def __init__(
        self,
        query_dim: int,
        num_heads: int,
        head_dim: int,
        context_dim: int | None = None,
        qkv_bias: bool = True,
        qk_norm: bool = False,
        qk_norm_eps: float = FLAX_NORM_EPS,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        context_dim = query_dim if context_dim is None else context_dim
        inner_dim = num_heads * head_dim
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.dropout = dropout
        self.q_proj = nn.Linear(query_dim, inner_dim, bias=qkv_bias)
        self.k_proj = nn.Linear(context_dim, inner_dim, bias=qkv_bias)
        self.v_proj = nn.Linear(context_dim, inner_dim, bias=qkv_bias)
        self.out_proj = nn.Linear(inner_dim, query_dim, bias=True)
        if qk_norm:
            self.q_norm = nn.RMSNorm(head_dim, eps=qk_norm_eps)
            self.k_norm = nn.RMSNorm(head_dim, eps=qk_norm_eps)
        else:
            self.q_norm = self.k_norm = None

    def forward(self, hidden_states: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        context = hidden_states if context is None else context
        batch, num_queries, _ = hidden_states.shape
        # linear(): each projection is one fused oneDNN matmul in bf16 CPU inference, else the layer's call.
        q = linear(hidden_states, self.q_proj).unflatten(-1, (self.num_heads, self.head_dim))
        k = linear(context, self.k_proj).unflatten(-1, (self.num_heads, self.head_dim))
        v = linear(context, self.v_proj).unflatten(-1, (self.num_heads, self.head_dim))
        scale = None
        if self.q_norm is not None and self._fused_inference(hidden_states, context):
            # q / k normalised straight into the head-major layout the attention GEMMs read, with
            # 1 / sqrt(head_dim) in q's copy where that is exact (a power of two: 64 -> 1/8).
            exact = math.frexp(self.head_dim**-0.5)[0] == 0.5
            q = rms_norm_heads_first(q, self.q_norm, scale=self.head_dim**-0.5 if exact else 1.0)
            k = rms_norm_heads_first(k, self.k_norm)
            scale = 1.0 if exact else None
        else:
            if self.q_norm is not None:
                q, k = self.q_norm(q), self.k_norm(k)
            q, k = q.transpose(1, 2), k.transpose(1, 2)
        out = scaled_dot_product_attention(
            q, k, v.transpose(1, 2), dropout_p=self.dropout if self.training else 0.0, scale=scale
        )
        return linear(out.transpose(1, 2).reshape(batch, num_queries, -1), self.out_proj)

    def _fused_inference(self, hidden_states: torch.Tensor, context: torch.Tensor) -> bool:
        """Whether :meth:`forward` takes the fused bf16 path whole: bf16 CPU inference, plain ``nn.Linear`` /
        ``nn.RMSNorm`` submodules (no hooks, no substitutes), no dropout to apply,
        :func:`use_cpu_bf16_fused_ops`."""
        if (self.training and self.dropout > 0) or not use_cpu_bf16_fused_ops(hidden_states):
            return False  # the cheap checks first: float32 and CUDA calls pay nothing more
        projections = (self.q_proj, self.k_proj, self.v_proj, self.out_proj)
        norms = () if self.q_norm is None else (self.q_norm, self.k_norm)
        if not all(_plain_linear(p) for p in projections):
            return False
        if not all(type(n) is nn.RMSNorm and not (n._forward_hooks or n._forward_pre_hooks) for n in norms):
            return False
        params = [t for p in projections for t in (p.weight, p.bias)] + [n.weight for n in norms]
        return use_cpu_bf16_fused_ops(hidden_states, *params) and use_cpu_bf16_fused_ops(context)


class MLP(nn.Module):
    """``Dense(hidden) -> gelu(tanh) -> Dense(out)``, both with bias.

    Shapes: (..., in_dim) -> (..., out_dim or in_dim).
    """

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int | None = None) -> None:
        super().__init__()
        self.fc_in = nn.Linear(in_dim, hidden_dim)
        self.fc_out = nn.Linear(hidden_dim, in_dim if out_dim is None else out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # linear(): the bias and the GELU fused into the first matmul for bf16 CPU inference.
        return linear(linear(x, self.fc_in, "gelu_tanh"), self.fc_out)


def fourier_features(coords: torch.Tensor, num_bases: int) -> torch.Tensor:
    """Fourier features of coordinates, as the original ``_convert_to_fourier_features(coords * pi)``.

    Feature ``[i * D + d]`` is ``sin(pi * 2**i * coords[d])`` and feature ``[num_bases * D + i * D + d]``
    is ``sin(pi * 2**i * coords[d] + pi / 2)`` (a cosine computed the original's way, so that values
    agree to the last bit where it matters).

    Args:
        coords: (..., D) coordinates (MooG grids: in [-1, 1]; tracking queries: in [0, 1]).
        num_bases: number of octaves.

    Returns:
        (..., 2 * num_bases * D)
    """
    x = coords * math.pi
    # Multiplying by a power of two is exact in float, so this equals the original's matmul
    # with a block-diagonal frequency basis, in its (basis, coordinate) order.
    scales = (2.0 ** torch.arange(num_bases, device=coords.device)).to(coords.dtype)
    x = (x.unsqueeze(-2) * scales.unsqueeze(-1)).flatten(-2)
    return torch.sin(torch.cat([x, x + 0.5 * math.pi], dim=-1))


def jax_linspace(start: float, stop: float, num: int) -> torch.Tensor:
    """``jax.numpy.linspace(start, stop, num)`` in float32, as XLA's CPU backend evaluates it.

    jax's source computes ``start * (1 - s) + stop * s`` with ``s = iota / (num - 1)`` and appends
    ``stop``. XLA compiles that differently from how it reads: the division by the constant becomes
    a multiplication by the float32 reciprocal ``r``, ``stop * s`` is re-associated to
    ``iota * (stop * r)``, and the final multiply-add is fused (one rounding). ``torch.linspace``
    rounds differently in the last bit, and Fourier features at ``2**19 * pi`` amplify that bit
    (architecture.md section 5). This reproduces jax 0.10's CPU output bit for bit for every
    ``num`` up to 352 (checked against ``jnp.linspace``); above that, XLA's vectorised code rounds
    some entries differently again, which is why parity tests inject the reference's exact tables.

    Returns:
        (num,) float32 tensor.
    """
    if num < 1:
        raise ValueError(f"jax_linspace needs num >= 1, got {num}")
    start_t = torch.tensor(start, dtype=torch.float32)
    stop_t = torch.tensor(stop, dtype=torch.float32)
    if num == 1:
        return start_t.reshape(1)
    reciprocal = 1 / torch.tensor(num - 1, dtype=torch.float32)
    iota = torch.arange(num - 1, dtype=torch.float32)
    start_term = start_t * (1 - iota * reciprocal)
    # Fused multiply-add: the float32 product is exact in float64, so one float64 add then one
    # rounding to float32 gives the fused result.
    fused = iota.double() * (stop_t * reciprocal).double() + start_term.double()
    return torch.cat([fused.float(), stop_t.reshape(1)])


def grid_fourier_features(height: int, width: int, num_bases: int) -> torch.Tensor:
    """Fourier features of an (height, width) grid, the MooG ``FourierEmbedding`` table.

    Coordinates are ``jax.numpy.linspace(-1, 1, n)`` per axis, stacked (row, column) with ``ij``
    indexing, then :func:`fourier_features`. Computed in float32 on the CPU.

    Returns:
        (height, width, 4 * num_bases) float32.
    """
    rows, cols = jax_linspace(-1.0, 1.0, height), jax_linspace(-1.0, 1.0, width)
    coords = torch.stack(torch.meshgrid(rows, cols, indexing="ij"), dim=-1)
    return fourier_features(coords, num_bases)


def flax_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of Flax/TF ``"SAME"``: output ``ceil(size / stride)``, extra pixel after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _keys_cubic(x: np.ndarray) -> np.ndarray:
    """Keys cubic convolution kernel with a = -0.5 (jax's ``ResizeMethod.CUBIC``)."""
    out = ((1.5 * x - 2.5) * x) * x + 1.0
    out = np.where(x >= 1.0, ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0, out)
    return np.where(x >= 2.0, 0.0, out)


@lru_cache(maxsize=256)
def _resize_weights_np(input_size: int, output_size: int, antialias: bool) -> np.ndarray:
    scale = output_size / input_size
    inv_scale = 1.0 / scale
    kernel_scale = max(inv_scale, 1.0) if antialias else 1.0
    sample = (np.arange(output_size, dtype=np.float64) + 0.5) * inv_scale - 0.5
    x = np.abs(sample[None, :] - np.arange(input_size, dtype=np.float64)[:, None]) / kernel_scale
    weights = _keys_cubic(x)
    total = weights.sum(axis=0, keepdims=True)
    weights = np.where(np.abs(total) > 1000.0 * np.finfo(np.float32).eps, weights / np.where(total != 0, total, 1), 0.0)
    inside = (sample >= -0.5) & (sample <= input_size - 0.5)
    weights = np.where(inside[None, :], weights, 0.0)
    return weights.T.astype(np.float32)  # (output_size, input_size)


def resize_weights(input_size: int, output_size: int, antialias: bool = True) -> torch.Tensor:
    """The (output_size, input_size) matrix that ``jax.image.resize(..., "cubic")`` applies on one axis."""
    if input_size < 1 or output_size < 1:
        raise ValueError(f"resize sizes must be positive, got {input_size} -> {output_size}")
    return torch.from_numpy(_resize_weights_np(int(input_size), int(output_size), bool(antialias)))


def jax_resize(x: torch.Tensor, sizes: dict[int, int], antialias: bool = True) -> torch.Tensor:
    """Cubic resize of the given axes with ``jax.image.resize`` semantics (separable, axis by axis).

    Axes whose size does not change are left untouched (jax skips them too: identity).

    Args:
        x: any tensor.
        sizes: ``{axis: new_size}``.
        antialias: jax's default ``True`` widens the kernel when downsampling.
    """
    for axis, size in sizes.items():
        axis = axis % x.ndim
        if x.shape[axis] == size:
            continue
        weights = resize_weights(x.shape[axis], size, antialias).to(device=x.device, dtype=x.dtype)
        x = torch.movedim(torch.tensordot(x, weights, dims=([axis], [1])), -1, axis)
    return x


def check_sequence(name: str, values: Sequence[int], length: int) -> tuple[int, ...]:
    """Validate a config field that must be ``length`` positive integers; returns a tuple."""
    values = tuple(values)
    if len(values) != length or not all(isinstance(v, int) and v > 0 for v in values):
        raise ValueError(f"{name} must be {length} positive integers, got {list(values)}")
    return values


def check_video(pixel_values_videos: torch.Tensor, patch_size: Sequence[int] | None, num_channels: int = 3) -> None:
    """Raise a clear error unless the input is a (B, T, C, H, W) float video in [0, 1].

    ``patch_size`` (t, h, w), when given, must divide T, H and W. Value checks (NaN, range) are
    skipped on the meta device and while compiling.
    """
    if not isinstance(pixel_values_videos, torch.Tensor):
        raise TypeError(f"pixel_values_videos must be a torch.Tensor, got {type(pixel_values_videos).__name__}")
    shape = tuple(pixel_values_videos.shape)
    if pixel_values_videos.ndim != 5:
        hint = " (add a batch axis with .unsqueeze(0))" if pixel_values_videos.ndim == 4 else ""
        raise ValueError(f"pixel_values_videos must have shape (B, T, C, H, W), got {shape}{hint}")
    if shape[2] != num_channels:
        hint = "; it looks channels-last: use .permute(0, 1, 4, 2, 3)" if shape[-1] == num_channels else ""
        raise ValueError(f"pixel_values_videos must have {num_channels} channels on axis 2, got shape {shape}{hint}")
    if not pixel_values_videos.is_floating_point():
        raise TypeError(
            f"pixel_values_videos must be a float tensor in [0, 1], got {pixel_values_videos.dtype}; "
            "convert uint8 frames with video.float() / 255"
        )
    if patch_size is not None:
        for size, patch, name in zip((shape[1], shape[3], shape[4]), patch_size, ("frames", "height", "width")):
            if size % patch or size == 0:
                raise ValueError(
                    f"pixel_values_videos {name} ({size}) must be a positive multiple of the patch size {patch}; "
                    f"got shape {shape}"
                )
    if pixel_values_videos.numel() == 0:
        raise ValueError(f"pixel_values_videos is empty (shape {shape}); pass at least one frame of at least one pixel")
    if pixel_values_videos.device.type == "meta" or torch.compiler.is_compiling():
        return
    # One pass and one host sync: aminmax propagates NaN (both become NaN) and shows an infinity.
    low, high = torch.stack(pixel_values_videos.aminmax()).tolist()
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError("pixel_values_videos contains NaN or infinite values")
    if low < -1e-3 or high > 1 + 1e-3:
        raise ValueError(
            f"pixel_values_videos must be in [0, 1] (got values in [{low:.3g}, {high:.3g}]); "
            "fourd_hub models take raw RGB scaled to [0, 1], without mean/std normalisation"
        )
