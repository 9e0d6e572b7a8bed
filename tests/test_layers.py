"""Shared layers: attention variants, MLP, Fourier features, jax-compatible resize and linspace."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fourd_hub import layers
from fourd_hub.layers import MLP, Attention, fourier_features, jax_linspace, jax_resize, resize_weights


def naive_attention(module: Attention, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """Attention written out with einsum, as the original computes it."""
    h, d = module.num_heads, module.head_dim
    q = module.q_proj(x).unflatten(-1, (h, d))
    k = module.k_proj(context).unflatten(-1, (h, d))
    v = module.v_proj(context).unflatten(-1, (h, d))
    if module.q_norm is not None:
        q = q * torch.rsqrt(q.pow(2).mean(-1, keepdim=True) + 1e-6) * module.q_norm.weight
        k = k * torch.rsqrt(k.pow(2).mean(-1, keepdim=True) + 1e-6) * module.k_norm.weight
    logits = torch.einsum("bqhd,bkhd->bhqk", q / math.sqrt(d), k)
    out = torch.einsum("bhqk,bkhd->bqhd", logits.softmax(-1), v).flatten(-2)
    return module.out_proj(out)


@pytest.mark.parametrize("qkv_bias, qk_norm", [(True, False), (False, True)])
def test_attention_variants_match_naive_formula(qkv_bias, qk_norm):
    torch.manual_seed(0)
    module = Attention(12, num_heads=3, head_dim=5, context_dim=7, qkv_bias=qkv_bias, qk_norm=qk_norm)
    if qk_norm:
        module.q_norm.weight.data.uniform_(0.5, 1.5)
        module.k_norm.weight.data.uniform_(0.5, 1.5)
    x, context = torch.randn(2, 6, 12), torch.randn(2, 9, 7)
    torch.testing.assert_close(module(x, context), naive_attention(module, x, context), atol=1e-5, rtol=1e-5)
    assert (module.q_proj.bias is not None) == qkv_bias
    names = {n for n, _ in module.named_parameters()}
    assert ("q_norm.weight" in names) == qk_norm


def test_mlp_uses_tanh_gelu():
    torch.manual_seed(0)
    mlp = MLP(4, 8, 3)
    x = torch.randn(5, 4)
    h = mlp.fc_in(x)
    tanh_gelu = 0.5 * h * (1 + torch.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h**3)))
    torch.testing.assert_close(mlp(x), mlp.fc_out(tanh_gelu))
    assert not torch.allclose(mlp(x), mlp.fc_out(torch.nn.functional.gelu(h)), atol=1e-7)


def test_fourier_features_layout():
    coords = torch.tensor([[0.25, -0.5]])
    features = fourier_features(coords, num_bases=3)
    assert features.shape == (1, 12)
    # sin part: basis-major, coordinate-minor; then the shifted-sine part in the same order.
    for i in range(3):
        for d in range(2):
            x = math.pi * 2**i * coords[0, d].item()
            assert features[0, i * 2 + d].item() == pytest.approx(math.sin(x), abs=1e-6)
            assert features[0, 6 + i * 2 + d].item() == pytest.approx(math.cos(x), abs=1e-6)


def test_resize_is_identity_at_same_size():
    x = torch.randn(2, 5, 7)
    assert torch.equal(jax_resize(x, {1: 5}), x)


def test_resize_weights_follow_keys_kernel():
    # Upsampling 4 -> 8 with half-pixel centres: output 2 samples input position 0.75, whose
    # Keys (a = -0.5) taps at distances 1.75, 0.75, 0.25, 1.25 are computed here by hand.
    def keys(x):
        x = abs(x)
        if x < 1:
            return 1.5 * x**3 - 2.5 * x**2 + 1
        if x < 2:
            return -0.5 * x**3 + 2.5 * x**2 - 4 * x + 2
        return 0.0

    weights = resize_weights(4, 8)
    assert weights.shape == (8, 4)
    expected = [keys(0.75 - j) for j in range(4)]
    np.testing.assert_allclose(weights[2].numpy(), np.array(expected) / sum(expected), atol=1e-6)
    # At the border the tap at -1 falls outside: it is dropped and the rest renormalised.
    border = [keys(-0.25 - j) for j in range(4)]
    np.testing.assert_allclose(weights[0].numpy(), np.array(border) / sum(border), atol=1e-6)
    torch.testing.assert_close(weights.sum(1), torch.ones(8))


def test_resize_differs_from_torch_bicubic():
    x = torch.randn(1, 1, 4, 1)
    ours = jax_resize(x, {2: 8})
    torch_bicubic = torch.nn.functional.interpolate(x, size=(8, 1), mode="bicubic", align_corners=False)
    assert not torch.allclose(ours, torch_bicubic, atol=1e-4)


def test_resize_rejects_bad_sizes():
    with pytest.raises(ValueError, match="positive"):
        resize_weights(0, 4)


def test_jax_linspace_is_a_float32_linspace():
    for n in (1, 2, 7, 32, 129):
        values = jax_linspace(-1.0, 1.0, n)
        assert values.dtype == torch.float32 and values.shape == (n,)
        assert values[0].item() == -1.0
        if n > 1:
            assert values[-1].item() == 1.0
            np.testing.assert_allclose(values.numpy(), np.linspace(-1, 1, n), atol=2e-7)
    with pytest.raises(ValueError):
        jax_linspace(0.0, 1.0, 0)


# ----------------------------------------------------------------------------------------------
# The bf16 CPU attention path (oneDNN GEMMs instead of SDPA's flash kernel; docs/performance.md)


def softmax_attention_float64(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v written out in float64: (..., L, d), (..., S, d), (..., S, e)."""
    q, k, v = q.double(), k.double(), v.double()
    logits = torch.einsum("...ld,...sd->...ls", q, k) / math.sqrt(q.shape[-1])
    return torch.einsum("...ls,...se->...le", logits.softmax(-1), v)


@pytest.fixture
def bf16_path_on(monkeypatch):
    """Pretend this CPU has AVX-512-BF16 without AMX, so that the path is taken on any CPU."""
    monkeypatch.setattr(layers, "_cpu_has_fast_bf16_gemm_only", lambda: True)


@pytest.mark.parametrize("block", [9000, 2 * 160 * 160 + 5, 1 << 21])
def test_bf16_cpu_attention_matches_the_formula(monkeypatch, block):
    # Blocks of 54 query rows of one head (3 chunks, the last of 52 rows); of 2 whole heads (3
    # groups, the last of 1 head); of all 5 heads: each walk must give the same attention.
    monkeypatch.setattr(layers, "CPU_BF16_SCORE_BLOCK", block)
    generator = torch.Generator().manual_seed(0)
    q, k = (torch.randn(1, 5, 160, 16, generator=generator).bfloat16() for _ in range(2))
    v = torch.randn(1, 5, 160, 24, generator=generator).bfloat16()
    with torch.inference_mode():
        out = layers._cpu_bf16_attention(q, k, v)
    assert out.dtype == torch.bfloat16 and out.shape == (1, 5, 160, 24)
    expected = softmax_attention_float64(q, k, v)
    # bf16 logits and probabilities: a few bf16 ulps of the (|x| < 1.5) outputs.
    torch.testing.assert_close(out.double(), expected, atol=2e-2, rtol=2e-2)
    assert (out.double() - expected).abs().mean() < 2e-3


def test_bf16_score_blocks_tile_every_head_and_query_once(monkeypatch):
    monkeypatch.setattr(layers, "CPU_BF16_SCORE_BLOCK", 9000)
    # 9000 // 160 = 56 rows per block < 160 queries: one head at a time, 3 equal chunks of 54 (52).
    assert layers.cpu_bf16_score_blocks(2, 160, 160) == [
        (0, 1, 0, 54), (0, 1, 54, 108), (0, 1, 108, 160), (1, 2, 0, 54), (1, 2, 54, 108), (1, 2, 108, 160),
    ]
    # 9000 // 30 = 300 rows = 3 heads x 100 queries: groups of 3 heads, the last of 2.
    assert layers.cpu_bf16_score_blocks(5, 100, 30) == [(0, 3, 0, 100), (3, 5, 0, 100)]
    # A key row longer than the block: one query row at a time.
    assert layers.cpu_bf16_score_blocks(1, 3, 20000) == [(0, 1, 0, 1), (0, 1, 1, 2), (0, 1, 2, 3)]


def test_sdpa_wrapper_takes_the_bf16_path_for_inference_only(bf16_path_on):
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 160, 32, generator=generator) for _ in range(3))
    qb, kb, vb = q.bfloat16(), k.bfloat16(), v.bfloat16()
    assert layers.use_cpu_bf16_attention(qb, kb, vb)
    with torch.inference_mode():
        fast = layers.scaled_dot_product_attention(qb, kb, vb)
        sdpa = F.scaled_dot_product_attention(qb, kb, vb)
    torch.testing.assert_close(fast.double(), softmax_attention_float64(qb, kb, vb), atol=2e-2, rtol=2e-2)
    assert not torch.equal(fast, sdpa)  # really the other path (SDPA keeps float32 logits)

    # float32: exactly SDPA (bit for bit), whatever the CPU.
    assert not layers.use_cpu_bf16_attention(q, k, v)
    assert torch.equal(layers.scaled_dot_product_attention(q, k, v), F.scaled_dot_product_attention(q, k, v))
    # dropout, too little work (6 x 64 x 64 x 32 multiply-adds), broadcast batch axes: SDPA.
    assert not layers.use_cpu_bf16_attention(qb, kb, vb, dropout_p=0.1)
    assert not layers.use_cpu_bf16_attention(qb[:, :, :64], kb[:, :, :64], vb[:, :, :64])
    assert not layers.use_cpu_bf16_attention(qb, kb[:1], vb[:1])
    # Switched off: SDPA, bit for bit.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(layers, "CPU_BF16_ATTENTION", False)
        with torch.inference_mode():
            assert torch.equal(layers.scaled_dot_product_attention(qb, kb, vb), sdpa)

    # Training: inputs that require grad go to SDPA, and the backward pass works.
    leaf = qb.clone().requires_grad_()
    assert not layers.use_cpu_bf16_attention(leaf, kb, vb)
    out = layers.scaled_dot_product_attention(leaf, kb, vb)
    assert torch.equal(out.detach(), sdpa)
    out.float().sum().backward()
    assert leaf.grad is not None and leaf.grad.dtype == torch.bfloat16 and torch.isfinite(leaf.grad).all()


@pytest.mark.parametrize("qkv_bias, qk_norm", [(True, False), (False, True)])
def test_attention_module_in_bf16_inference_matches_naive_formula(bf16_path_on, qkv_bias, qk_norm):
    torch.manual_seed(0)
    module = Attention(16, num_heads=2, head_dim=32, context_dim=12, qkv_bias=qkv_bias, qk_norm=qk_norm).eval()
    x, context = torch.randn(2, 200, 16), torch.randn(2, 180, 12)
    with torch.no_grad():
        expected = naive_attention(module, x, context)
        module.bfloat16()
        out = module(x.bfloat16(), context.bfloat16())
    assert layers.use_cpu_bf16_attention(*(torch.empty(2, 2, n, 32, dtype=torch.bfloat16) for n in (200, 180, 180)))
    assert out.dtype == torch.bfloat16 and out.shape == (2, 200, 16)
    torch.testing.assert_close(out.float(), expected, atol=5e-2, rtol=5e-2)


# ----------------------------------------------------------------------------------------------
# Fused oneDNN ops for bf16 CPU inference (linear + bias + GELU, q/k norm into head-major layout)


# The fused ops need oneDNN's bf16 matmul (avx512bw/vl/dq); on other CPUs the gate is off (tested below).
requires_onednn_bf16 = pytest.mark.skipif(
    not layers._onednn_bf16_matmul(), reason="oneDNN runs no bf16 matmul on this CPU, so the fused path never runs here"
)


@requires_onednn_bf16
def test_fused_ops_gate_is_bf16_cpu_inference_only(bf16_path_on):
    x, w = torch.randn(4, 8).bfloat16(), torch.nn.Parameter(torch.randn(3, 8).bfloat16())
    assert not layers.use_cpu_bf16_fused_ops(x, w)  # grad mode, and the weight requires grad
    with torch.no_grad():
        assert layers.use_cpu_bf16_fused_ops(x, w, None)
        assert not layers.use_cpu_bf16_fused_ops(x.float(), w)
        assert not layers.use_cpu_bf16_fused_ops(x, w.float())
        assert not layers.use_cpu_bf16_fused_ops(x.half(), w.half())
    with pytest.MonkeyPatch.context() as patch, torch.no_grad():
        patch.setattr(layers, "CPU_BF16_FUSED_OPS", False)
        assert not layers.use_cpu_bf16_fused_ops(x, w)


@requires_onednn_bf16
def test_fused_mlp_in_bf16_matches_the_unfused_one(bf16_path_on, monkeypatch):
    torch.manual_seed(0)
    mlp32 = MLP(64, 256).eval()
    x32 = torch.randn(3, 50, 64)
    mlp = MLP(64, 256).eval().bfloat16()
    mlp.load_state_dict(mlp32.state_dict())
    x = x32.bfloat16()
    with torch.inference_mode():
        # float32 never takes the fused ops: the unfused formula, bit for bit.
        assert torch.equal(mlp32(x32), mlp32.fc_out(layers.gelu_tanh(mlp32.fc_in(x32))))
        fused = mlp(x)
        monkeypatch.setattr(layers, "CPU_BF16_FUSED_OPS", False)
        unfused = mlp(x)
        reference = mlp32(x.float())
    assert fused.dtype == torch.bfloat16 and fused.shape == (3, 50, 64)
    assert not torch.equal(fused, unfused)  # really the fused op (the GELU of the fp32 accumulator)
    # The GELU reads the float32 accumulator instead of a bf16-rounded one: at most about an ulp apart,
    # and no farther from float32.
    torch.testing.assert_close(fused.float(), unfused.float(), atol=1e-2, rtol=1e-2)
    assert (fused.float() - reference).abs().mean() <= (unfused.float() - reference).abs().mean()


@requires_onednn_bf16
@pytest.mark.parametrize("head_dim", [64, 32])
@pytest.mark.parametrize("qkv_bias, qk_norm", [(True, False), (False, True)])
def test_fused_attention_in_bf16_equals_the_unfused_one(bf16_path_on, monkeypatch, head_dim, qkv_bias, qk_norm):
    # The linears' bias post-op and the q/k norm copied into the head-major layout (with 1/8 folded
    # into q for head_dim 64, exact) change no bit of the bf16 result.
    torch.manual_seed(0)
    module = Attention(48, num_heads=2, head_dim=head_dim, context_dim=40, qkv_bias=qkv_bias, qk_norm=qk_norm).eval()
    if qk_norm:
        module.q_norm.weight.data.uniform_(0.5, 1.5)
        module.k_norm.weight.data.uniform_(0.5, 1.5)
    module.bfloat16()
    x, context = torch.randn(2, 300, 48).bfloat16(), torch.randn(2, 260, 40).bfloat16()
    with torch.inference_mode():
        assert module._fused_inference(x, context)
        fused = module(x, context)
        monkeypatch.setattr(layers, "CPU_BF16_FUSED_OPS", False)
        assert not module._fused_inference(x, context)
        unfused = module(x, context)
    assert torch.equal(fused, unfused)


def test_rms_norm_heads_first_is_the_norm_moved_and_scaled():
    torch.manual_seed(0)
    norm = torch.nn.RMSNorm(16, eps=1e-6).bfloat16()
    norm.weight.data.uniform_(0.5, 1.5)
    x = torch.randn(2, 30, 3, 16).bfloat16()
    with torch.no_grad():
        out = layers.rms_norm_heads_first(x, norm, scale=0.25)
        assert out.shape == (2, 3, 30, 16) and out.is_contiguous()
        assert torch.equal(out, (norm(x) * 0.25).transpose(1, 2))
        assert torch.equal(layers.rms_norm_heads_first(x, norm), norm(x).transpose(1, 2))


@requires_onednn_bf16
def test_fused_linear_keeps_hooks_and_subclasses(bf16_path_on):
    layer = torch.nn.Linear(8, 4).bfloat16()
    x = torch.randn(5, 8).bfloat16()
    calls = []
    handle = layer.register_forward_hook(lambda module, args, out: calls.append(out.shape) or out * 2)
    with torch.no_grad():
        out = layers.linear(x, layer)
        assert calls == [(5, 4)] and torch.equal(out, layer.forward(x) * 2)  # the hook ran and changed the output
        handle.remove()
        fused = layers.linear(x, layer, "gelu_tanh")  # no hook: the fused op
        torch.testing.assert_close(fused.float(), layers.gelu_tanh(layer(x)).float(), atol=1e-2, rtol=1e-2)
    with pytest.raises(ValueError):
        layers.linear(x, layer, "relu")


@requires_onednn_bf16
def test_fused_attention_leaves_dropout_to_the_unfused_path(bf16_path_on):
    module = Attention(16, num_heads=2, head_dim=8, dropout=0.5).bfloat16()
    x = torch.randn(1, 4, 16).bfloat16()
    with torch.no_grad():
        assert not module.train()._fused_inference(x, x)  # dropout to apply: the unfused path applies it
        assert module.eval()._fused_inference(x, x)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_check_video_finds_one_non_finite_value(value, dtype):
    torch.manual_seed(0)
    video = torch.rand(1, 2, 3, 8, 8).to(dtype)
    layers.check_video(video, (1, 8, 8))  # a valid video passes
    video[0, 1, 2, 5, 3] = value
    with pytest.raises(ValueError, match="NaN or infinite"):
        layers.check_video(video, (1, 8, 8))
    video = (torch.rand(1, 2, 3, 8, 8) * 0.5).to(dtype)
    video[0, 0, 1, 4, 3] = 1.5
    with pytest.raises(ValueError, match=r"must be in \[0, 1\] \(got values in \[.*, 1.5\]\)"):
        layers.check_video(video, (1, 8, 8))


def test_fused_ops_stay_off_where_onednn_has_no_bf16_matmul(bf16_path_on, monkeypatch):
    monkeypatch.setattr(layers, "_onednn_bf16_matmul", lambda: False)
    with torch.no_grad():
        assert not layers.use_cpu_bf16_fused_ops(torch.randn(2, 8).bfloat16())


def test_fused_ops_stay_off_under_tracers_and_transforms(bf16_path_on):
    """jvp / forward AD (the fused op has no forward-AD formula: tangents would be zero), fx and
    jit tracing (the gate's Python checks and the op's arguments are not traceable)."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(8, 4).bfloat16().requires_grad_(False)
    x, tangent = torch.randn(3, 8).bfloat16(), torch.ones(3, 8).bfloat16()
    _, through_linear = torch.func.jvp(lambda v: layers.linear(v, layer), (x,), (tangent,))
    _, through_module = torch.func.jvp(layer, (x,), (tangent,))
    assert torch.equal(through_linear, through_module) and through_module.abs().sum() > 0
    with torch.autograd.forward_ad.dual_level():
        dual = torch.autograd.forward_ad.make_dual(x, tangent)
        assert torch.equal(torch.autograd.forward_ad.unpack_dual(layers.linear(dual, layer)).tangent, through_module)
    mlp = MLP(8, 16).bfloat16().eval()
    assert isinstance(torch.fx.symbolic_trace(mlp), torch.fx.GraphModule)
    with torch.no_grad():
        traced = torch.jit.trace(mlp, (x,), check_trace=False)
        torch.testing.assert_close(traced(x).float(), mlp(x).float(), atol=1e-2, rtol=1e-2)


def test_check_video_refuses_an_empty_video():
    with pytest.raises(ValueError, match=r"empty.*\(1, 0, 3, 8, 8\)"):
        layers.check_video(torch.rand(1, 0, 3, 8, 8), None)
