"""RVM: Recurrent Video Masked Autoencoders (arXiv 2512.13684), as released in representations4d.

Configuration, tokenizer, encoder, recurrent core, masked-reconstruction decoder, typed outputs and
the task models (masked reconstruction = pretraining; depth, points, boxes, camera pose and
classification with the shared readout heads). Spec: ``../shared/docs/rvm.md`` (sections 2-3 and
the traps of section 7, cited as "trap n" below); the original is the Flax model ``VideoSiamMAE``
of the representations4d RVM notebooks.

Per frame t, with a state S of 1 + N slots (the cls slot, then one per patch, row-major)::

    E_t = encoder([cls, patches_t + position table])      # a ViT on this frame alone
    u   = sigmoid(E_t W_iu + S W_su)                      # update gate (no biases)
    r   = sigmoid(E_t W_ir + S W_sr)                      # reset gate
    H   = transformer(E_t, context = r * LN_state(S))     # cross-attention -> MLP -> self-attention blocks
    S   = (1 - u) * S + u * H                             # = features_t

The initial state is zeros. Passing the returned ``state`` back in continues the video exactly, so
long videos stream in constant memory. The decoder reconstructs heavily masked target frames from
the core outputs of the source frames (``RVMForMaskedVideoReconstruction``).

Input convention (HF): ``pixel_values_videos`` of shape (B, T, C, H, W), float in [0, 1], H and W
multiples of the patch (16). Layouts of the outputs: the state after each frame is
``last_hidden_state`` (B, T, 1 + N, D) (slot 0 = cls); split, ``cls_features`` (B, T, D) and
``patch_features`` (B, T, h, w, D), the grid layout the feature pipeline returns per frame. The
readout heads read the patch features flattened to (B, T, N = h * w, D) (row-major).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.utils import ModelOutput

from ...layers import MLP, Attention, check_video, jax_resize
from ...modeling_utils import FourDPreTrainedModel
from ...readout import (
    DepthReadoutHead,
    ReadoutConfig,
    ReadoutTaskModel,
    RecurrentBoxTrackingOutput,
    RecurrentBoxTrackingTask,
    RecurrentCameraPoseTask,
    RecurrentDepthEstimationTask,
    RecurrentPointTrackingOutput,
    RecurrentPointTrackingTask,
    RecurrentVideoClassificationTask,
    init_module_weights,
)
from ..fourds.modeling_fourds import FourDSBlock, FourDSCameraPoseOutput, FourDSVideoClassificationOutput
from .configuration_rvm import RVMConfig, RVMTransformerSpec


# ----------------------------------------------------------------------------------------------
# Outputs


@dataclass
class RVMModelOutput(ModelOutput):
    r"""Output of :class:`RVMModel`.

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(B, T, 1 + N, D)`): the state after each
            frame, the original's ``features`` (equal to its ``state``): slot 0 is the cls token,
            slots 1.. the patches in row-major (h, w) order.
        cls_features (`torch.FloatTensor` of shape `(B, T, D)`): the cls slot of ``last_hidden_state``.
        patch_features (`torch.FloatTensor` of shape `(B, T, h, w, D)`): the patch slots on the
            patch grid (what the notebooks' ``extract_features`` keeps).
        state (`torch.FloatTensor` of shape `(B, 1 + N, D)`): the state after the last frame; pass it
            as ``initial_state`` of the next chunk to continue the video.
        initial_state (`torch.FloatTensor` of shape `(B, 1 + N, D)`): the state this call started from.
        encoder_hidden_states (`torch.FloatTensor` of shape `(B, T, 1 + N, D)`, *optional*): the
            per-frame encoder tokens (index 0 = cls), with ``output_encoder_tokens=True``.
    """

    last_hidden_state: torch.FloatTensor | None = None
    cls_features: torch.FloatTensor | None = None
    patch_features: torch.FloatTensor | None = None
    state: torch.FloatTensor | None = None
    initial_state: torch.FloatTensor | None = None
    encoder_hidden_states: torch.FloatTensor | None = None

    @property
    def readout_features(self) -> torch.Tensor:
        """(B, T, N, D): the patch features as the readout heads read them (row-major tokens)."""
        return self.patch_features.flatten(2, 3)


@dataclass
class RVMMaskedReconstructionOutput(ModelOutput):
    r"""Output of :class:`RVMForMaskedVideoReconstruction` (the notebook's ``reconstruct``).

    Args:
        loss (`torch.FloatTensor`, *optional*): float32 mean squared error between
            ``reconstruction`` and ``target_frames`` (every pixel, or the masked patches only:
            ``config.reconstruction_loss``).
        reconstruction (`torch.FloatTensor` of shape `(B, Tt, C, H, W)`): the decoded target frames,
            raw (not clipped to [0, 1]: the original's demo clips for display only), H = 16 h.
        mask (`torch.BoolTensor` of shape `(B, Tt, h, w)`): True where a target patch was masked
            (the original's ``mask`` with 1 = masked, without its trailing axis).
        visible_indices (`torch.LongTensor` of shape `(B, Tt, n)`): the visible patches (row-major
            index), in the order they were encoded (the permutation's first ``n``).
        target_frames (`torch.FloatTensor` of shape `(B, Tt, C, H, W)`): the frames reconstructed
            (given, or taken from the clip).
        target_deltas (`torch.LongTensor` of shape `(B, Tt)`, *optional*): the offsets embedded (None: none).
        last_hidden_state (`torch.FloatTensor` of shape `(B, Ts, 1 + N, D)`): core outputs of the
            source frames (the original's ``features``).
        state (`torch.FloatTensor` of shape `(B, 1 + N, D)`): the state after the last source frame.
        initial_state (`torch.FloatTensor` of shape `(B, 1 + N, D)`): the state the sources started from.
    """

    loss: torch.FloatTensor | None = None
    reconstruction: torch.FloatTensor | None = None
    mask: torch.BoolTensor | None = None
    visible_indices: torch.LongTensor | None = None
    target_frames: torch.FloatTensor | None = None
    target_deltas: torch.LongTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None
    state: torch.FloatTensor | None = None
    initial_state: torch.FloatTensor | None = None

    @property
    def predicted_frames(self) -> torch.FloatTensor | None:
        """``reconstruction`` under the reconstruction models' common name (MooG's, :class:`RVMVideoReconstructionOutput`'s)."""
        return self.reconstruction


# The shared readout outputs, with the recurrent protocol's ``state`` (pass it back as
# ``initial_state`` to continue the video).
@dataclass
class RVMPointTrackingOutput(RecurrentPointTrackingOutput):
    r""":class:`~fourd_hub.readout.PointTrackingOutput`, plus ``state`` (`(B, 1 + N, D)`): the state after the last frame."""


@dataclass
class RVMBoxTrackingOutput(RecurrentBoxTrackingOutput):
    r""":class:`~fourd_hub.readout.BoxTrackingOutput`, plus ``state`` (`(B, 1 + N, D)`): the state after the last frame."""


@dataclass
class RVMCameraPoseOutput(FourDSCameraPoseOutput):
    r"""The camera-pose output of 4DS (``loss``, ``pose`` (B, 4, 4), ``raw_pose`` (B, 3, 4)), plus ``state`` (`(B, 1 + N, D)`)."""

    state: torch.FloatTensor | None = None


@dataclass
class RVMVideoClassificationOutput(FourDSVideoClassificationOutput):
    r"""The classification output of 4DS (``loss``, ``logits`` (B, classes)), plus ``state`` (`(B, 1 + N, D)`)."""

    state: torch.FloatTensor | None = None


# ----------------------------------------------------------------------------------------------
# Position tables


def mae_sinusoid_table(num_positions: int, dim: int) -> np.ndarray:
    """``get_mae_sinusoid_encoding_table(n, d)`` of the original: (n, d) float64.

    ``angle[p, k] = p / 10000 ** (2 * (k // 2) / d)``; even channels ``sin``, odd ``cos``. A 1-D
    table over the raster index p (trap 3: not a 2-D sin-cos embedding). Computed in float64 as
    the original's numpy does: the same formula in float32 differs by up to ~2e-5 (16 x 16 grid).
    """
    position = np.arange(num_positions, dtype=np.float64)[:, None]
    channel = np.arange(dim)
    angle = position / np.power(10000.0, (2 * (channel // 2)) / dim)
    return np.where(channel % 2 == 0, np.sin(angle), np.cos(angle))


class RVMPositionTables(nn.Module):
    """The fixed (not learned) 1-D sinusoidal position tables, computed once per grid and cached.

    Args:
        dim: table width.
        base_token_shape: (bh, bw) grid of the original's ``SincosPosEmb(base_token_shape=...)``:
            the table is built for it and resized to other grids; ``None`` (the decoder's
            ``SincosPosEmb()``): built at each grid directly, never resized (trap 3).

    Resizing is ``jax.image.resize(..., "bicubic")`` (:func:`fourd_hub.layers.jax_resize`: Keys
    cubic a = -0.5, half-pixel centres, antialiased when an axis shrinks, in float32), not
    ``F.interpolate(mode="bicubic")`` (a = -0.75, clamped edges, no antialiasing: another
    table). A grid equal to the base grid uses the table unresized (jax skips unchanged axes).
    """

    def __init__(self, dim: int, base_token_shape: tuple[int, int] | None = None):
        super().__init__()
        self.dim = dim
        self.base_token_shape = None if base_token_shape is None else tuple(base_token_shape)
        self._tables: dict[tuple, torch.Tensor] = {}

    def base_table(self) -> torch.Tensor:
        """(bh, bw, dim) float32: the table at the base grid (float64 numpy cast to float32, as the original)."""
        rows, cols = self.base_token_shape
        return torch.from_numpy(mae_sinusoid_table(rows * cols, self.dim).astype(np.float32)).reshape(rows, cols, self.dim)

    def _compute(self, grid: tuple[int, int]) -> torch.Tensor:
        if self.base_token_shape is None:
            rows, cols = grid
            return torch.from_numpy(mae_sinusoid_table(rows * cols, self.dim).astype(np.float32)).reshape(rows, cols, self.dim)
        return jax_resize(self.base_table(), {0: grid[0], 1: grid[1]})

    def forward(self, grid: tuple[int, int], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """(h, w, dim) table of a token grid, on ``device`` in ``dtype`` (cached per grid, device and dtype)."""
        key = (tuple(grid), str(device), dtype)
        table = self._tables.get(key)
        if table is None:
            # Computed on the CPU in float32 (the original's precision), then moved once; never as
            # an inference tensor (under a pipeline's inference_mode), which autograd could not
            # save for backward if the cached table is used in training later.
            with torch.inference_mode(False):
                table = self._compute(tuple(grid)).to(device=device, dtype=dtype)
            if device.type != "meta":
                self._tables[key] = table
        return table


# ----------------------------------------------------------------------------------------------
# Modules


class RVMEmbeddings(nn.Module):
    """The tokenizer of one frame: patch embedding, position table, cls token.

    The original's patch embedding is a 3-D conv with kernel (1, 16, 16) applied to a (B, H, W, 3)
    frame, which Flax treats as one volume whose first axis is B: with kernel 1 along it, a
    per-frame 2-D conv (trap 1). Here it is that very ``Conv3d`` (its 5-D weight is the file's
    kernel transposed) on a (B, C, T, H, W) video: every frame separately, padding VALID (rows and
    columns beyond 16 h, 16 w would be dropped). The position table goes on the patches only; the
    cls token gets none (trap 3).

    Shapes: video (B, T, C, H, W) -> patch tokens (B, T, h, w, D) with their table (:meth:`patches`),
    or frame sequences (B, T, 1 + N, D) with the cls token first (:meth:`forward`).
    """

    def __init__(self, config: RVMConfig):
        super().__init__()
        ph, pw = config.patch_size
        self.patch_size = (ph, pw)
        self.patch_embedding = nn.Conv3d(config.num_channels, config.hidden_size, kernel_size=(1, ph, pw), stride=(1, ph, pw))
        # (1, D) like the original's 2-D parameter (not the notebooks' PyTorch copy's (1, 1, D)).
        self.cls_token = nn.Parameter(torch.zeros(1, config.hidden_size))
        self.position_tables = RVMPositionTables(config.hidden_size, tuple(config.base_token_shape))

    def patch_embeddings(self, pixel_values_videos: torch.Tensor) -> torch.Tensor:
        """The conv output before the position table: (B, T, C, H, W) -> (B, T, h, w, D)."""
        video = pixel_values_videos.transpose(1, 2).to(self.patch_embedding.weight.dtype)  # B C T H W
        return self.patch_embedding(video).permute(0, 2, 3, 4, 1)

    def patches(self, pixel_values_videos: torch.Tensor) -> torch.Tensor:
        """Patch tokens with their position table: (B, T, C, H, W) -> (B, T, h, w, D) (the original's ``tokens``)."""
        tokens = self.patch_embeddings(pixel_values_videos)
        return tokens + self.position_tables(tuple(tokens.shape[2:4]), tokens.device, tokens.dtype)

    def with_cls(self, tokens: torch.Tensor) -> torch.Tensor:
        """Prepend the cls token to token sequences: (..., n, D) -> (..., 1 + n, D)."""
        cls = self.cls_token.to(tokens.dtype).expand(*tokens.shape[:-2], 1, tokens.shape[-1])
        return torch.cat([cls, tokens], dim=-2)

    def forward(self, pixel_values_videos: torch.Tensor) -> torch.Tensor:
        """(B, T, C, H, W) -> (B, T, 1 + N, D): per frame, [cls, patches + table]."""
        return self.with_cls(self.patches(pixel_values_videos).flatten(2, 3))


class RVMEncoder(nn.Module):
    """The original's ``Transformer``: pre-norm ViT blocks, then a final LayerNorm (with bias, eps 1e-6).

    The blocks are 4DS's (:class:`~fourd_hub.models.fourds.modeling_fourds.FourDSBlock`: biased
    attention, tanh-GELU MLP, LayerNorms of epsilon 1e-6), which read the same config fields
    (``hidden_size``, ``num_attention_heads``, ``head_dim``, ``intermediate_size``,
    ``layer_norm_eps``). Self-attention runs over the tokens of one frame only.

    Shapes: (N, L, D) -> (N, L, D), any sequence of [cls, tokens] (all patches, or the visible ones).
    """

    def __init__(self, config: RVMConfig):
        super().__init__()
        self.layers = nn.ModuleList(FourDSBlock(config) for _ in range(config.num_hidden_layers))
        # The original's final norm has Flax's epsilon (its PyTorch copies use 1e-5: trap 10).
        self.final_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            hidden_states = layer(hidden_states)
        return self.final_norm(hidden_states)


class RVMCrossAttentionBlock(GradientCheckpointingLayer):
    """One ``xa_block``: cross-attention -> MLP -> self-attention, each pre-norm with its own LayerNorm.

    This order (trap 4) is not the usual self -> cross -> MLP. Keys and values of the
    cross-attention are the context as given (not normalised here: the core normalises its state
    once, the decoder its source features not at all). Attention width ``num_feats`` may differ
    from the block width; the LayerNorms have the block width (the notebooks' PyTorch copies size
    them with ``num_feats``, which only works when both agree).

    Shapes: hidden_states (N, L, width), context (N, M, width) -> (N, L, width).
    """

    def __init__(self, width: int, spec: RVMTransformerSpec, eps: float):
        super().__init__()
        self.cross_attention_norm = nn.LayerNorm(width, eps=eps)
        self.cross_attention = Attention(width, spec.num_heads, spec.head_dim, context_dim=width, qkv_bias=True)
        self.mlp_norm = nn.LayerNorm(width, eps=eps)
        self.mlp = MLP(width, spec.mlp_size)
        self.attention_norm = nn.LayerNorm(width, eps=eps)
        self.attention = Attention(width, spec.num_heads, spec.head_dim, qkv_bias=True)

    def forward(self, hidden_states: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        hidden_states = hidden_states + self.cross_attention(self.cross_attention_norm(hidden_states), context)
        hidden_states = hidden_states + self.mlp(self.mlp_norm(hidden_states))
        return hidden_states + self.attention(self.attention_norm(hidden_states))


class RVMCrossAttentionTransformer(nn.Module):
    """The original's ``CrossAttentionTransformer``: :class:`RVMCrossAttentionBlock` s, then ``output_norm``.

    Shapes: hidden_states (N, L, width), context (N, M, width) -> (N, L, width).
    """

    def __init__(self, width: int, spec: RVMTransformerSpec, eps: float):
        super().__init__()
        self.layers = nn.ModuleList(RVMCrossAttentionBlock(width, spec, eps) for _ in range(spec.num_layers))
        self.output_norm = nn.LayerNorm(width, eps=eps)

    def forward(self, hidden_states: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            hidden_states = layer(hidden_states, context)
        return self.output_norm(hidden_states)


@dataclass
class RVMCoreStep:
    """One frame of the recurrent core, with its gates (the fixture's ``update_gate`` / ``reset_gate`` / ``candidate``)."""

    state: torch.Tensor
    update_gate: torch.Tensor
    reset_gate: torch.Tensor
    candidate: torch.Tensor


class RVMRecurrentCore(nn.Module):
    """``GatedTransformerCore`` (the paper's RecurBlock): a GRU whose candidate is a cross-attention transformer.

    ``u = sigmoid(E W_iu + S W_su)``, ``r = sigmoid(E W_ir + S W_sr)`` (token-wise Dense layers
    without bias, trap 5), ``H = transformer(E, r * LN_state(S))``, ``S' = (1 - u) S + u H``.
    ``LN_state`` has epsilon 1e-4 and no bias (trap 5); every other LayerNorm 1e-6 with bias.

    Shapes: encoded (B, 1 + N, D), state (B, 1 + N, D) -> state (B, 1 + N, D).
    """

    def __init__(self, config: RVMConfig):
        super().__init__()
        width = config.hidden_size
        self.input_update = nn.Linear(width, width, bias=False)
        self.input_reset = nn.Linear(width, width, bias=False)
        self.state_update = nn.Linear(width, width, bias=False)
        self.state_reset = nn.Linear(width, width, bias=False)
        self.state_norm = nn.LayerNorm(width, eps=config.state_layer_norm_eps, bias=False)
        self.transformer = RVMCrossAttentionTransformer(width, config.core_spec(), config.layer_norm_eps)

    def step(self, encoded: torch.Tensor, state: torch.Tensor) -> RVMCoreStep:
        """One frame, with the gates and the candidate."""
        update = torch.sigmoid(self.input_update(encoded) + self.state_update(state))
        reset = torch.sigmoid(self.input_reset(encoded) + self.state_reset(state))
        # With the zero initial state, LN_state(0) = 0: the first cross-attention sees keys and
        # values equal to their biases (as the original).
        candidate = self.transformer(encoded, reset * self.state_norm(state))
        return RVMCoreStep((1 - update) * state + update * candidate, update, reset, candidate)

    def forward(self, encoded: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return self.step(encoded, state).state


class RVMDecoder(nn.Module):
    """The masked-reconstruction decoder: embedders, mask token, decoder transformer, detokenizer.

    Shapes: see :meth:`forward`.
    """

    def __init__(self, config: RVMConfig):
        super().__init__()
        spec = config.decoder_spec()
        ph, pw = config.patch_size
        self.patch_size = (ph, pw)
        self.num_channels = config.num_channels
        self.num_delta_classes = spec.num_delta_classes
        self.embedder = nn.Linear(config.hidden_size, spec.hidden_size)  # decoder_embedder
        self.delta_embedder = nn.Linear(spec.num_delta_classes, spec.hidden_size)
        self.mask_token = nn.Parameter(torch.zeros(1, spec.hidden_size))
        # The decoder's table: SincosPosEmb() without base shape, built at the grid, never resized.
        self.position_tables = RVMPositionTables(spec.hidden_size)
        self.transformer = RVMCrossAttentionTransformer(spec.hidden_size, spec, config.layer_norm_eps)
        # Each token decodes to one (ph, pw, C) patch, C fastest (the original's Dense_0 layout).
        self.detokenizer = nn.Linear(spec.hidden_size, ph * pw * config.num_channels)

    def delta_embeddings(self, target_deltas: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """``delta_embedder(one_hot(deltas, 64))``: (B, Tt) int -> (B, Tt, Dd)."""
        classes = torch.arange(self.num_delta_classes, device=target_deltas.device)
        one_hot = (target_deltas.unsqueeze(-1) == classes).to(dtype)
        return self.delta_embedder(one_hot)

    def forward(
        self,
        encoded_targets: torch.Tensor,
        visible_indices: torch.Tensor,
        source_features: torch.Tensor,
        grid: tuple[int, int],
        target_deltas: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Decode target frames from their encoded visible tokens and the source frames' core outputs.

        Args:
            encoded_targets: (B, Tt, 1 + n, D): encoder outputs of [cls, visible target tokens],
                the visible ones in ``visible_indices`` order.
            visible_indices: (B, Tt, n) row-major patch indices of the visible tokens.
            source_features: (B, Ts, 1 + N, D): core outputs of every source frame (not only the
                last state; cls slots included, trap 7).
            grid: (h, w) patch grid.
            target_deltas: (B, Tt) integer offsets in [0, num_delta_classes), or None (nothing added).

        Returns:
            (B, Tt, C, h * ph, w * pw) raw pixels.
        """
        batch, frames, visible = encoded_targets.shape[0], encoded_targets.shape[1], visible_indices.shape[-1]
        rows, cols = grid
        num_patches = rows * cols
        embedded = self.embedder(encoded_targets)  # (B, Tt, 1 + n, Dd)
        width = embedded.shape[-1]
        target_cls, tokens = embedded[:, :, :1], embedded[:, :, 1:]
        # Visible tokens back at their positions, the mask token everywhere else (the original
        # concatenates mask tokens and un-shuffles with argsort(perm); a scatter gives the same values).
        mask_tokens = self.mask_token.to(embedded.dtype).expand(batch, frames, num_patches, width)
        index = visible_indices.unsqueeze(-1).expand(batch, frames, visible, width)
        tokens = mask_tokens.scatter(2, index, tokens)
        if target_deltas is not None:
            # One embedding per target frame, on its N tokens (not on the cls slot).
            tokens = tokens + self.delta_embeddings(target_deltas, tokens.dtype).unsqueeze(2)
        table = self.position_tables(grid, tokens.device, tokens.dtype).flatten(0, 1)
        queries = torch.cat([target_cls, tokens + table], dim=2).flatten(0, 1)  # (B*Tt, 1 + N, Dd)
        # Keys/values: all source frames' outputs, flattened over time and slots, the same for
        # every target frame; each target frame is decoded on its own.
        context = self.embedder(source_features).flatten(1, 2)
        context = context.unsqueeze(1).expand(-1, frames, -1, -1).flatten(0, 1)
        decoded = self.transformer(queries, context)[:, 1:]  # drop the target cls slot
        ph, pw = self.patch_size
        pixels = self.detokenizer(decoded).reshape(batch, frames, rows, cols, ph, pw, self.num_channels)
        return pixels.permute(0, 1, 6, 2, 4, 3, 5).reshape(batch, frames, self.num_channels, rows * ph, cols * pw)


# ----------------------------------------------------------------------------------------------
# Models


class RVMPreTrainedModel(FourDPreTrainedModel):
    config_class = RVMConfig
    config: RVMConfig
    base_model_prefix = "rvm"
    main_input_name = "pixel_values_videos"
    input_modalities = "video"
    supports_gradient_checkpointing = True
    _no_split_modules = ["FourDSBlock", "RVMCrossAttentionBlock"]
    _supports_sdpa = True

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, RVMEmbeddings):
            init.trunc_normal_(module.cls_token, std=self.config.initializer_range)
        elif isinstance(module, RVMDecoder):
            init.trunc_normal_(module.mask_token, std=self.config.initializer_range)
        else:
            init_module_weights(module, self.config.initializer_range)


class RVMModel(RVMPreTrainedModel):
    """RVM backbone: tokenizer, per-frame ViT encoder, recurrent core, and the reconstruction decoder.

    Args:
        config: the architecture.
        add_decoder: build the decoder when ``config.decoder`` describes one (task models that
            only read features pass ``False``).

    Example:

    ```python
    >>> import torch
    >>> from fourd_hub import RVMConfig, RVMModel
    >>> model = RVMModel(RVMConfig.from_preset("S")).eval()
    >>> video = torch.rand(1, 4, 3, 256, 256)
    >>> out = model(video)
    >>> out.patch_features.shape, out.state.shape
    (torch.Size([1, 4, 16, 16, 384]), torch.Size([1, 257, 384]))
    >>> more = model(torch.rand(1, 4, 3, 256, 256), initial_state=out.state)  # continue the video
    ```
    """

    def __init__(self, config: RVMConfig, add_decoder: bool = True):
        super().__init__(config)
        self.embeddings = RVMEmbeddings(config)
        self.encoder = RVMEncoder(config)
        self.core = RVMRecurrentCore(config)
        self.decoder = RVMDecoder(config) if add_decoder and config.decoder is not None else None
        self.gradient_checkpointing = False
        self.post_init()

    #: Layout of :meth:`frame_features` per frame (documented by the feature-extraction pipeline).
    frame_features_layout = "(T, h, w, D)"

    def get_input_embeddings(self) -> nn.Module:
        return self.embeddings.patch_embedding

    @property
    def compute_dtype(self) -> torch.dtype:
        """The dtype the layers compute in: the weights' dtype (under FSDP2 mixed precision, the policy's)."""
        return self.core.state_norm.weight.dtype

    def frame_features(self, pixel_values_videos: torch.Tensor, initial_state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The patch slots of the state after each frame, (B, T, h, w, D), and the final state (pass it back to continue).

        The cls slot is dropped, as the notebooks' ``extract_features`` does.
        """
        out = self(pixel_values_videos, initial_state=initial_state, return_dict=True)
        return out.patch_features, out.state

    def initial_state(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        image_size: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """The original's initial state: zeros of shape (B, 1 + N, D) (trap 6).

        The original's ``RandomStateInit`` multiplies its noise by 0; ``generator`` is accepted
        for the recurrent protocol (the pipelines pass a seeded one) and not used.

        Args:
            batch_size: B.
            generator: unused (the state is zeros).
            device, dtype: default: the model's.
            image_size: (H, W) of the frames the state is for (default: ``config.image_size``):
                the state has one slot per patch, plus the cls slot.
        """
        rows, cols = self.config.token_grid(image_size)
        return torch.zeros(
            batch_size, 1 + rows * cols, self.config.hidden_size, device=self.device if device is None else device,
            dtype=dtype or self.compute_dtype,
        )

    def _check_state(self, state: torch.Tensor, batch_size: int, grid: tuple[int, int]) -> torch.Tensor:
        slots, width = 1 + grid[0] * grid[1], self.config.hidden_size
        if not isinstance(state, torch.Tensor):
            raise TypeError(f"initial_state must be a torch.Tensor, got {type(state).__name__}")
        if state.ndim == 2:
            state = state.unsqueeze(0)
        if state.ndim == 3 and state.shape[0] == 1 and batch_size > 1:
            state = state.expand(batch_size, -1, -1)  # the original's batch-1 state, broadcast
        if state.ndim != 3 or tuple(state.shape) != (batch_size, slots, width):
            raise ValueError(
                f"initial_state must have shape (B={batch_size}, 1 + h*w={slots}, D={width}) for frames on a "
                f"{grid[0]}x{grid[1]} patch grid (one slot per patch plus the cls slot), got {tuple(state.shape)}; pass "
                "the `state` returned for the previous chunk of the same video, or model.initial_state(B, image_size=(H, W))"
            )
        if not state.is_floating_point():
            raise TypeError(f"initial_state must be a float tensor, got {state.dtype}")
        if state.device.type != "meta" and not torch.isfinite(state).all():
            raise ValueError("initial_state contains NaN or infinite values")
        return state.to(device=self.device, dtype=self.compute_dtype)

    def validate_video(self, pixel_values_videos: torch.Tensor, name: str = "pixel_values_videos") -> tuple[int, int]:
        """Validate a (B, T, C, H, W) video in [0, 1] with H, W multiples of the patch; returns its (h, w) grid."""
        try:
            check_video(pixel_values_videos, (1, *self.config.patch_size), self.config.num_channels)
        except (TypeError, ValueError) as err:
            if name == "pixel_values_videos":
                raise
            raise type(err)(str(err).replace("pixel_values_videos", name)) from None
        return self.config.token_grid(pixel_values_videos.shape[-2:])

    def start_state(self, initial_state: torch.Tensor | None, batch_size: int, grid: tuple[int, int]) -> torch.Tensor:
        """The state a call starts from: zeros, or ``initial_state`` checked and broadcast to (B, 1 + N, D)."""
        if initial_state is None:
            height, width = grid[0] * self.config.patch_size[0], grid[1] * self.config.patch_size[1]
            return self.initial_state(batch_size, image_size=(height, width))
        return self._check_state(initial_state, batch_size, grid)

    def encode(self, pixel_values_videos: torch.Tensor) -> torch.Tensor:
        """Encoder tokens of every frame (each frame alone): (B, T, C, H, W) -> (B, T, 1 + N, D)."""
        batch, frames = pixel_values_videos.shape[:2]
        tokens = self.embeddings(pixel_values_videos.to(self.compute_dtype))
        return self.encoder(tokens.flatten(0, 1)).unflatten(0, (batch, frames))

    def run_core(self, encoded: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """The core over frames in order: encoded (B, T, 1 + N, D), state (B, 1 + N, D) -> states after each frame (B, T, 1 + N, D)."""
        states = []
        for t in range(encoded.shape[1]):
            state = self.core(encoded[:, t], state)
            states.append(state)
        return torch.stack(states, dim=1)

    def forward(
        self,
        pixel_values_videos: torch.Tensor,
        initial_state: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        output_encoder_tokens: bool = False,
        return_dict: bool | None = None,
        **kwargs,
    ) -> RVMModelOutput | tuple:
        r"""
        Args:
            pixel_values_videos (`torch.FloatTensor` of shape `(B, T, C, H, W)`): RGB in [0, 1], any
                T >= 1; H and W any multiples of the patch (the position table is resized to the grid).
            initial_state (`torch.FloatTensor` of shape `(B, 1 + N, D)`, `(1, 1 + N, D)` or `(1 + N, D)`,
                *optional*): the state to start from, e.g. the ``state`` returned for the previous
                chunk. Default: zeros (the original's).
            generator (`torch.Generator`, *optional*): accepted for the recurrent protocol; unused
                (the initial state is zeros).
            output_encoder_tokens (`bool`): also return the per-frame encoder tokens.
        """
        grid = self.validate_video(pixel_values_videos)
        state = self.start_state(initial_state, pixel_values_videos.shape[0], grid)
        encoded = self.encode(pixel_values_videos)
        states = self.run_core(encoded, state)
        output = RVMModelOutput(
            last_hidden_state=states,
            cls_features=states[:, :, 0],
            patch_features=states[:, :, 1:].unflatten(2, grid),
            state=states[:, -1].clone(),  # a view would keep the whole chunk's states alive while the state is carried
            initial_state=state,
            encoder_hidden_states=encoded if output_encoder_tokens else None,
        )
        return self.finish(output, return_dict)


# ----------------------------------------------------------------------------------------------
# Masked reconstruction (the notebook's ``reconstruct``; the pretraining task)


@dataclass
class RVMVideoReconstructionOutput(ModelOutput):
    r"""Output of :meth:`RVMForMaskedVideoReconstruction.reconstruct_video`: every frame of a video, masked and reconstructed.

    The video-reconstruction pipelines' protocol (shared with MooG's next-frame prediction):
    ``predicted_frames`` and ``state`` (pass it back as ``initial_state`` to continue the video),
    plus ``mask`` for a model that hides part of its input.

    Args:
        predicted_frames (`torch.FloatTensor` of shape `(B, T, C, H, W)`): the decoder's output for
            each frame, raw (not clipped; the demo clips for display and pastes the visible patches back).
        mask (`torch.BoolTensor` of shape `(B, T, h, w)`): True where a patch of the frame was masked
            (hidden from the model), on the patch grid.
        visible_indices (`torch.LongTensor` of shape `(B, T, n)`): each frame's visible patches (row-major).
        target_deltas (`torch.LongTensor` of shape `(B, T)`): each frame's delta embedding: its offset
            from the first of the source frames it was decoded from (= how many there were).
        last_hidden_state (`torch.FloatTensor` of shape `(B, T, 1 + N, D)`): the state after each
            (unmasked) frame, as :class:`RVMModel` returns it.
        state (`torch.FloatTensor` of shape `(B, k, 1 + N, D)`): the core outputs of the last
            ``k <= num_source_frames`` frames, the reconstruction's context; ``state[:, -1]`` is the
            recurrent state after the last frame (:class:`RVMModel`'s ``state``). Pass it as
            ``initial_state`` of the next chunk: the chunks then equal one call.
        initial_state (`torch.FloatTensor` of shape `(B, 1 + N, D)`): the recurrent state this call started from.
    """

    predicted_frames: torch.FloatTensor | None = None
    mask: torch.BoolTensor | None = None
    visible_indices: torch.LongTensor | None = None
    target_deltas: torch.LongTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None
    state: torch.FloatTensor | None = None
    initial_state: torch.FloatTensor | None = None


class RVMForMaskedVideoReconstruction(RVMPreTrainedModel):
    """RVM with its decoder: reconstructs masked target frames from unmasked source frames.

    The source frames run through the encoder and the recurrent core (from ``initial_state``,
    zeros by default). Of each target frame only ``int(N * (1 - masking_ratio))`` patches are
    encoded (with the cls token); the decoder gets them back at their positions among mask
    tokens, plus the target's delta embedding and the decoder's position table, and cross-attends
    to the core outputs of all source frames. The mask is the same for every target frame and
    batch element when drawn (as the original: one permutation), or given.

    Two ways to call it:

    - reconstruction (the notebook's ``reconstruct``): ``pixel_values_videos`` are the source
      frames, ``target_pixel_values_videos`` the targets, ``target_deltas`` their offsets;
    - pretraining (one clip, what the trainer passes): ``pixel_values_videos`` is a clip of
      ``num_frames`` frames; its first ``num_source_frames`` are the sources and
      ``num_target_frames`` frames after them (``target_indices``, drawn when not given) the
      targets, with deltas = their index from the first source frame (the demo's "temporal
      offsets from first source frame"). How the paper samples them is not known here (rvm.md
      section 5: "(secondary) a random gap of 4 to 48 frames"): a recipe sets ``num_frames``.

    :meth:`reconstruct_video` masks and reconstructs every frame of a video from the frames before
    it (the ``video-reconstruction`` pipeline; chunks with the state carried equal one call).

    Every weight is the backbone's (the decoder included): an ``RVMModel`` checkpoint loads it
    whole, and ``model.rvm`` is the backbone.

    Example:

    ```python
    >>> import torch
    >>> from fourd_hub import RVMConfig, RVMForMaskedVideoReconstruction
    >>> model = RVMForMaskedVideoReconstruction(RVMConfig.from_preset("S")).eval()
    >>> sources, targets = torch.rand(1, 4, 3, 256, 256), torch.rand(1, 4, 3, 256, 256)
    >>> out = model(sources, targets, target_deltas=torch.tensor([[4, 5, 6, 7]]), generator=torch.Generator().manual_seed(0))
    >>> out.reconstruction.shape, int((~out.mask[0, 0]).sum())
    (torch.Size([1, 4, 3, 256, 256]), 12)
    ```
    """

    loads_from_base_model = True

    @staticmethod
    def tokens_per_clip(config: RVMConfig) -> int:
        """Tokens the encoder runs on per clip: [cls, N patches] per source frame, [cls, visible patches]
        per target frame (the trainer's tokens/s and MFU)."""
        rows, cols = config.token_grid()
        visible = config.num_visible(rows * cols)
        return config.num_source_frames * (1 + rows * cols) + config.num_target_frames * (1 + visible)

    @staticmethod
    def meta_device_inputs(config: RVMConfig, generator: torch.Generator) -> dict[str, Any]:
        """Inputs to pass when counting FLOPs on the meta device: real CPU mask and target indices."""
        return RVMForMaskedVideoReconstruction.clip_random_inputs(config, generator)

    @staticmethod
    def clip_random_inputs(config: RVMConfig, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Every random input of one training clip, drawn from ``generator`` (CPU tensors, batch of one).

        Pretraining draws them clip by clip from (seed, global sample index), so a clip's inputs do
        not depend on how clips are grouped into micro-batches or ranks.

        Returns:
            ``mask`` (1, N) int64: a permutation of the patches (its first ``int(N * (1 -
            masking_ratio))`` visible); ``target_indices`` (1, num_target_frames) int64: sorted
            distinct frames in [num_source_frames, num_frames): ``forward`` keywords.
        """
        rows, cols = config.token_grid()
        permutation = torch.randperm(rows * cols, generator=generator)
        span = config.num_frames - config.num_source_frames
        if span < config.num_target_frames:
            raise ValueError(
                f"a clip of num_frames={config.num_frames} has {span} frames after its {config.num_source_frames} source "
                f"frames, fewer than num_target_frames={config.num_target_frames}; raise num_frames"
            )
        targets = torch.randperm(span, generator=generator)[: config.num_target_frames].sort().values + config.num_source_frames
        return {"mask": permutation[None], "target_indices": targets[None]}

    def __init__(self, config: RVMConfig):
        if config.decoder is None:
            raise ValueError(
                "RVMForMaskedVideoReconstruction needs a decoder; config.decoder is None (a file without decoder weights): "
                "reconstruct with a model converted from a file that has them (decoder/, decoder_embedder/, ...)"
            )
        super().__init__(config)
        self.rvm = RVMModel(config)
        self.post_init()

    @classmethod
    def from_base_model(cls, model: RVMModel) -> "RVMForMaskedVideoReconstruction":
        """This model around a loaded :class:`RVMModel` (sharing its weights, nothing copied)."""
        if model.decoder is None:
            raise ValueError(
                "this RVM model has no decoder (converted from a file without decoder weights, or built with "
                "add_decoder=False / config.decoder=None), so it cannot reconstruct frames; its features still work"
            )
        with torch.device("meta"):  # the wrapper's own copy of the backbone is replaced, never allocated
            wrapper = cls(model.config)
        wrapper.rvm = model
        return wrapper

    def forward(
        self,
        pixel_values_videos: torch.Tensor,
        target_pixel_values_videos: torch.Tensor | None = None,
        target_deltas: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        initial_state: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        target_indices: torch.Tensor | None = None,
        masking_ratio: float | None = None,
        return_loss: bool = True,
        return_dict: bool | None = None,
        **kwargs,
    ) -> RVMMaskedReconstructionOutput | tuple:
        r"""
        Args:
            pixel_values_videos (`torch.FloatTensor` of shape `(B, Ts, C, H, W)`): RGB in [0, 1]: the
                source frames; or, without ``target_pixel_values_videos``, a whole clip (pretraining).
            target_pixel_values_videos (`torch.FloatTensor` of shape `(B, Tt, C, H, W)`, *optional*):
                the frames to reconstruct (same B, H, W).
            target_deltas (`torch.LongTensor` of shape `(B, Tt)` or `(Tt,)`, *optional*): each target's
                offset from the first source frame, in [0, 64); None: no delta embedding (the
                original's; its demo passes zeros). Clip mode: the target indices.
            mask (`torch.Tensor`, *optional*): which target patches stay visible, either a
                permutation (integer, the original's ``perm``: its first ``n`` entries are visible, in
                that order) of shape `(N,)`, `(B, N)` or `(B, Tt, N)`; or a boolean / 0-1 float mask
                (True / 1 = masked) of shape `(N,)`, `(B, N)`, `(B, Tt, N)`, `(B, Tt, h, w)` or
                `(B, Tt, h, w, 1)` (the original's ``mask`` output). It keeps exactly
                ``n = int(N * (1 - masking_ratio))`` patches. Default: one permutation drawn from
                ``generator`` for every frame and batch element.
            initial_state (`torch.FloatTensor`, *optional*): the state the source frames start from
                (see :meth:`RVMModel.forward`).
            generator (`torch.Generator`, *optional*): draws the default mask (and target indices).
            target_indices (`torch.LongTensor` of shape `(B, Tt)`, *optional*): clip mode only: the
                clip's target frames, in [num_source_frames, T).
            masking_ratio (`float`, *optional*): instead of ``config.masking_ratio``.
            return_loss (`bool`): compute the loss (default True).
        """
        config = self.config
        rvm = self.rvm
        if rvm.decoder is None:
            raise RuntimeError("this RVM model has no decoder weights, so it cannot reconstruct frames")
        if target_pixel_values_videos is None:
            sources, targets, target_deltas, target_indices = self._split_clip(pixel_values_videos, target_deltas, target_indices, generator)
        else:
            if target_indices is not None:
                raise ValueError("target_indices picks targets out of a clip; with target_pixel_values_videos given, drop it")
            sources, targets = pixel_values_videos, target_pixel_values_videos
        grid = rvm.validate_video(sources)
        target_grid = rvm.validate_video(targets, "target_pixel_values_videos")
        if targets.shape[0] != sources.shape[0] or target_grid != grid or targets.shape[-2:] != sources.shape[-2:]:
            raise ValueError(
                f"target frames {tuple(targets.shape)} must have the source frames' batch size and frame size "
                f"{tuple(sources.shape[:1])} x {tuple(sources.shape[-2:])} (B, ..., H, W)"
            )
        batch, num_targets = targets.shape[:2]
        num_patches = grid[0] * grid[1]
        ratio = config.masking_ratio if masking_ratio is None else float(masking_ratio)
        if not 0.0 <= ratio < 1.0:
            raise ValueError(f"masking_ratio must be in [0, 1), got {masking_ratio!r}")
        visible = config.num_visible(num_patches, ratio)
        permutation = self._permutation(mask, batch, num_targets, grid, visible, ratio, generator)
        deltas = self._check_deltas(target_deltas, batch, num_targets)

        # 1. Source frames: encoder and core, from the given state (zeros by default).
        state = rvm.start_state(initial_state, batch, grid)
        features = rvm.run_core(rvm.encode(sources), state)
        # 2-3. Target frames: [cls, visible tokens] only (with their position table; no mask
        # tokens enter the encoder), the visible ones in the permutation's order.
        permutation = permutation.to(features.device)
        visible_indices = permutation[..., :visible]
        tokens = rvm.embeddings.patches(targets.to(rvm.compute_dtype)).flatten(2, 3)  # (B, Tt, N, D)
        tokens = tokens.gather(2, visible_indices.unsqueeze(-1).expand(-1, -1, -1, tokens.shape[-1]))
        encoded_targets = rvm.encoder(rvm.embeddings.with_cls(tokens).flatten(0, 1)).unflatten(0, (batch, num_targets))
        # 4-11. The decoder.
        reconstruction = rvm.decoder(encoded_targets, visible_indices, features, grid, None if deltas is None else deltas.to(features.device))
        masked = torch.ones(batch, num_targets, *grid, dtype=torch.bool, device=features.device)
        masked.view(batch, num_targets, num_patches).scatter_(2, visible_indices, False)
        loss = self._loss(reconstruction, targets, masked) if return_loss else None
        # No output is a view of another (FSDP2 warns about views returned by a wrapped module).
        output = RVMMaskedReconstructionOutput(
            loss=loss, reconstruction=reconstruction, mask=masked, visible_indices=visible_indices.clone(), target_frames=targets,
            target_deltas=deltas, last_hidden_state=features, state=features[:, -1].clone(), initial_state=state,
        )
        return self.finish(output, return_dict)

    def reconstruct_video(
        self,
        pixel_values_videos: torch.Tensor,
        initial_state: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        masking_ratio: float | None = None,
        num_source_frames: int | None = None,
        return_dict: bool | None = None,
    ) -> RVMVideoReconstructionOutput | tuple:
        r"""Mask and reconstruct every frame of a video, each from the frames before it (the demo's
        ``reconstruct``, slid along the video): the video-reconstruction pipelines' protocol.

        Every frame runs unmasked through the encoder and the core, as in :class:`RVMModel` (so
        the states are the features). Frame t is also a target: ``int(N * (1 - masking_ratio))`` of
        its patches (a permutation drawn from ``generator`` per frame, the same for every batch
        element) are encoded, and the decoder reconstructs the frame from them and the core outputs
        of the ``k = min(num_source_frames, frames before t)`` frames before it, with delta ``k``
        (its offset from the first of them). That is ``forward(video[:, t - k:t], video[:, t:t + 1],
        target_deltas=[[k]], mask=...)`` started from the state before frame t - k; frame 4 of a
        video is the demo's first target (4 sources, delta 4). The first frame of a video has no
        frame before it: it is decoded from the state before it (``initial_state``, zeros by
        default) as its one source, delta 1.

        Args:
            pixel_values_videos (`torch.FloatTensor` of shape `(B, T, C, H, W)`): RGB in [0, 1], any T >= 1.
            initial_state (`torch.FloatTensor`, *optional*): where the video starts: None (its
                first frame, zero state), a state `(B, 1 + N, D)` (as :meth:`RVMModel.forward`
                takes; its frame counts as the first one's source), or the ``state`` this method
                returned for the previous chunk, `(B, k, 1 + N, D)` (the context of k frames:
                the chunks then equal one call).
            generator (`torch.Generator`, *optional*): draws the masks, one permutation per frame
                in frame order (the same generator across chunks gives the masks of one call).
            masking_ratio (`float`, *optional*): instead of ``config.masking_ratio``.
            num_source_frames (`int`, *optional*): frames of context, instead of
                ``config.num_source_frames`` (4, the demo's); 1 to ``num_delta_classes - 1``.
        """
        config, rvm = self.config, self.rvm
        if rvm.decoder is None:
            raise RuntimeError("this RVM model has no decoder weights, so it cannot reconstruct frames")
        grid = rvm.validate_video(pixel_values_videos)
        batch, frames = pixel_values_videos.shape[:2]
        num_patches = grid[0] * grid[1]
        ratio = config.masking_ratio if masking_ratio is None else float(masking_ratio)
        if not 0.0 <= ratio < 1.0:
            raise ValueError(f"masking_ratio must be in [0, 1), got {masking_ratio!r}")
        visible = config.num_visible(num_patches, ratio)
        sources = config.num_source_frames if num_source_frames is None else num_source_frames
        classes = rvm.decoder.num_delta_classes
        if isinstance(sources, bool) or not isinstance(sources, int) or not 1 <= sources < classes:
            raise ValueError(
                f"num_source_frames must be an integer from 1 to {classes - 1} (the deltas are one-hot over {classes}), got {sources!r}"
            )
        state, context = self._video_context(initial_state, batch, grid)

        # Every frame unmasked: encoder and core from the given state (the features).
        states = rvm.run_core(rvm.encode(pixel_values_videos), state)
        history = torch.cat([context, states], dim=1)  # the carried context, then this call's frames
        carried = context.shape[1]
        # Every frame as a target: one permutation per frame, its first `visible` entries visible.
        device = generator.device if generator is not None else "cpu"
        permutations = torch.stack([torch.randperm(num_patches, generator=generator, device=device) for _ in range(frames)])
        visible_indices = permutations[:, :visible].to(states.device).unsqueeze(0).expand(batch, -1, -1)
        tokens = rvm.embeddings.patches(pixel_values_videos.to(rvm.compute_dtype)).flatten(2, 3)  # (B, T, N, D)
        tokens = tokens.gather(2, visible_indices.unsqueeze(-1).expand(-1, -1, -1, tokens.shape[-1]))
        encoded = rvm.encoder(rvm.embeddings.with_cls(tokens).flatten(0, 1)).unflatten(0, (batch, frames))

        # Frame t decodes from the core outputs of the (up to) `sources` frames before it; frames
        # with as many sources are decoded together (one decoder call per context length).
        lengths = [min(sources, carried + t) for t in range(frames)]
        pieces: list[torch.Tensor | None] = [None] * frames
        for length in dict.fromkeys(lengths):
            members = [t for t in range(frames) if lengths[t] == length]
            if length == 0:  # the first frame of a video: the state before it is its one source
                contexts = state[:, None, None]
            else:
                contexts = torch.stack([history[:, carried + t - length : carried + t] for t in members], dim=1)
            group = len(members)
            deltas = torch.full((batch * group, 1), max(length, 1), dtype=torch.long, device=states.device)
            decoded = rvm.decoder(
                encoded[:, members].flatten(0, 1).unsqueeze(1), visible_indices[:, members].flatten(0, 1).unsqueeze(1),
                contexts.flatten(0, 1), grid, deltas,
            )
            decoded = decoded[:, 0].unflatten(0, (batch, group))
            for position, t in enumerate(members):
                pieces[t] = decoded[:, position]
        reconstruction = torch.stack(pieces, dim=1)
        masked = torch.ones(batch, frames, *grid, dtype=torch.bool, device=states.device)
        masked.view(batch, frames, num_patches).scatter_(2, visible_indices, False)
        target_deltas = torch.tensor([max(length, 1) for length in lengths], device=states.device).expand(batch, -1).clone()
        output = RVMVideoReconstructionOutput(
            predicted_frames=reconstruction, mask=masked, visible_indices=visible_indices.clone(), target_deltas=target_deltas,
            last_hidden_state=states, state=history[:, -min(sources, history.shape[1]) :].clone(), initial_state=state,
        )
        return self.finish(output, return_dict)

    def _video_context(self, initial_state: torch.Tensor | None, batch: int, grid: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`reconstruct_video`'s start: the recurrent state (B, 1 + N, D) and the carried context (B, k, 1 + N, D), k >= 0."""
        rvm = self.rvm
        if isinstance(initial_state, torch.Tensor) and initial_state.ndim == 4:
            slots, width = 1 + grid[0] * grid[1], self.config.hidden_size
            if initial_state.shape[0] == 1 and batch > 1:
                initial_state = initial_state.expand(batch, -1, -1, -1)
            if initial_state.shape[0] != batch or initial_state.shape[1] < 1 or tuple(initial_state.shape[2:]) != (slots, width):
                raise ValueError(
                    f"a reconstruction context (the `state` reconstruct_video returned) must have shape (B={batch}, k >= 1, "
                    f"1 + h*w={slots}, D={width}) for frames on a {grid[0]}x{grid[1]} patch grid, got {tuple(initial_state.shape)}"
                )
            context = torch.stack([rvm.start_state(initial_state[:, i], batch, grid) for i in range(initial_state.shape[1])], dim=1)
            return context[:, -1], context
        state = rvm.start_state(initial_state, batch, grid)
        return state, state.unsqueeze(1)[:, :0]  # (B, 0, 1 + N, D): no frame before

    def _loss(self, reconstruction: torch.Tensor, targets: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        """float32 L2 over every target pixel, or over the masked patches' pixels (``config.reconstruction_loss``)."""
        squared = (reconstruction.float() - targets.float().to(reconstruction.device)) ** 2
        if self.config.reconstruction_loss == "all":
            return squared.mean()
        ph, pw = self.config.patch_size
        weights = masked.repeat_interleave(ph, dim=2).repeat_interleave(pw, dim=3).unsqueeze(2).float()
        return (squared * weights).sum() / (weights.sum() * squared.shape[2]).clamp(min=1)

    def _split_clip(self, clip, target_deltas, target_indices, generator):
        """Clip mode: (sources, targets, deltas, indices) of one pretraining clip."""
        config = self.config
        if target_deltas is not None:
            raise ValueError(
                "in clip mode (no target_pixel_values_videos) the target deltas are the target indices; drop target_deltas "
                "or pass the target frames"
            )
        self.rvm.validate_video(clip)
        batch, frames = clip.shape[:2]
        sources, num_targets = config.num_source_frames, config.num_target_frames
        if frames < sources + num_targets:
            raise ValueError(
                f"a pretraining clip needs num_source_frames + num_target_frames = {sources + num_targets} frames, got {frames}; "
                "pass longer clips, or the target frames as target_pixel_values_videos"
            )
        if target_indices is None:
            drawn = torch.randperm(frames - sources, generator=generator)[:num_targets].sort().values + sources
            target_indices = drawn.expand(batch, -1)
        if not isinstance(target_indices, torch.Tensor) or target_indices.is_floating_point() or target_indices.dtype == torch.bool:
            raise TypeError(f"target_indices must be an integer tensor, got {getattr(target_indices, 'dtype', type(target_indices).__name__)}")
        if tuple(target_indices.shape) != (batch, num_targets):
            raise ValueError(f"target_indices must have shape (B={batch}, num_target_frames={num_targets}), got {tuple(target_indices.shape)}")
        if target_indices.device.type != "meta" and bool(((target_indices < sources) | (target_indices >= frames)).any()):
            raise ValueError(
                f"target_indices must be frames after the {sources} source frames, in [{sources}, {frames}); got "
                f"{target_indices.tolist()}"
            )
        index = target_indices.to(device=clip.device, dtype=torch.long)
        targets = clip[torch.arange(batch, device=clip.device)[:, None], index]
        return clip[:, :sources], targets, index, target_indices

    def _check_deltas(self, deltas: torch.Tensor | None, batch: int, frames: int) -> torch.Tensor | None:
        if deltas is None:
            return None
        classes = self.rvm.decoder.num_delta_classes
        if not isinstance(deltas, torch.Tensor):
            deltas = torch.as_tensor(deltas)
        if deltas.is_floating_point() or deltas.dtype == torch.bool:
            raise TypeError(f"target_deltas must be integers (frame offsets in [0, {classes})), got {deltas.dtype}")
        if deltas.ndim == 1:
            deltas = deltas.unsqueeze(0).expand(batch, -1)
        if tuple(deltas.shape) != (batch, frames):
            raise ValueError(f"target_deltas must have shape (B={batch}, Tt={frames}) or (Tt,), got {tuple(deltas.shape)}")
        if deltas.device.type != "meta" and bool(((deltas < 0) | (deltas >= classes)).any()):
            bad = deltas[(deltas < 0) | (deltas >= classes)]
            raise ValueError(
                f"target_deltas must be in [0, {classes}) (the decoder's {classes} one-hot classes: each target's offset from the "
                f"first source frame), got {bad.tolist()}; in clip mode the clip must have at most {classes} frames"
            )
        return deltas.long()

    def _permutation(
        self,
        mask: torch.Tensor | None,
        batch: int,
        frames: int,
        grid: tuple[int, int],
        visible: int,
        ratio: float,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """The mask as a (B, Tt, N) permutation whose first ``visible`` entries are the visible patches."""
        num_patches = grid[0] * grid[1]
        if mask is None:
            # One permutation for every frame and batch element, as the original's
            # jax.random.permutation(..., independent=False) (trap 7).
            perm = torch.randperm(num_patches, generator=generator, device=generator.device if generator is not None else "cpu")
            return perm.expand(batch, frames, num_patches)
        if not isinstance(mask, torch.Tensor):
            raise TypeError(f"mask must be a torch.Tensor (a permutation, or a boolean mask with True = masked), got {type(mask).__name__}")
        expected = f"(N={num_patches},), (B={batch}, N), (B, Tt={frames}, N)"
        if mask.is_floating_point() or mask.dtype == torch.bool:
            if mask.ndim == 5 and mask.shape[-1] == 1:
                mask = mask[..., 0]
            if mask.ndim == 4:
                if tuple(mask.shape[-2:]) != tuple(grid):
                    raise ValueError(f"a (B, Tt, h, w) mask must be on the {grid[0]}x{grid[1]} patch grid, got {tuple(mask.shape)}")
                mask = mask.flatten(2, 3)
            mask = self._broadcast(mask, batch, frames, num_patches, f"a boolean mask must have shape {expected}, (B, Tt, h, w) or (B, Tt, h, w, 1)")
            if mask.device.type != "meta":
                if mask.is_floating_point() and not bool(((mask == 0) | (mask == 1)).all()):
                    raise ValueError("a float mask must hold 0 (visible) and 1 (masked) only; pass a permutation for another order")
                kept = (mask == 0).sum(-1)
                if bool((kept != visible).any()):
                    raise ValueError(
                        f"the mask keeps {sorted(set(kept.flatten().tolist()))} of {num_patches} patches visible; masking_ratio "
                        f"{ratio:g} keeps int(N * (1 - ratio)) = {visible}: pass a mask with {visible} visible patches "
                        "(False / 0) per target frame, or set masking_ratio"
                    )
            # Visible first, in raster order (the encoder does not depend on the order of its tokens).
            return torch.argsort((mask != 0).to(torch.int8), dim=-1, stable=True)
        mask = self._broadcast(mask, batch, frames, num_patches, f"a permutation mask must have shape {expected}")
        if mask.device.type != "meta":
            ordered = torch.arange(num_patches, device=mask.device).expand_as(mask)
            if not torch.equal(mask.sort(dim=-1).values, ordered):
                raise ValueError(
                    f"an integer mask is a permutation of the {num_patches} patch indices (its first {visible} visible); this "
                    "one is not (repeated or out-of-range indices). For a mask of 0 / 1 pass a bool or float tensor"
                )
        return mask.long()

    @staticmethod
    def _broadcast(mask: torch.Tensor, batch: int, frames: int, num_patches: int, message: str) -> torch.Tensor:
        if mask.ndim == 1:
            mask = mask[None, None]
        elif mask.ndim == 2:
            mask = mask[:, None]
        if mask.ndim != 3 or mask.shape[-1] != num_patches or mask.shape[0] not in (1, batch) or mask.shape[1] not in (1, frames):
            raise ValueError(f"{message}; got {tuple(mask.shape)}")
        return mask.expand(batch, frames, num_patches)


# ----------------------------------------------------------------------------------------------
# Task models


class _RVMTaskModel(ReadoutTaskModel, RVMPreTrainedModel):
    """An RVM backbone (without its decoder) plus one readout head reading the patch features
    (:class:`~fourd_hub.readout.ReadoutTaskModel`).

    The heads read the patch slots of the state after each frame, (B, T, N, D) row-major (the cls
    slot is not read). Like MooG's task models: ``initial_state=`` in, ``state`` out.
    """

    def build_backbone(self) -> RVMModel:
        return RVMModel(self.config, add_decoder=False)

    def backbone_features(self, pixel_values_videos: torch.Tensor, initial_state: torch.Tensor | None = None) -> RVMModelOutput:
        return self.rvm(pixel_values_videos, initial_state=initial_state, return_dict=True)

    def features_and_state(
        self, pixel_values_videos: torch.Tensor, initial_state: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The patch features, (B, T, N, D), and the state after the last frame, (B, 1 + N, D); ``generator`` is unused
        (the default initial state is zeros). See :meth:`ReadoutTaskModel.features_and_state`."""
        out = self.backbone_features(pixel_values_videos, initial_state)
        return out.readout_features, out.state

    def readout_inputs(self, pixel_values_videos: torch.Tensor, initial_state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """What the head reads, (B, T, N, D), and the state after each frame, (B, T, 1 + N, D): the pipelines' protocol."""
        out = self.backbone_features(pixel_values_videos, initial_state)
        return out.readout_features, out.last_hidden_state


class RVMForDepthEstimation(RecurrentDepthEstimationTask, _RVMTaskModel):
    """RVM + dense depth readout (the shared attention readout), one frame's state at a time.

    The head reads the patch features of one frame (``num_frames`` 1, one learned query per
    (1, 8, 8) output patch at ``config.image_size``): depth of frame t comes from the state after
    frame t, so a video streams through chunks of any length with the state carried.
    """

    def build_head(self, readout: ReadoutConfig) -> nn.Module:
        if readout.num_frames != 1 or readout.decoding_patch_size[0] != 1:
            raise ValueError(
                f"RVM's depth head reads one frame's state at a time: readout num_frames must be 1 and decoding_patch_size "
                f"(1, h, w); got num_frames={readout.num_frames}, decoding_patch_size={list(readout.decoding_patch_size)}"
            )
        return DepthReadoutHead(readout, self.config.hidden_size, 1, self.config.image_size)

    def check_depth_video(self, pixel_values_videos: torch.Tensor) -> None:
        """The frames must have the head's (H, W) (``config.image_size``); any T."""
        if pixel_values_videos.ndim == 5 and tuple(pixel_values_videos.shape[-2:]) != tuple(self.head.image_size):
            height, width = self.head.image_size
            raise ValueError(
                f"this depth head predicts {height}x{width} frames; got frames of {tuple(pixel_values_videos.shape[-2:])}. "
                "Resize the video (the pipeline does this for you)"
            )

    def predict_depth(self, features: torch.Tensor) -> torch.Tensor:
        """The head on each frame's features alone: (B, T, N, D) -> (B, T, H, W)."""
        batch, frames = features.shape[:2]
        return self.head(features.flatten(0, 1).unsqueeze(1))[:, 0].unflatten(0, (batch, frames))


class RVMForPointTracking(RecurrentPointTrackingTask, _RVMTaskModel):
    """RVM + point-tracking readout (shared with 4DS and MooG: Fourier query embedding, temporal tiling)."""

    output_class = RVMPointTrackingOutput


class RVMForBoxTracking(RecurrentBoxTrackingTask, _RVMTaskModel):
    """RVM + box-tracking readout (one query per box predicts all frames)."""

    output_class = RVMBoxTrackingOutput


class RVMForCameraPoseEstimation(RecurrentCameraPoseTask, _RVMTaskModel):
    """RVM + relative camera pose readout (first and last frame of the clip, Procrustes to SO(3))."""

    output_class = RVMCameraPoseOutput


class RVMForVideoClassification(RecurrentVideoClassificationTask, _RVMTaskModel):
    """RVM + classification readout (one learned query over the clip's patch features).

    The number of classes comes from ``config.num_labels`` / ``config.id2label``.
    """

    output_class = RVMVideoClassificationOutput


__all__ = [
    "RVMBoxTrackingOutput",
    "RVMCameraPoseOutput",
    "RVMForBoxTracking",
    "RVMForCameraPoseEstimation",
    "RVMForDepthEstimation",
    "RVMForMaskedVideoReconstruction",
    "RVMForPointTracking",
    "RVMForVideoClassification",
    "RVMMaskedReconstructionOutput",
    "RVMModel",
    "RVMModelOutput",
    "RVMPointTrackingOutput",
    "RVMPreTrainedModel",
    "RVMVideoClassificationOutput",
    "RVMVideoReconstructionOutput",
    "mae_sinusoid_table",
]

