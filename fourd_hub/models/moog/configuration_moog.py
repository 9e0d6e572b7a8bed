"""Configuration of the MooG family: transformer / pixel-decoder specs, presets as data, :class:`MooGConfig`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


from ...layers import FLAX_NORM_EPS, check_sequence
from ...modeling_utils import FourDConfig
from ...readout import ReadoutConfig

POSITION_UPDATES = ("concat", "project_add")


# ----------------------------------------------------------------------------------------------
# Configuration


@dataclass
class MooGTransformerSpec:
    """One MooG ``ImprovedTransformer``: optional input projection, blocks, final norm, optional output projection.

    Attributes:
        num_layers: number of blocks (0 = just the projections and the final LayerNorm).
        qkv_size: total width of queries, keys and values (``num_heads * head_dim``).
        num_heads: attention heads.
        mlp_size: hidden width of each block's MLP.
        hidden_size: if set, a Dense maps the input to this width first, and another maps back
            to the input width at the end when the two differ (the original's rule).
        cross_attention_only: blocks skip self-attention (the MOVi decoder); they then need a context.
    """

    num_layers: int
    qkv_size: int
    num_heads: int
    mlp_size: int = 2048
    hidden_size: int | None = None
    cross_attention_only: bool = False

    def __post_init__(self) -> None:
        for name in ("qkv_size", "num_heads", "mlp_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"MooG transformer {name} must be a positive integer, got {value!r}")
        if not isinstance(self.num_layers, int) or self.num_layers < 0:
            raise ValueError(f"MooG transformer num_layers must be >= 0, got {self.num_layers!r}")
        if self.qkv_size % self.num_heads:
            raise ValueError(f"MooG transformer qkv_size {self.qkv_size} is not divisible by num_heads {self.num_heads}")
        if self.hidden_size is not None and (not isinstance(self.hidden_size, int) or self.hidden_size < 1):
            raise ValueError(f"MooG transformer hidden_size must be a positive integer or None, got {self.hidden_size!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any], what: str) -> "MooGTransformerSpec":
        return _spec_from_dict(cls, values, what)


@dataclass
class MooGPixelDecoderSpec(MooGTransformerSpec):
    """An SRT-style pixel decoder: per-pixel queries (Fourier features of the pixel grid) attend
    to the tokens of one frame, then a Dense predicts ``output_channels`` per pixel.

    Attributes (besides the transformer's):
        fourier_bases: octaves of the pixel-coordinate Fourier features.
        position_update: ``"concat"`` (zeros of the token width, then the features) or
            ``"project_add"`` (a Dense of the features).
        output_channels: 3 for RGB reconstruction, 1 for depth.
        subsample_factor: in training, decode one pixel in ``factor x factor`` (random-roll
            subsampling, the original's cost saver; 1 = every pixel). Inference decodes every pixel.
        depth_range: depth only; (min, max) metres outside which targets are masked in the loss.
    """

    fourier_bases: int = 16
    position_update: str = "concat"
    output_channels: int = 3
    subsample_factor: int = 8
    depth_range: tuple[float, float] = (0.001, 10.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.position_update not in POSITION_UPDATES:
            raise ValueError(f"position_update must be one of {POSITION_UPDATES}, got {self.position_update!r}")
        for name in ("fourier_bases", "output_channels", "subsample_factor"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"MooG decoder {name} must be a positive integer, got {value!r}")
        self.depth_range = tuple(float(v) for v in self.depth_range)


def _spec_from_dict(cls: type, values: dict[str, Any], what: str):
    if isinstance(values, cls):
        return values
    if not isinstance(values, dict):
        raise TypeError(f"MooGConfig.{what} must be a dict, got {type(values).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"MooGConfig.{what} has unknown fields {unknown}; known: {sorted(known)}")
    try:
        return cls(**values)
    except TypeError as error:  # a missing required field
        raise ValueError(f"MooGConfig.{what}: {error}") from None


def _spec_dict(spec: MooGTransformerSpec) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(spec).items()}


# The released Ego4D architecture (architecture.md section 5, the demo notebook's config).
MOOG_EGO4D: dict[str, Any] = dict(
    hidden_size=512,
    num_tokens=1024,
    encoder_conv_features=[64, 128, 128, 256, 256, 512],
    encoder_kernel_size=3,
    encoder_strides=[2, 1, 1, 2, 1, 1],
    encoder_fourier_bases=20,
    encoder_position_update="concat",
    encoder_transformer=dict(num_layers=0, qkv_size=512, num_heads=8, mlp_size=2048, hidden_size=512),
    predictor=dict(num_layers=3, qkv_size=256, num_heads=4, mlp_size=2048),
    corrector=dict(num_layers=2, qkv_size=512, num_heads=8, mlp_size=2048),
    decoder=dict(num_layers=6, qkv_size=128, num_heads=2, mlp_size=2048, fourier_bases=16, position_update="concat",
                 output_channels=3, subsample_factor=8),
)

# The MOVi dense depth readout (public moog/configs/movi.py: SRTDecoder, cross-attention only).
MOOG_DEPTH_DECODER: dict[str, Any] = dict(
    num_layers=3, qkv_size=512, num_heads=8, mlp_size=2048, cross_attention_only=True,
    fourier_bases=16, position_update="concat", output_channels=1, subsample_factor=8,
)

MOOG_PRESETS: dict[str, dict[str, Any]] = {
    "ego4d": dict(MOOG_EGO4D, num_frames=16, image_size=[128, 128]),
    # The public MOVi training config's architecture knobs on the Ego4D core: strides
    # (1, 1, 1, 2, 1, 2), "project_add" positions (the encoder's Dense then keeps the width: no
    # output projection), a cross-attention-only decoder; 8-frame training clips.
    "movi": dict(
        MOOG_EGO4D,
        num_frames=8,
        image_size=[128, 128],
        encoder_strides=[1, 1, 1, 2, 1, 2],
        encoder_position_update="project_add",
        decoder=dict(MOOG_EGO4D["decoder"], cross_attention_only=True),
    ),
}


class MooGConfig(FourDConfig):
    r"""Configuration of a MooG model (and of its task head, if any).

    The defaults are the released Ego4D architecture (``MooGConfig.from_preset("ego4d")``).

    Args:
        hidden_size (`int`): width D of the state tokens.
        num_tokens (`int`): number N of state tokens.
        num_channels (`int`): input channels (RGB).
        num_frames (`int`): clip length the readout heads are trained on (their temporal
            embedding); the backbone itself runs on any number of frames.
        image_size (`list[int]`): (height, width) of the training clips; informational for the
            backbone (any size works), used by pipelines to resize.
        encoder_conv_features (`list[int]`): output channels of each 3x3 conv of the encoder.
        encoder_kernel_size (`int`): conv kernel size.
        encoder_strides (`list[int]`): stride of each conv (Ego4D (2, 1, 1, 2, 1, 1); MOVi
            (1, 1, 1, 2, 1, 2)). Padding is Flax "SAME" (odd pixel at the bottom/right).
        encoder_fourier_bases (`int`): octaves of the encoder's grid position features.
        encoder_position_update (`str`): ``"concat"`` (Ego4D) or ``"project_add"`` (MOVi).
        encoder_transformer (`dict`): :class:`MooGTransformerSpec` of the encoder's token mixer
            (Ego4D: zero layers, i.e. Dense -> LayerNorm -> Dense).
        predictor (`dict`): :class:`MooGTransformerSpec` of the self-attention core (``predictor_sa``).
        corrector (`dict`): :class:`MooGTransformerSpec` of the core that cross-attends to the
            frame's encoder tokens (``predictor_ca``).
        decoder (`dict`, *optional*): :class:`MooGPixelDecoderSpec` of the reconstruction decoder;
            ``None`` for a backbone without one (it then cannot predict frames).
        depth_decoder (`dict`, *optional*): :class:`MooGPixelDecoderSpec` of the dense depth
            readout of :class:`MooGForDepthEstimation` (default: the MOVi config's).
        state_layer_norm_eps (`float`): epsilon of the state LayerNorm (1e-4 in the original).
        layer_norm_eps (`float`): epsilon of every other norm (Flax default 1e-6).
        initial_state_scale (`float`): std of the random initial state (1e-4).
        initializer_range (`float`): std of the truncated-normal init of fresh weights.
        readout (`dict`, *optional*): the tracking head's :class:`~fourd_hub.readout.ReadoutConfig`.
        preset (`str`, *optional*): the preset this config was made from, informational.
    """

    model_type = "moog"

    hidden_size: int = 512
    num_tokens: int = 1024
    num_channels: int = 3
    num_frames: int = 16
    image_size: list[int] | tuple[int, ...] = (128, 128)
    encoder_conv_features: list[int] | tuple[int, ...] = (64, 128, 128, 256, 256, 512)
    encoder_kernel_size: int = 3
    encoder_strides: list[int] | tuple[int, ...] = (2, 1, 1, 2, 1, 1)
    encoder_fourier_bases: int = 20
    encoder_position_update: str = "concat"
    encoder_transformer: dict | None = None
    predictor: dict | None = None
    corrector: dict | None = None
    decoder: dict | None = dataclasses.field(default_factory=lambda: dict(MOOG_EGO4D["decoder"]))
    depth_decoder: dict | None = None
    state_layer_norm_eps: float = 1e-4
    layer_norm_eps: float = FLAX_NORM_EPS
    initial_state_scale: float = 1e-4
    initializer_range: float = 0.02
    readout: dict | None = None
    preset: str | None = None

    def __post_init__(self, **kwargs):
        for name in ("hidden_size", "num_tokens", "num_channels", "num_frames", "encoder_kernel_size", "encoder_fourier_bases"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"MooGConfig.{name} must be a positive integer, got {value!r}")
        self.image_size = list(check_sequence("image_size", self.image_size, 2))
        features = tuple(self.encoder_conv_features)
        if not features:
            raise ValueError("MooGConfig.encoder_conv_features needs at least one conv")
        self.encoder_conv_features = list(check_sequence("encoder_conv_features", features, len(features)))
        self.encoder_strides = list(check_sequence("encoder_strides", self.encoder_strides, len(features)))
        if self.encoder_position_update not in POSITION_UPDATES:
            raise ValueError(
                f"encoder_position_update must be one of {POSITION_UPDATES}, got {self.encoder_position_update!r}"
            )
        # Sub-specs: validated, stored back as plain dicts (JSON), defaults from the Ego4D preset.
        for name in ("encoder_transformer", "predictor", "corrector"):
            values = getattr(self, name)
            spec = MooGTransformerSpec.from_dict(dict(MOOG_EGO4D[name]) if values is None else values, name)
            setattr(self, name, _spec_dict(spec))
        if self.decoder is not None:
            self.decoder = _spec_dict(MooGPixelDecoderSpec.from_dict(self.decoder, "decoder"))
        if self.depth_decoder is not None:
            self.depth_decoder = _spec_dict(MooGPixelDecoderSpec.from_dict(self.depth_decoder, "depth_decoder"))
        for name in ("state_layer_norm_eps", "layer_norm_eps", "initial_state_scale"):
            if not getattr(self, name) > 0:
                raise ValueError(f"MooGConfig.{name} must be positive, got {getattr(self, name)!r}")
        super().__post_init__(**kwargs)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "MooGConfig":
        """A named architecture: ``"ego4d"`` (released weights) or ``"movi"`` (the public training config's knobs)."""
        if name not in MOOG_PRESETS:
            raise ValueError(f"unknown MooG preset {name!r}; known presets: {', '.join(MOOG_PRESETS)}")
        values = {k: (dict(v) if isinstance(v, dict) else v) for k, v in MOOG_PRESETS[name].items()}
        return cls(**{**values, "preset": name, **overrides})

    def transformer_spec(self, name: str) -> MooGTransformerSpec:
        """The validated spec of ``encoder_transformer``, ``predictor`` or ``corrector``."""
        return MooGTransformerSpec(**getattr(self, name))

    def decoder_spec(self, name: str = "decoder") -> MooGPixelDecoderSpec | None:
        """The validated spec of ``decoder`` or ``depth_decoder`` (the MOVi default for depth)."""
        values = getattr(self, name)
        if values is None and name == "depth_decoder":
            values = MOOG_DEPTH_DECODER
        return None if values is None else MooGPixelDecoderSpec(**values)

    @property
    def encoder_output_size(self) -> int:
        """Width of the encoder tokens (the corrector's key/value input)."""
        conv_out = self.encoder_conv_features[-1]
        return conv_out + 4 * self.encoder_fourier_bases if self.encoder_position_update == "concat" else conv_out

    def readout_config(self, task: str) -> ReadoutConfig:
        return ReadoutConfig.for_task(task, {"num_frames": self.num_frames, **(self.readout or {})})


# The debug preset: a model small enough for CPU tests in milliseconds (H != W on purpose).
MOOG_DEBUG: dict[str, Any] = dict(
    hidden_size=16, num_tokens=8, num_frames=4, image_size=[16, 12],
    encoder_conv_features=[8, 12], encoder_strides=[2, 1], encoder_fourier_bases=3,
    encoder_transformer=dict(num_layers=0, qkv_size=16, num_heads=2, mlp_size=16, hidden_size=16),
    predictor=dict(num_layers=1, qkv_size=8, num_heads=2, mlp_size=24),
    corrector=dict(num_layers=1, qkv_size=16, num_heads=2, mlp_size=24),
    decoder=dict(num_layers=1, qkv_size=8, num_heads=2, mlp_size=24, fourier_bases=2, subsample_factor=4),
    depth_decoder=dict(num_layers=1, qkv_size=8, num_heads=2, mlp_size=24, fourier_bases=2, output_channels=1,
                       cross_attention_only=True, subsample_factor=4),
)


def debug_config(**overrides) -> "MooGConfig":
    """A MooG small enough for CPU tests in milliseconds (the conformance suite and CI use it); H != W on purpose."""
    values: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in MOOG_DEBUG.items()}
    # A small readout of any task (a task model fills in its task; tiling 1 fits any clip length).
    values["readout"] = dict(num_params=16, num_heads=2, temporal_tile_size=1, query_mlp_sizes=[16, 16], query_fourier_bases=4)
    values.update(overrides)
    return MooGConfig(**values)
