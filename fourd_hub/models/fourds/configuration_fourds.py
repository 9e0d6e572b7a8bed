"""Configuration of the 4DS family: Table 1 sizes as data, :class:`FourDSConfig`."""

from __future__ import annotations

from typing import Any


from ...layers import FLAX_NORM_EPS, check_sequence
from ...modeling_utils import FourDConfig
from ...readout import ReadoutConfig

# Table 1 of the paper: (hidden_size, num_hidden_layers, intermediate_size, num_attention_heads).
# Every size uses 2x16x16 patches and 16 frames at 224x224, except j (256x256).
FOURDS_SIZES: dict[str, dict[str, Any]] = {
    "S": dict(hidden_size=384, num_hidden_layers=12, intermediate_size=1536, num_attention_heads=6),
    "B": dict(hidden_size=768, num_hidden_layers=12, intermediate_size=3072, num_attention_heads=12),
    "L": dict(hidden_size=1024, num_hidden_layers=24, intermediate_size=4096, num_attention_heads=16),
    "H": dict(hidden_size=1280, num_hidden_layers=32, intermediate_size=5120, num_attention_heads=16),
    "G": dict(hidden_size=1664, num_hidden_layers=48, intermediate_size=8192, num_attention_heads=16),
    "e": dict(hidden_size=1792, num_hidden_layers=56, intermediate_size=15360, num_attention_heads=16),
    # 22B: 256x256 input, and (Table 4) a coarser 4x8x8 decoding grid (4x32x32 output patches)
    # on the last 2 blocks only.
    "j": dict(
        hidden_size=4096, num_hidden_layers=64, intermediate_size=32768, num_attention_heads=32, image_size=[256, 256],
        decoder_grid=[4, 8, 8], num_decoder_layers=2,
    ),
}


class FourDSConfig(FourDConfig):
    r"""Configuration of a 4DS backbone (and of its task head, if any).

    Args:
        hidden_size (`int`): token width (Table 1 "width").
        num_hidden_layers (`int`): transformer blocks (Table 1 "depth").
        intermediate_size (`int`): MLP hidden width.
        num_attention_heads (`int`): attention heads; ``hidden_size`` must be divisible by it.
        patch_size (`list[int]`): (t, h, w) tubelet of the Conv3d patch embedding.
        num_frames (`int`): frames of the training clips; the learned position embedding covers
            ``num_frames / patch_t`` time steps. Other lengths are served by resampling it.
        image_size (`list[int]`): (height, width) of the training clips (same remark).
        num_channels (`int`): input channels (RGB).
        layer_norm_eps (`float`): LayerNorm epsilon; Flax's default 1e-6, not torch's 1e-5.
        initializer_range (`float`): std of the truncated-normal init of fresh weights.
        readout_depth (`float`): which entry of the feature list feeds readouts:
            ``int((num_hidden_layers + 1) * readout_depth) - 1`` (0.95 in the paper).
        readout (`dict`, *optional*): the task head's :class:`~fourd_hub.readout.ReadoutConfig` as a
            dict; filled with the task's defaults when a task model is built.
        preset (`str`, *optional*): the Table 1 size this config was made from, informational.
        mask_ratio (`float`): pretraining only: fraction of space-time patches dropped at random
            (0.95 in the paper, no tube masking).
        num_decoder_layers (`int`): pretraining only: the latent decoding grid joins the visible
            tokens before the last this-many blocks (4; 2 for 22B).
        decoder_grid (`list[int]`, *optional*): pretraining only: (t, h, w) grid of learned latent
            decoding tokens; each decodes linearly to one (T/t, H/h, W/w) RGB patch. Default: the
            input token grid (8x14x14 for 16x224x224); 4x8x8 for 22B.

    Example:

    ```python
    >>> from fourd_hub import FourDSConfig, FourDSModel
    >>> config = FourDSConfig.from_preset("B")
    >>> model = FourDSModel(config)
    ```
    """

    model_type = "fourds"

    hidden_size: int = 768
    num_hidden_layers: int = 12
    intermediate_size: int = 3072
    num_attention_heads: int = 12
    patch_size: list[int] | tuple[int, ...] = (2, 16, 16)
    num_frames: int = 16
    image_size: list[int] | tuple[int, ...] = (224, 224)
    num_channels: int = 3
    layer_norm_eps: float = FLAX_NORM_EPS
    initializer_range: float = 0.02
    readout_depth: float = 0.95
    readout: dict | None = None
    preset: str | None = None
    mask_ratio: float = 0.95
    num_decoder_layers: int = 4
    decoder_grid: list[int] | tuple[int, ...] | None = None

    def __post_init__(self, **kwargs):
        self.patch_size = list(check_sequence("patch_size", self.patch_size, 3))
        self.image_size = list(check_sequence("image_size", self.image_size, 2))
        for name in ("hidden_size", "num_hidden_layers", "intermediate_size", "num_attention_heads", "num_frames", "num_channels"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"FourDSConfig.{name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads ({self.num_attention_heads})"
            )
        for size, patch, name in zip((self.num_frames, *self.image_size), self.patch_size, ("num_frames", "height", "width")):
            if size % patch:
                raise ValueError(f"FourDSConfig {name} {size} is not divisible by the patch size {patch}")
        if not 0.0 < self.readout_depth <= 1.0:
            raise ValueError(f"readout_depth must be in (0, 1], got {self.readout_depth}")
        if not 0.0 <= self.mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1), got {self.mask_ratio}")
        # Checked against num_hidden_layers by FourDSForPreTraining only: backbones never use it.
        if not isinstance(self.num_decoder_layers, int) or self.num_decoder_layers < 1:
            raise ValueError(f"num_decoder_layers must be a positive integer, got {self.num_decoder_layers!r}")
        if self.decoder_grid is not None:
            self.decoder_grid = list(check_sequence("decoder_grid", self.decoder_grid, 3))
            for size, cells, name in zip((self.num_frames, *self.image_size), self.decoder_grid, ("num_frames", "height", "width")):
                if size % cells:
                    raise ValueError(f"decoder_grid {self.decoder_grid} does not divide the clip: {name} {size} % {cells} != 0")
        super().__post_init__(**kwargs)

    @classmethod
    def from_preset(cls, size: str, **overrides) -> "FourDSConfig":
        """The configuration of a Table 1 size: ``"S"``, ``"B"``, ``"L"``, ``"H"``, ``"G"``, ``"e"``, ``"j"``."""
        if size not in FOURDS_SIZES:
            raise ValueError(f"unknown 4DS size {size!r}; known sizes: {', '.join(FOURDS_SIZES)}")
        return cls(**{**FOURDS_SIZES[size], "preset": size, **overrides})

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def token_grid(self) -> tuple[int, int, int]:
        """(t, h, w) token grid of the native input size (the position embedding's shape)."""
        sizes = (self.num_frames, *self.image_size)
        return tuple(s // p for s, p in zip(sizes, self.patch_size))

    def readout_config(self, task: str) -> ReadoutConfig:
        return ReadoutConfig.for_task(task, self.readout)

    @property
    def decoding_grid(self) -> tuple[int, int, int]:
        """(t, h, w) grid of latent decoding tokens (pretraining)."""
        return tuple(self.decoder_grid) if self.decoder_grid is not None else self.token_grid

    @property
    def decoder_patch_size(self) -> tuple[int, int, int]:
        """(pt, ph, pw) RGB patch each latent decoding token reconstructs (2x16x16; 22B: 4x32x32)."""
        return tuple(s // g for s, g in zip((self.num_frames, *self.image_size), self.decoding_grid))


def readout_feature_index(num_features: int, readout_depth: float) -> int:
    """Index into the original feature list (length ``num_hidden_layers + 1``) read by readouts."""
    index = int(num_features * readout_depth) - 1
    if not 0 <= index < num_features:
        raise ValueError(f"readout_depth {readout_depth} selects no feature of {num_features}")
    return index


# The debug preset: a model small enough for CPU tests in milliseconds (H != W on purpose).
FOURDS_DEBUG: dict[str, Any] = dict(
    hidden_size=32, num_hidden_layers=3, intermediate_size=48, num_attention_heads=4,
    patch_size=[2, 8, 8], num_frames=4, image_size=[32, 24],
)


def debug_config(**overrides) -> "FourDSConfig":
    """A 4DS small enough for CPU tests in milliseconds (the conformance suite and CI use it); H != W on purpose."""
    values: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in FOURDS_DEBUG.items()}
    # A small readout of any task (a task model fills in its task; tiling 1 fits any clip length).
    values["readout"] = dict(num_params=16, num_heads=2, temporal_tile_size=1, query_mlp_sizes=[16, 16], query_fourier_bases=4)
    values.update(overrides)
    return FourDSConfig(**values)
