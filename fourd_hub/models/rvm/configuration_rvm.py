"""Configuration of the RVM family: transformer specs, S/B/L/H presets as data, :class:`RVMConfig`.

Sizes: ``../shared/docs/rvm.md`` section 4 (the encoder sizes are the notebook's ``VIT_SIZES``; the
core and decoder sizes of S/B/H are inferred from the released files, section 1). Converting a
file never trusts this table: every size is read from the tensor shapes
(:mod:`~fourd_hub.models.rvm.conversion_rvm`), the presets only describe the released files.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ...layers import FLAX_NORM_EPS, check_sequence
from ...modeling_utils import FourDConfig
from ...readout import ReadoutConfig

#: ``reconstruction_loss`` values: L2 over every target pixel, or over the masked patches only.
RECONSTRUCTION_LOSSES = ("all", "masked")


# ----------------------------------------------------------------------------------------------
# Sub-specs


@dataclass
class RVMTransformerSpec:
    """A ``CrossAttentionTransformer`` of the original: blocks of cross-attention -> MLP -> self-attention.

    Attributes:
        num_layers: number of ``xa_blocks`` (the original's ``num_layers``).
        num_heads: attention heads (the same in the cross- and the self-attention of every block).
        num_feats: total width of queries, keys and values (the original's ``num_feats``, the
            paper's attention width). It may differ from the model width (trap 4 of rvm.md): q/k/v
            map the width to (heads, num_feats / heads), the output maps back.
        mlp_size: hidden width of each block's MLP (the original's ``mlp_dim``).
    """

    num_layers: int
    num_heads: int
    num_feats: int
    mlp_size: int

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"RVM {type(self).__name__} {field.name} must be a positive integer, got {value!r}")
        if self.num_feats % self.num_heads:
            raise ValueError(f"RVM num_feats {self.num_feats} is not divisible by num_heads {self.num_heads}")

    @property
    def head_dim(self) -> int:
        return self.num_feats // self.num_heads

    @classmethod
    def from_dict(cls, values: Any, what: str) -> "RVMTransformerSpec":
        """The spec of a config field (``core``, ``decoder``), refusing unknown or missing fields by name."""
        if isinstance(values, cls):
            return values
        if not isinstance(values, dict):
            raise TypeError(f"RVMConfig.{what} must be a dict, got {type(values).__name__}")
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"RVMConfig.{what} has unknown fields {unknown}; known: {known}")
        try:
            return cls(**values)
        except TypeError as error:  # a missing required field
            raise ValueError(f"RVMConfig.{what}: {error}; it needs {known}") from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class RVMDecoderSpec(RVMTransformerSpec):
    """The masked-reconstruction decoder: a :class:`RVMTransformerSpec` at its own width, plus its embeddings.

    Attributes (besides the transformer's):
        hidden_size: decoder width Dd (``mask_token.shape[1]``); ``decoder_embedder`` maps the
            model width to it.
        num_delta_classes: classes of the one-hot ``target_deltas`` embedding (64): a target
            frame's offset from the first source frame must be in [0, num_delta_classes).
    """

    hidden_size: int = 512
    num_delta_classes: int = 64


# ----------------------------------------------------------------------------------------------
# Presets (rvm.md section 4)

#: The decoder of every released file (the notebook's; heads unverified for S/B/H, rvm.md section 1).
RVM_DECODER: dict[str, Any] = dict(num_layers=8, num_heads=16, num_feats=512, mlp_size=2048, hidden_size=512, num_delta_classes=64)

RVM_PRESETS: dict[str, dict[str, Any]] = {
    "S": dict(
        hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536,
        core=dict(num_layers=4, num_heads=8, num_feats=384, mlp_size=2048), decoder=RVM_DECODER,
    ),
    "B": dict(
        hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
        core=dict(num_layers=4, num_heads=12, num_feats=768, mlp_size=3072), decoder=RVM_DECODER,
    ),
    # The notebooks' own model (known exactly).
    "L": dict(
        hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
        core=dict(num_layers=4, num_heads=16, num_feats=1024, mlp_size=4096), decoder=RVM_DECODER,
    ),
    # 16 core heads are an assumption (the file's shapes are (1280, 16, 80) in the manifest; the
    # parameter count does not depend on them); the converter reads them from the file anyway.
    "H": dict(
        hidden_size=1280, num_hidden_layers=32, num_attention_heads=16, intermediate_size=5120,
        core=dict(num_layers=4, num_heads=16, num_feats=1280, mlp_size=5120), decoder=RVM_DECODER,
    ),
}


class RVMConfig(FourDConfig):
    r"""Configuration of an RVM model (and of its task head, if any).

    The defaults are RVM-B (``RVMConfig.from_preset("B")``). Every released model: patch 16,
    position-table base grid 16 x 16 (trained at 256 x 256), 64 delta classes, masking ratio 0.95.

    Args:
        hidden_size (`int`): model width D (encoder tokens, state slots).
        num_hidden_layers (`int`): encoder (ViT) blocks.
        num_attention_heads (`int`): encoder heads; ``hidden_size`` must be divisible by it.
        intermediate_size (`int`): encoder MLP width.
        patch_size (`list[int]`): (height, width) of a patch (the original's kernel (1, 16, 16): one frame).
        base_token_shape (`list[int]`): token grid (h, w) of the encoder's 1-D sinusoidal position
            table; other grids resize it (jax's antialiased cubic). Not stored in the files.
        num_channels (`int`): input channels (RGB).
        num_frames (`int`): clip length: the pipelines' window, the frames the readout heads read
            and, for pretraining, the span of a clip (source frames first, targets after them).
            The backbone itself runs on any number of frames.
        image_size (`list[int]`): (height, width) the pipelines resize to and the depth head is
            built for; the backbone runs at any multiple of the patch.
        core (`dict`): :class:`RVMTransformerSpec` of the recurrent core's transformer (``rnn_core``).
        decoder (`dict`, *optional*): :class:`RVMDecoderSpec` of the masked-reconstruction
            decoder; ``None`` for a model without decoder weights (it cannot reconstruct).
        state_layer_norm_eps (`float`): epsilon of the state LayerNorm (1e-4 in the original).
        layer_norm_eps (`float`): epsilon of every other LayerNorm (Flax default 1e-6).
        masking_ratio (`float`): fraction of target patches masked: ``int(N * (1 - ratio))``
            stay visible (0.95 -> 12 of 256).
        num_source_frames (`int`), num_target_frames (`int`): pretraining only: frames of a clip
            seen unmasked (its first ``num_source_frames``) and reconstructed (drawn after them).
        reconstruction_loss (`str`): pretraining only: ``"all"`` (L2 over every target pixel) or
            ``"masked"`` (masked patches only). The paper's choice is not known here (rvm.md
            section 5); ``"all"`` is the 4DS convention.
        initializer_range (`float`): std of the truncated-normal init of fresh weights.
        readout (`dict`, *optional*): the task head's :class:`~fourd_hub.readout.ReadoutConfig`.
        preset (`str`, *optional*): the preset this config was made from, informational.

    Example:

    ```python
    >>> from fourd_hub import RVMConfig, RVMModel
    >>> config = RVMConfig.from_preset("S")
    >>> model = RVMModel(config)
    ```
    """

    model_type = "rvm"

    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    patch_size: list[int] | tuple[int, ...] = (16, 16)
    base_token_shape: list[int] | tuple[int, ...] = (16, 16)
    num_channels: int = 3
    num_frames: int = 16
    image_size: list[int] | tuple[int, ...] = (256, 256)
    core: dict | None = None
    decoder: dict | None = dataclasses.field(default_factory=lambda: dict(RVM_DECODER))
    state_layer_norm_eps: float = 1e-4
    layer_norm_eps: float = FLAX_NORM_EPS
    masking_ratio: float = 0.95
    num_source_frames: int = 4
    num_target_frames: int = 4
    reconstruction_loss: str = "all"
    initializer_range: float = 0.02
    readout: dict | None = None
    preset: str | None = None

    def __post_init__(self, **kwargs):
        for name in (
            "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "num_channels",
            "num_frames", "num_source_frames", "num_target_frames",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"RVMConfig.{name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"RVMConfig.hidden_size ({self.hidden_size}) must be divisible by num_attention_heads ({self.num_attention_heads})"
            )
        self.patch_size = list(check_sequence("patch_size", self.patch_size, 2))
        self.base_token_shape = list(check_sequence("base_token_shape", self.base_token_shape, 2))
        self.image_size = list(check_sequence("image_size", self.image_size, 2))
        for size, patch, name in zip(self.image_size, self.patch_size, ("height", "width")):
            if size % patch:
                raise ValueError(f"RVMConfig image_size {name} {size} is not a multiple of the patch size {patch}")
        # Sub-specs: validated, stored back as plain dicts (JSON); the core defaults to RVM-B's.
        core = RVM_PRESETS["B"]["core"] if self.core is None else self.core
        self.core = RVMTransformerSpec.from_dict(core, "core").to_dict()
        if self.decoder is not None:
            self.decoder = RVMDecoderSpec.from_dict(self.decoder, "decoder").to_dict()
        for name in ("state_layer_norm_eps", "layer_norm_eps", "initializer_range"):
            if not getattr(self, name) > 0:
                raise ValueError(f"RVMConfig.{name} must be positive, got {getattr(self, name)!r}")
        if not 0.0 <= self.masking_ratio < 1.0:
            raise ValueError(f"RVMConfig.masking_ratio must be in [0, 1), got {self.masking_ratio!r}")
        if self.reconstruction_loss not in RECONSTRUCTION_LOSSES:
            raise ValueError(f"RVMConfig.reconstruction_loss must be one of {RECONSTRUCTION_LOSSES}, got {self.reconstruction_loss!r}")
        super().__post_init__(**kwargs)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "RVMConfig":
        """A released size: ``"S"``, ``"B"``, ``"L"`` or ``"H"`` (rvm.md section 4)."""
        if name not in RVM_PRESETS:
            raise ValueError(f"unknown RVM preset {name!r}; known presets: {', '.join(RVM_PRESETS)}")
        values = {k: (dict(v) if isinstance(v, dict) else v) for k, v in RVM_PRESETS[name].items()}
        return cls(**{**values, "preset": name, **overrides})

    @property
    def head_dim(self) -> int:
        """Encoder per-head width (what the encoder block, shared with 4DS, reads)."""
        return self.hidden_size // self.num_attention_heads

    def core_spec(self) -> RVMTransformerSpec:
        return RVMTransformerSpec(**self.core)

    def decoder_spec(self) -> RVMDecoderSpec | None:
        return None if self.decoder is None else RVMDecoderSpec(**self.decoder)

    def token_grid(self, image_size: tuple[int, int] | list[int] | None = None) -> tuple[int, int]:
        """(h, w) patch grid of frames of ``image_size`` (default: the config's)."""
        height, width = self.image_size if image_size is None else image_size
        return height // self.patch_size[0], width // self.patch_size[1]

    def num_visible(self, num_patches: int, masking_ratio: float | None = None) -> int:
        """Target patches left visible: ``int(N * (1 - ratio))`` in float64, as the original
        (0.95 and N = 256 -> 12; 0.6 and N = 15 -> 6, where float32 arithmetic gives 5)."""
        ratio = self.masking_ratio if masking_ratio is None else masking_ratio
        return int(num_patches * (1.0 - float(ratio)))

    def readout_config(self, task: str) -> ReadoutConfig:
        """The head of ``task``: its defaults, RVM's for depth, then ``config.readout``.

        RVM's depth head reads the state of one frame at a time (``num_frames`` 1, decoding patch
        (1, 8, 8)): the recurrent state already carries the history, and per-frame depth streams
        through chunks of any length. The other heads read clips of ``num_frames`` frames
        (camera pose: the first and last frame).
        """
        values = {"num_frames": 1, "decoding_patch_size": [1, 8, 8]} if task == "depth" else {}
        return ReadoutConfig.for_task(task, {**values, **(self.readout or {})})


# The debug preset: a model small enough for CPU tests in milliseconds (H != W on purpose, a base
# grid different from the token grid so that the position table is resized, attention widths
# different from the model widths).
RVM_DEBUG: dict[str, Any] = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48, patch_size=[8, 8],
    base_token_shape=[2, 3], num_frames=4, image_size=[32, 24],
    core=dict(num_layers=1, num_heads=2, num_feats=24, mlp_size=40),
    decoder=dict(num_layers=1, num_heads=2, num_feats=16, mlp_size=32, hidden_size=24, num_delta_classes=64),
    masking_ratio=0.75, num_source_frames=2, num_target_frames=2,
)


def debug_config(**overrides) -> RVMConfig:
    """An RVM small enough for CPU tests in milliseconds (the conformance suite and CI use it); H != W on purpose."""
    values: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in RVM_DEBUG.items()}
    # A small readout of any task (a task model fills in its task; tiling 1 fits any clip length).
    values["readout"] = dict(num_params=16, num_heads=2, temporal_tile_size=1, query_mlp_sizes=[16, 16], query_fourier_bases=4)
    values.update(overrides)
    return RVMConfig(**values)
