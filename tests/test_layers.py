"""Shared layers: attention variants, MLP, Fourier features, jax-compatible resize and linspace."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

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
