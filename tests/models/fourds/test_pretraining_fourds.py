"""Pretraining objectives as models: FourDSForPreTraining (masked auto-encoding with a latent
decoding grid) and MooG next-frame prediction (seeded pixel subsampling)."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_fourds_kwargs, tiny_moog_kwargs
from fourd_hub import FourDSConfig, FourDSForPreTraining, FourDSModel, MooGConfig, MooGForNextFramePrediction
from fourd_hub.models.fourds.modeling_fourds import FourDSLatentDecoder, random_patch_mask

pytestmark = pytest.mark.training


def tiny_pretraining(**overrides) -> FourDSForPreTraining:
    torch.manual_seed(0)
    return FourDSForPreTraining(FourDSConfig(**tiny_fourds_kwargs(**{"num_decoder_layers": 2, "mask_ratio": 0.75, **overrides})))


def clip(seed: int = 0, batch: int = 2) -> torch.Tensor:
    return torch.rand(batch, 4, 3, 32, 24, generator=torch.Generator().manual_seed(seed))


def test_random_patch_mask_counts_and_seeding():
    mask = random_patch_mask(3, 1568, 0.95, torch.Generator().manual_seed(1))
    assert mask.dtype == torch.bool and mask.shape == (3, 1568)
    assert (~mask).sum(1).tolist() == [79, 79, 79]  # 1568 - int(0.95 * 1568)
    assert torch.equal(mask, random_patch_mask(3, 1568, 0.95, torch.Generator().manual_seed(1)))
    assert not torch.equal(mask, random_patch_mask(3, 1568, 0.95, torch.Generator().manual_seed(2)))
    assert not torch.equal(mask[0], mask[1])  # independent per video, no tube pattern shared
    assert (~random_patch_mask(1, 4, 0.999)).sum() == 1  # always at least one visible patch


def test_forward_shapes_loss_and_reproducibility():
    model = tiny_pretraining()
    video = clip()
    out = model(video, generator=torch.Generator().manual_seed(0))
    num_patches = 2 * 4 * 3  # (4/2) x (32/8) x (24/8)
    assert out.reconstruction.shape == video.shape
    assert out.mask.shape == (2, num_patches) and (~out.mask).sum(1).tolist() == [6, 6]
    # The visible indices are exactly the unmasked patches, in raster order.
    for b in range(2):
        assert out.visible_indices[b].tolist() == torch.nonzero(~out.mask[b]).flatten().tolist()
    # L2 on raw RGB of every patch, masked and visible.
    assert torch.allclose(out.loss, ((out.reconstruction - video) ** 2).mean())
    again = model(video, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.mask, out.mask) and torch.equal(again.loss, out.loss)
    other = model(video, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(other.mask, out.mask)


def test_masked_patches_do_not_reach_the_model():
    model = tiny_pretraining().eval()
    video = clip()
    out = model(video, generator=torch.Generator().manual_seed(3))
    # Overwrite every masked patch with noise: the reconstruction must not change.
    patch_mask = out.mask.reshape(2, 2, 4, 3)  # (B, t, h, w)
    pixel_mask = patch_mask.repeat_interleave(2, 1).repeat_interleave(8, 2).repeat_interleave(8, 3)  # (B, T, H, W)
    changed = torch.where(pixel_mask[:, :, None], torch.rand_like(video), video)
    assert not torch.equal(changed, video)
    out2 = model(changed, mask=out.mask)
    assert torch.equal(out2.reconstruction, out.reconstruction)
    # ... while changing a visible patch does change it.
    visible_changed = torch.where(pixel_mask[:, :, None], video, torch.rand_like(video))
    assert not torch.allclose(model(visible_changed, mask=out.mask).reconstruction, out.reconstruction)


def test_latent_grid_joins_before_the_last_blocks():
    model = tiny_pretraining(num_hidden_layers=4, num_decoder_layers=1, decoder_grid=[1, 2, 3])
    lengths = []
    for layer in model.fourds.layers:
        layer.register_forward_hook(lambda module, args, output: lengths.append(output.shape[1]))
    model(clip(), generator=torch.Generator().manual_seed(0))
    assert lengths == [6, 6, 6, 6 + 6]  # 6 visible patches, then + the 1x2x3 latent grid
    assert model.config.decoder_patch_size == (4, 16, 8)


def test_latent_decoder_tiles_the_clip():
    config = FourDSConfig(**tiny_fourds_kwargs(decoder_grid=[2, 2, 3]))
    decoder = FourDSLatentDecoder(config)
    pt, ph, pw = config.decoder_patch_size
    assert (pt, ph, pw) == (2, 16, 8)
    with torch.no_grad():
        # Output channel c of every pixel of token g's patch = g + 1000 c.
        decoder.to_pixels.weight.zero_()
        decoder.to_pixels.weight[:, 0] = 1.0
        decoder.to_pixels.bias.copy_(torch.arange(3.0).repeat(pt * ph * pw) * 1000)
    latents = torch.zeros(1, 12, config.hidden_size)
    latents[0, :, 0] = torch.arange(12.0)
    video = decoder(latents)
    assert video.shape == (1, 4, 3, 32, 24)
    for t in range(2):
        for h in range(2):
            for w in range(3):
                g = (t * 2 + h) * 3 + w
                block = video[0, t * pt:(t + 1) * pt, :, h * ph:(h + 1) * ph, w * pw:(w + 1) * pw]
                expected = (g + 1000 * torch.arange(3.0)).view(1, 3, 1, 1).expand_as(block)
                assert torch.equal(block, expected), (t, h, w)


def test_paper_decoding_settings():
    assert FourDSConfig.from_preset("B").decoding_grid == (8, 14, 14)
    assert FourDSConfig.from_preset("B").decoder_patch_size == (2, 16, 16)
    assert FourDSConfig.from_preset("B").num_decoder_layers == 4
    j = FourDSConfig.from_preset("j")
    assert (j.decoding_grid, j.decoder_patch_size, j.num_decoder_layers) == ((4, 8, 8), (4, 32, 32), 2)
    with torch.device("meta"):
        model = FourDSForPreTraining(FourDSConfig.from_preset("S"))
    decoder_params = sum(p.numel() for p in model.decoder.parameters())
    assert decoder_params == 8 * 14 * 14 * 384 + 384 * 1536 + 1536  # "very few" decoding parameters (Table 1)


def test_save_and_load_backbone(tmp_path):
    model = tiny_pretraining()
    model.save_pretrained(tmp_path)
    backbone = FourDSModel.from_pretrained(tmp_path)
    for name, value in backbone.state_dict().items():
        assert torch.equal(value, model.fourds.state_dict()[name]), name
    again = FourDSForPreTraining.from_pretrained(tmp_path)
    assert torch.equal(again.decoder.latent_tokens, model.decoder.latent_tokens)
    from transformers import AutoModelForPreTraining

    assert type(AutoModelForPreTraining.from_pretrained(tmp_path)) is FourDSForPreTraining


def test_bad_inputs_are_clear_errors():
    model = tiny_pretraining()
    with pytest.raises(ValueError, match="configured size"):
        model(torch.rand(1, 4, 3, 16, 24))
    num_patches = 24
    with pytest.raises(TypeError, match="bool"):
        model(clip(), mask=torch.zeros(2, num_patches))
    with pytest.raises(ValueError, match="shape"):
        model(clip(), mask=torch.zeros(2, 5, dtype=torch.bool))
    uneven = torch.zeros(2, num_patches, dtype=torch.bool)
    uneven[0, :3] = True
    with pytest.raises(ValueError, match="same, non-zero number"):
        model(clip(), mask=uneven)
    with pytest.raises(ValueError, match="mask_ratio"):
        FourDSConfig(**tiny_fourds_kwargs(mask_ratio=1.0))
    with pytest.raises(ValueError, match="num_decoder_layers"):
        FourDSConfig(**tiny_fourds_kwargs(num_decoder_layers=0))
    with pytest.raises(ValueError, match="cannot exceed"):
        FourDSForPreTraining(FourDSConfig(**tiny_fourds_kwargs(num_decoder_layers=4)))
    with pytest.raises(ValueError, match="decoder_grid"):
        FourDSConfig(**tiny_fourds_kwargs(decoder_grid=[3, 2, 2]))
    with pytest.raises(ValueError):
        model(torch.full((2, 4, 3, 32, 24), float("nan")))


def test_moog_next_frame_subsampling_is_seeded():
    torch.manual_seed(0)
    model = MooGForNextFramePrediction(MooGConfig(**tiny_moog_kwargs())).train()
    video = torch.rand(2, 3, 3, 16, 12, generator=torch.Generator().manual_seed(0))
    a = model(video, generator=torch.Generator().manual_seed(5))
    b = model(video, generator=torch.Generator().manual_seed(5))
    c = model(video, generator=torch.Generator().manual_seed(6))
    assert a.predicted_frames.shape == (2, 3, 3, 4, 3)  # one pixel in 4 x 4
    assert torch.equal(a.sampled_rows, b.sampled_rows) and torch.equal(a.loss, b.loss)
    assert not torch.equal(a.sampled_rows, c.sampled_rows) or not torch.equal(a.sampled_cols, c.sampled_cols)
    # The targets are the input's pixels at the sampled positions.
    rows, cols = a.sampled_rows[1, 2], a.sampled_cols[1, 2]
    assert torch.equal(a.target_frames[1, 2], video[1, 2][:, rows][:, :, cols])
    a.loss.backward()
