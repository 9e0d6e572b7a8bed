"""4DS: the video-MAE ViT family of "Scaling 4D Representations" (arXiv 2412.15212).

Configuration, backbone, typed outputs and the task models (depth, points, boxes, camera pose,
classification) built from the shared readout heads. Spec: architecture.md sections 3 and 4.

Input convention (HF): ``pixel_values_videos`` of shape (B, T, C, H, W), float in [0, 1],
no mean/std normalisation. Pixel coordinates at the API are continuous, (x, y) order, with
(0, 0) the top-left corner of the image and pixel centres at +0.5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.utils import ModelOutput

from ...layers import MLP, Attention, check_video, jax_resize
from ...modeling_utils import FourDPreTrainedModel
from ...readout import (
    BoxTrackingOutput,
    BoxTrackingTask,
    CameraPoseTask,
    DepthEstimationOutput,
    DepthEstimationTask,
    DepthReadoutHead,
    PointTrackingOutput,
    PointTrackingTask,
    ReadoutConfig,
    ReadoutTaskModel,
    VideoClassificationTask,
    init_module_weights,
)
from .configuration_fourds import FourDSConfig, readout_feature_index


# ----------------------------------------------------------------------------------------------
# Outputs


@dataclass
class FourDSModelOutput(ModelOutput):
    r"""Output of :class:`FourDSModel`.

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(B, N, D)`): output of the last block,
            N = (T / pt) * (H / ph) * (W / pw) tokens in (t, h, w) raster order. No final norm.
            None when the forward stopped after the readout block (``stop_at_readout=True``).
        readout_features (`torch.FloatTensor` of shape `(B, T, n, D)`): the features readouts read:
            ``features[readout_feature_index(L + 1, readout_depth)]`` reshaped to
            (B, T / pt, n = h * w, D) and resized along time to T frames with jax's cubic resize
            (the original ``EncoderToReadout``).
        features (`tuple(torch.FloatTensor)`, *optional*): the original's list, returned with
            ``output_features=True``: length L + 1, entry 0 = patch embedding + position
            embedding, entry i >= 1 = the *input* of block i - 1. Entries 0 and 1 are equal and the
            last block's output is not in it (it is ``last_hidden_state``).
        hidden_states (`tuple(torch.FloatTensor)`, *optional*): the transformers convention, with
            ``output_hidden_states=True``: embeddings, then the output of every block (length L + 1).
    """

    last_hidden_state: torch.FloatTensor | None = None
    readout_features: torch.FloatTensor | None = None
    features: tuple[torch.FloatTensor, ...] | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


# The depth and tracking outputs are shared with MooG (readout.py); the 4DS names stay as aliases.
FourDSDepthEstimationOutput = DepthEstimationOutput
FourDSPointTrackingOutput = PointTrackingOutput
FourDSBoxTrackingOutput = BoxTrackingOutput


@dataclass
class FourDSCameraPoseOutput(ModelOutput):
    r"""Args:
    loss (`torch.FloatTensor`, *optional*): L2 on the 3x4 pose matrix when labels are given.
    pose (`torch.FloatTensor` of shape `(B, 4, 4)`): last frame relative to the first, rotation
        projected to SO(3).
    raw_pose (`torch.FloatTensor` of shape `(B, 3, 4)`): the head's 12 outputs before projection.
    """

    loss: torch.FloatTensor | None = None
    pose: torch.FloatTensor | None = None
    raw_pose: torch.FloatTensor | None = None


@dataclass
class FourDSVideoClassificationOutput(ModelOutput):
    r"""Args:
    loss (`torch.FloatTensor`, *optional*): cross-entropy when labels are given.
    logits (`torch.FloatTensor` of shape `(B, num_labels)`).
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None


# ----------------------------------------------------------------------------------------------
# Modules


class FourDSEmbeddings(nn.Module):
    """Conv3d tubelet embedding plus a learned (t, h, w, D) position embedding.

    The position embedding is resampled (jax cubic resize, per axis) when the token grid differs
    from the training grid; at the native grid it is used as is.
    """

    def __init__(self, config: FourDSConfig):
        super().__init__()
        self.patch_size = tuple(config.patch_size)
        self.patch_embedding = nn.Conv3d(
            config.num_channels, config.hidden_size, kernel_size=self.patch_size, stride=self.patch_size
        )
        self.position_embedding = nn.Parameter(torch.zeros(*config.token_grid, config.hidden_size))

    def resampled_position_embedding(self, grid: tuple[int, int, int]) -> torch.Tensor:
        """Position embedding for a (t, h, w) token grid: (t, h, w, D)."""
        table = self.position_embedding
        return jax_resize(table, {axis: size for axis, size in enumerate(grid)})

    def forward(self, pixel_values_videos: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        video = pixel_values_videos.transpose(1, 2).to(self.patch_embedding.weight.dtype)  # B C T H W
        tokens = self.patch_embedding(video)  # B D t h w
        grid = tuple(tokens.shape[2:])
        tokens = tokens.permute(0, 2, 3, 4, 1) + self.resampled_position_embedding(grid)
        return tokens.flatten(1, 3), grid


class FourDSBlock(GradientCheckpointingLayer):
    """Pre-norm block: ``x += Attn(LN(x)); x += MLP(LN(x))`` (biased attention, no q/k norm)."""

    def __init__(self, config: FourDSConfig):
        super().__init__()
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = Attention(config.hidden_size, config.num_attention_heads, config.head_dim, qkv_bias=True)
        self.mlp_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = MLP(config.hidden_size, config.intermediate_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = hidden_states + self.attention(self.attention_norm(hidden_states))
        return hidden_states + self.mlp(self.mlp_norm(hidden_states))


class FourDSPreTrainedModel(FourDPreTrainedModel):
    config_class = FourDSConfig
    config: FourDSConfig
    base_model_prefix = "fourds"
    main_input_name = "pixel_values_videos"
    input_modalities = "video"
    supports_gradient_checkpointing = True
    _no_split_modules = ["FourDSBlock"]
    _supports_sdpa = True

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, FourDSEmbeddings):
            init.trunc_normal_(module.position_embedding, std=self.config.initializer_range)
        elif isinstance(module, FourDSLatentDecoder):
            init.trunc_normal_(module.latent_tokens, std=self.config.initializer_range)
        else:
            init_module_weights(module, self.config.initializer_range)


class FourDSModel(FourDSPreTrainedModel):
    """The 4DS backbone: tubelet embedding, position embedding, ``num_hidden_layers`` pre-norm blocks.

    Example:

    ```python
    >>> import torch
    >>> from fourd_hub import FourDSConfig, FourDSModel
    >>> model = FourDSModel(FourDSConfig.from_preset("S")).eval()
    >>> video = torch.rand(1, 16, 3, 224, 224)
    >>> out = model(video)
    >>> out.last_hidden_state.shape, out.readout_features.shape
    (torch.Size([1, 1568, 384]), torch.Size([1, 16, 196, 384]))
    ```
    """

    # A FourDSForPreTraining checkpoint holds the backbone plus the latent decoder; loading its
    # backbone alone is the intended use, not a mismatch worth a warning.
    _keys_to_ignore_on_load_unexpected = [r"^decoder\."]

    def __init__(self, config: FourDSConfig):
        super().__init__(config)
        self.embeddings = FourDSEmbeddings(config)
        self.layers = nn.ModuleList(FourDSBlock(config) for _ in range(config.num_hidden_layers))
        self.gradient_checkpointing = False
        self.post_init()

    #: Layout of :meth:`frame_features` per frame (documented by the feature-extraction pipeline).
    frame_features_layout = "(T, h, w, D)"

    def get_input_embeddings(self) -> nn.Module:
        return self.embeddings.patch_embedding

    def frame_features(self, pixel_values_videos: torch.Tensor, initial_state: None = None) -> tuple[torch.Tensor, None]:
        """Per-frame features on the patch grid, (B, T, h, w, D), and no state (4DS is not recurrent).

        The readout features (``readout_depth``) at the video's own patch grid.
        """
        # Only the readout features are returned: the blocks after the one they read are skipped.
        features = self(pixel_values_videos, stop_at_readout=True, return_dict=True).readout_features
        grid = (pixel_values_videos.shape[-2] // self.config.patch_size[1], pixel_values_videos.shape[-1] // self.config.patch_size[2])
        return features.unflatten(2, grid), None

    def forward(
        self,
        pixel_values_videos: torch.Tensor,
        readout_depth: float | None = None,
        compute_readout_features: bool = True,
        output_features: bool = False,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        stop_at_readout: bool = False,
        **kwargs,
    ) -> FourDSModelOutput | tuple:
        r"""
        Args:
            pixel_values_videos (`torch.FloatTensor` of shape `(B, T, C, H, W)`): RGB in [0, 1].
                T, H and W must be multiples of the patch size; other sizes than the training
                clip's are served by resampling the position embedding.
            readout_depth (`float`, *optional*): overrides ``config.readout_depth``.
            compute_readout_features (`bool`): compute ``readout_features`` (default True).
            output_features (`bool`): return the original's per-layer feature list.
            output_hidden_states (`bool`, *optional*): return transformers-style hidden states.
            stop_at_readout (`bool`): run only the blocks ``readout_features`` depends on (the
                task models and :meth:`frame_features` do: for 4DS-B at ``readout_depth=0.95``
                10 of 12 blocks, for 4DS-e 52 of 56) and return ``last_hidden_state=None``.
                ``readout_features`` are bit-identical to a full run. Ignored (every block runs)
                when ``output_features`` / ``output_hidden_states`` ask for all blocks or
                ``compute_readout_features`` is False.

        Returns:
            :class:`FourDSModelOutput` (or a tuple with ``return_dict=False``).
        """
        check_video(pixel_values_videos, self.config.patch_size, self.config.num_channels)
        output_hidden_states = bool(output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states)
        readout_depth = self.config.readout_depth if readout_depth is None else readout_depth
        num_frames = pixel_values_videos.shape[1]

        hidden_states, grid = self.embeddings(pixel_values_videos)
        readout_index = readout_feature_index(len(self.layers) + 1, readout_depth) if compute_readout_features else None
        # The original list: [embeddings, input of block 0, input of block 1, ..., input of block L-1].
        features = [hidden_states] if output_features else None
        outputs = [hidden_states] if output_hidden_states else None
        readout_tokens = hidden_states if readout_index == 0 else None
        layers = self.layers
        stop_early = stop_at_readout and readout_index is not None and not output_features and not output_hidden_states
        if stop_early:
            # features[k] (k >= 1) is the input of block k - 1, i.e. the output of block k - 2: the
            # readout needs blocks 0 .. k - 2 only (none for k <= 1). Nothing after them is returned.
            layers = layers[: max(readout_index - 1, 0)]
        for i, layer in enumerate(layers):
            if features is not None:
                features.append(hidden_states)
            if readout_index == i + 1:
                readout_tokens = hidden_states
            hidden_states = layer(hidden_states)
            if outputs is not None:
                outputs.append(hidden_states)
        if stop_early and readout_index >= 1:
            # The loop ended before block readout_index - 1, whose input is the readout token set.
            readout_tokens = hidden_states

        readout_features = None
        if readout_tokens is not None:
            t, h, w = grid
            readout_features = readout_tokens.reshape(readout_tokens.shape[0], t, h * w, -1)
            readout_features = jax_resize(readout_features, {1: num_frames})

        output = FourDSModelOutput(
            last_hidden_state=None if stop_early else hidden_states,
            readout_features=readout_features,
            features=tuple(features) if features is not None else None,
            hidden_states=tuple(outputs) if outputs is not None else None,
        )
        return self.finish(output, return_dict)


# ----------------------------------------------------------------------------------------------
# Pretraining (masked auto-encoding with a latent decoding grid, section 3.1 / Table 4)


@dataclass
class FourDSPreTrainingOutput(ModelOutput):
    r"""Output of :class:`FourDSForPreTraining`.

    Args:
        loss (`torch.FloatTensor`, *optional*): float32 mean squared error between the
            reconstruction and the input's raw RGB over every patch, masked and visible (no target
            normalisation).
        reconstruction (`torch.FloatTensor` of shape `(B, T, C, H, W)`): the decoded video.
        mask (`torch.BoolTensor` of shape `(B, N)`): True where a patch was dropped (masked).
        visible_indices (`torch.LongTensor` of shape `(B, n)`): the kept patches, in raster order.
    """

    loss: torch.FloatTensor | None = None
    reconstruction: torch.FloatTensor | None = None
    mask: torch.BoolTensor | None = None
    visible_indices: torch.LongTensor | None = None


def random_patch_mask(
    batch_size: int, num_patches: int, mask_ratio: float, generator: torch.Generator | None = None, device=None
) -> torch.Tensor:
    """Uniformly random masking of ``int(N * mask_ratio)`` patches per video (no tube masking).

    The noise is drawn on ``generator``'s device (CPU by default), so a seeded generator gives the
    same mask on every machine. Returns (B, N) bool, True = masked.
    """
    num_masked = min(int(num_patches * mask_ratio), num_patches - 1)  # keep at least one patch
    noise = torch.rand(batch_size, num_patches, generator=generator, device=generator.device if generator is not None else "cpu")
    ranks = noise.argsort(dim=1).argsort(dim=1)
    return (ranks < num_masked).to(device)


class FourDSLatentDecoder(nn.Module):
    """The learned grid of latent decoding tokens and the patchwise linear decoder.

    Each latent token is mapped by one Linear to a (pt, ph, pw, C) RGB patch; the patches tile the
    clip. Shapes: ``tokens()`` (G, D) with G = t * h * w; ``forward`` (B, G, D) -> (B, T, C, H, W).
    """

    def __init__(self, config: FourDSConfig):
        super().__init__()
        self.grid = config.decoding_grid
        self.patch_size = config.decoder_patch_size
        self.num_channels = config.num_channels
        self.latent_tokens = nn.Parameter(torch.zeros(*self.grid, config.hidden_size))
        self.to_pixels = nn.Linear(config.hidden_size, self.num_channels * math.prod(self.patch_size))

    def tokens(self) -> torch.Tensor:
        return self.latent_tokens.flatten(0, 2)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        (t, h, w), (pt, ph, pw), channels = self.grid, self.patch_size, self.num_channels
        patches = self.to_pixels(latents).reshape(latents.shape[0], t, h, w, pt, ph, pw, channels)
        video = patches.permute(0, 1, 4, 7, 2, 5, 3, 6)  # B t pt C h ph w pw
        return video.reshape(latents.shape[0], t * pt, channels, h * ph, w * pw)


class FourDSForPreTraining(FourDSPreTrainedModel):
    """4DS masked auto-encoding, as pretrained (paper section 3.1, Table 4).

    ``mask_ratio`` (95%) of the space-time patches are dropped at random; the visible ones go
    through the blocks; before the last ``num_decoder_layers`` blocks a learned grid of latent
    decoding tokens is concatenated to them; each latent token is decoded to one RGB patch by a
    single Linear, and the loss is the L2 between the reconstruction of *all* patches and the raw
    input RGB. There is no separate decoder: downstream, the backbone (``model.fourds``) is used
    alone, and ``FourDSModel.from_pretrained`` of a saved pretraining model loads it.

    Example:

    ```python
    >>> import torch
    >>> from fourd_hub import FourDSConfig, FourDSForPreTraining
    >>> model = FourDSForPreTraining(FourDSConfig.from_preset("S"))
    >>> out = model(torch.rand(2, 16, 3, 224, 224), generator=torch.Generator().manual_seed(0))
    >>> out.loss.backward()
    >>> out.reconstruction.shape, int((~out.mask).sum(1)[0])
    (torch.Size([2, 16, 3, 224, 224]), 79)
    ```
    """

    @staticmethod
    def tokens_per_clip(config: FourDSConfig) -> int:
        """Input tokens of one clip: the space-time patches (the trainer's tokens/s and MFU)."""
        return math.prod(config.token_grid)

    @staticmethod
    def meta_device_inputs(config: FourDSConfig, generator: torch.Generator) -> dict[str, Any]:
        """Inputs to pass when counting FLOPs on the meta device: a real mask (its patch count is data-dependent)."""
        return {"mask": random_patch_mask(1, math.prod(config.token_grid), config.mask_ratio, generator)}

    @staticmethod
    def clip_random_inputs(config: FourDSConfig, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Every random input of one training clip, drawn from ``generator``: its ``mask`` (1, N) bool.

        Pretraining draws it clip by clip from (seed, global sample index), so a clip's mask does
        not depend on how clips are grouped into micro-batches or ranks.
        """
        return {"mask": random_patch_mask(1, math.prod(config.token_grid), config.mask_ratio, generator)}

    def __init__(self, config: FourDSConfig):
        if config.num_decoder_layers > config.num_hidden_layers:
            raise ValueError(
                f"num_decoder_layers ({config.num_decoder_layers}) cannot exceed num_hidden_layers "
                f"({config.num_hidden_layers}): the latent grid joins before the last num_decoder_layers blocks"
            )
        super().__init__(config)
        self.fourds = FourDSModel(config)
        self.decoder = FourDSLatentDecoder(config)
        self.post_init()

    def forward(
        self,
        pixel_values_videos: torch.Tensor,
        mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> FourDSPreTrainingOutput | tuple:
        r"""
        Args:
            pixel_values_videos (`torch.FloatTensor` of shape `(B, T, C, H, W)`): RGB in [0, 1], of
                the training clip size (``num_frames`` x ``image_size``: the decoding grid is tied to it).
            mask (`torch.BoolTensor` of shape `(B, N)`, *optional*): True = dropped patch, the same
                number per video. Default: :func:`random_patch_mask` with ``config.mask_ratio``.
            generator (`torch.Generator`, *optional*): seeds the default mask (reproducible runs).
        """
        config = self.config
        check_video(pixel_values_videos, config.patch_size, config.num_channels)
        clip = (config.num_frames, *config.image_size)
        if tuple(pixel_values_videos.shape[1:2]) + tuple(pixel_values_videos.shape[3:]) != clip:
            raise ValueError(
                f"pretraining needs clips of the configured size {clip[0]}x{clip[1]}x{clip[2]} (T x H x W), got "
                f"{tuple(pixel_values_videos.shape)}: the latent decoding grid is tied to it; crop/resize the clips "
                "or set num_frames / image_size"
            )
        tokens, _ = self.fourds.embeddings(pixel_values_videos)
        batch, num_patches, width = tokens.shape
        if mask is None:
            mask = random_patch_mask(batch, num_patches, config.mask_ratio, generator, tokens.device)
        num_visible = self._check_mask(mask, batch, num_patches)
        mask = mask.to(tokens.device)
        # A stable sort puts the kept patches first, in raster order.
        visible_indices = torch.argsort(mask.to(torch.int8), dim=1, stable=True)[:, :num_visible]
        hidden_states = tokens.gather(1, visible_indices.unsqueeze(-1).expand(-1, -1, width))

        split = len(self.fourds.layers) - config.num_decoder_layers
        for layer in self.fourds.layers[:split]:
            hidden_states = layer(hidden_states)
        latents = self.decoder.tokens().to(hidden_states.dtype).expand(batch, -1, -1)
        hidden_states = torch.cat([hidden_states, latents], dim=1)
        for layer in self.fourds.layers[split:]:
            hidden_states = layer(hidden_states)
        reconstruction = self.decoder(hidden_states[:, num_visible:])
        # L2 on raw RGB, in float32 whatever the compute dtype.
        loss = nn.functional.mse_loss(reconstruction.float(), pixel_values_videos.float())
        output = FourDSPreTrainingOutput(loss=loss, reconstruction=reconstruction, mask=mask, visible_indices=visible_indices)
        return self.finish(output, return_dict)

    @staticmethod
    def _check_mask(mask: torch.Tensor, batch: int, num_patches: int) -> int:
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            raise TypeError(f"mask must be a bool tensor (True = masked), got {getattr(mask, 'dtype', type(mask).__name__)}")
        if tuple(mask.shape) != (batch, num_patches):
            raise ValueError(f"mask must have shape (B={batch}, N={num_patches}), got {tuple(mask.shape)}")
        visible = (~mask).sum(dim=1)
        if bool((visible != visible[0]).any()) or int(visible[0]) == 0:
            raise ValueError(
                f"every video must keep the same, non-zero number of patches; got {visible.tolist()} visible"
            )
        return int(visible[0])


# ----------------------------------------------------------------------------------------------
# Task models: the shared task mixins of readout.py on the 4DS backbone.


class _FourDSTaskModel(ReadoutTaskModel, FourDSPreTrainedModel):
    """A 4DS backbone plus one readout head (:class:`~fourd_hub.readout.ReadoutTaskModel`): the
    heads read ``readout_features`` (B, T, N, D). 4DS has no state: its task forwards take no
    ``initial_state`` and return none."""

    def build_backbone(self) -> FourDSModel:
        return FourDSModel(self.config)

    def backbone_features(self, pixel_values_videos: torch.Tensor) -> torch.Tensor:
        """The readout features, (B, T, N, D): the heads read nothing else, so the backbone stops
        after the block they come from (``stop_at_readout``; bit-identical to a full run)."""
        return self.fourds(pixel_values_videos, stop_at_readout=True, return_dict=True).readout_features

    def features_and_state(self, pixel_values_videos: torch.Tensor, initial_state: None = None, generator: None = None) -> tuple[torch.Tensor, None]:
        """The readout features, (B, T, N, D), and no state (see :meth:`ReadoutTaskModel.features_and_state`)."""
        return self.backbone_features(pixel_values_videos), None

    def readout_inputs(self, pixel_values_videos: torch.Tensor, initial_state: None = None) -> tuple[torch.Tensor, None]:
        """What the head reads, (B, T, N, D), and no state (4DS is not recurrent): the pipelines' protocol."""
        return self.features_and_state(pixel_values_videos)


class FourDSForDepthEstimation(DepthEstimationTask, _FourDSTaskModel):
    """4DS + dense depth readout (ScanNet head: 2x8x8 patches, 1024 params, 16 heads).

    The head is tied to the (T, H, W) of ``config`` (one learned query per output patch).
    """

    output_class = FourDSDepthEstimationOutput

    def build_head(self, readout: ReadoutConfig) -> nn.Module:
        return DepthReadoutHead(readout, self.config.hidden_size, self.config.num_frames, self.config.image_size)

    def check_depth_video(self, pixel_values_videos: torch.Tensor) -> None:
        """The video must have the head's (T, H, W)."""
        expected = (self.head.num_frames, *self.head.image_size)
        got = (pixel_values_videos.shape[1], *pixel_values_videos.shape[-2:]) if pixel_values_videos.ndim == 5 else None
        if got is not None and got != expected:
            raise ValueError(
                f"this depth head predicts {expected[0]} frames at {expected[1]}x{expected[2]} (T, H, W = {expected}); "
                f"got a video of (T, H, W) = {got}. Resize or crop the clip (the pipeline does this for you)."
            )

    def predict_depth(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)


class FourDSForPointTracking(PointTrackingTask, _FourDSTaskModel):
    """4DS + point-tracking readout (Fourier query embedding, 8-fold temporal tiling)."""

    output_class = FourDSPointTrackingOutput


class FourDSForBoxTracking(BoxTrackingTask, _FourDSTaskModel):
    """4DS + box-tracking readout (one query per box, all frames from it)."""

    output_class = FourDSBoxTrackingOutput


class FourDSForCameraPoseEstimation(CameraPoseTask, _FourDSTaskModel):
    """4DS + relative camera pose readout (first and last frame, Procrustes to SO(3))."""

    output_class = FourDSCameraPoseOutput


class FourDSForVideoClassification(VideoClassificationTask, _FourDSTaskModel):
    """4DS + classification readout (one learned query; SSv2: 768 params, 12 heads, 174 classes).

    The number of classes comes from ``config.num_labels`` / ``config.id2label``.
    """

    output_class = FourDSVideoClassificationOutput
