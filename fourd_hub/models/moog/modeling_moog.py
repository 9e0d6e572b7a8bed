"""MooG: "Moving Off-the-Grid" recurrent video tokens (arXiv 2411.05927), as released for Ego4D.

Configuration, encoder, recurrent core, pixel decoder, typed outputs and the task models (next-frame
prediction, point and box tracking with the shared readout heads, SRT-style dense depth).
Spec: architecture.md section 5; the original is the Flax code of the representations4d MooG demo
notebook (module names in comments) and its public ``moog/`` package (the MOVi variations).

Per frame t, with a state S of ``num_tokens`` tokens of width ``hidden_size``::

    tokens_t = encoder(frame_t)                 # ConvNet -> Fourier positions -> "transformer"
    S = LayerNorm(S)                            # eps 1e-4, no bias (state_layer_norm)
    S = S + predictor(S)                        # self-attention blocks (predictor_sa)
    S = S + corrector(S, tokens_t)              # self + cross-attention blocks (predictor_ca)
    features_t = S

The decoder reads the state *before* frame t was observed and predicts frame t (a next-frame
predictor). The initial state is 1e-4 * N(0, 1) noise: an input here, drawn from a
``torch.Generator`` the caller can seed. Passing the returned ``state`` back in continues the video
exactly, so long videos stream in constant memory.

Input convention (HF): ``pixel_values_videos`` of shape (B, T, C, H, W), float in [0, 1].
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.utils import ModelOutput

from ...layers import (
    FLAX_NORM_EPS,
    MLP,
    Attention,
    check_video,
    flax_same_padding,
    gelu_tanh,
    grid_fourier_features,
    scaled_dot_product_attention,
)
from ...modeling_utils import PARAMETER_SLACK, FourDPreTrainedModel, load_backbone, load_state_strict, parameter_budget, read_head_directory
from ...readout import (
    DepthEstimationOutput,
    ReadoutConfig,
    ReadoutTaskModel,
    RecurrentBoxTrackingTask,
    RecurrentPointTrackingTask,
    init_module_weights,
    masked_depth_loss,
)
from .configuration_moog import MooGConfig, MooGPixelDecoderSpec, MooGTransformerSpec, _spec_dict


# ----------------------------------------------------------------------------------------------
# Outputs


@dataclass
class MooGModelOutput(ModelOutput):
    r"""Output of :class:`MooGModel`.

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(B, T, N, D)`): the state after observing
            each frame: the per-frame features the readouts read (the original's ``features``).
        state (`torch.FloatTensor` of shape `(B, N, D)`): the state after the last frame; pass it as
            ``initial_state`` of the next chunk to continue the video.
        initial_state (`torch.FloatTensor` of shape `(B, N, D)`): the state this call started from
            (given, or drawn). With ``last_hidden_state`` it gives the states the decoder reads.
        encoder_hidden_states (`torch.FloatTensor` of shape `(B, T, n, d)`, *optional*): the
            per-frame encoder tokens, with ``output_encoder_tokens=True``.
    """

    last_hidden_state: torch.FloatTensor | None = None
    state: torch.FloatTensor | None = None
    initial_state: torch.FloatTensor | None = None
    encoder_hidden_states: torch.FloatTensor | None = None

    @property
    def states_before_frames(self) -> torch.Tensor:
        """(B, T, N, D): the state before each frame was observed (what the decoder reads)."""
        return torch.cat([self.initial_state.unsqueeze(1), self.last_hidden_state[:, :-1]], dim=1)


@dataclass
class MooGNextFramePredictionOutput(ModelOutput):
    r"""Output of :class:`MooGForNextFramePrediction`.

    Args:
        loss (`torch.FloatTensor`, *optional*): mean squared error against the (subsampled) targets.
        predicted_frames (`torch.FloatTensor` of shape `(B, T, C, h, w)`): frame t predicted from the
            state before frame t; full resolution (h, w) = (H, W) unless subsampled (training).
        target_frames (`torch.FloatTensor` of shape `(B, T, C, h, w)`): the target pixels at the same
            positions (the input video, or ``labels``).
        sampled_rows (`torch.LongTensor` of shape `(B, T, h)`), sampled_cols (`(B, T, w)`): which pixel
            rows / columns were decoded.
        last_hidden_state, state, initial_state: as in :class:`MooGModelOutput`.
    """

    loss: torch.FloatTensor | None = None
    predicted_frames: torch.FloatTensor | None = None
    target_frames: torch.FloatTensor | None = None
    sampled_rows: torch.LongTensor | None = None
    sampled_cols: torch.LongTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None
    state: torch.FloatTensor | None = None
    initial_state: torch.FloatTensor | None = None


# ----------------------------------------------------------------------------------------------
# Modules


class MooGBlock(GradientCheckpointingLayer):
    """``ImprovedTransformerBlock``: ``q = LN(x); x += SelfAttn(q); x += CrossAttn(q, context); x += MLP(LN(x))``.

    The cross-attention uses the same normalised ``q`` as the self-attention (not the updated x).
    LayerNorms have no bias; attention has bias-free q/k/v and RMS-normalised q and k.
    """

    def __init__(self, width: int, spec: MooGTransformerSpec, context_dim: int | None, eps: float):
        super().__init__()
        head_dim = spec.qkv_size // spec.num_heads
        self.query_norm = nn.LayerNorm(width, eps=eps, bias=False)
        self.self_attention = (
            None if spec.cross_attention_only
            else Attention(width, spec.num_heads, head_dim, qkv_bias=False, qk_norm=True)
        )
        self.cross_attention = (
            None if context_dim is None
            else Attention(width, spec.num_heads, head_dim, context_dim=context_dim, qkv_bias=False, qk_norm=True)
        )
        self.mlp_norm = nn.LayerNorm(width, eps=eps, bias=False)
        self.mlp = MLP(width, spec.mlp_size)

    def forward(self, hidden_states: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        query = self.query_norm(hidden_states)
        if self.self_attention is not None:
            hidden_states = hidden_states + self.self_attention(query)
        if self.cross_attention is not None:
            hidden_states = hidden_states + self.cross_attention(query, context)
        return hidden_states + self.mlp(self.mlp_norm(hidden_states))


class MooGTransformer(nn.Module):
    """``ImprovedTransformer``: optional input Dense, blocks, LayerNorm (no bias), optional output Dense.

    Shapes: (B, L, input_dim), context (B, M, context_dim) -> (B, L, input_dim) (or hidden_size when
    it equals the input width).
    """

    def __init__(self, input_dim: int, spec: MooGTransformerSpec, context_dim: int | None = None, eps: float = FLAX_NORM_EPS):
        super().__init__()
        if spec.cross_attention_only and context_dim is None:
            raise ValueError("a cross-attention-only MooG transformer needs a context")
        width = spec.hidden_size if spec.hidden_size is not None else input_dim
        self.input_proj = nn.Linear(input_dim, width) if spec.hidden_size is not None else None
        self.layers = nn.ModuleList(MooGBlock(width, spec, context_dim, eps) for _ in range(spec.num_layers))
        self.final_norm = nn.LayerNorm(width, eps=eps, bias=False)
        self.output_proj = nn.Linear(width, input_dim) if width != input_dim else None
        self.output_dim = input_dim

    def forward(self, hidden_states: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        if self.input_proj is not None:
            hidden_states = self.input_proj(hidden_states)
        for layer in self.layers:
            hidden_states = layer(hidden_states, context)
        hidden_states = self.final_norm(hidden_states)
        if self.output_proj is not None:
            hidden_states = self.output_proj(hidden_states)
        return hidden_states


class FourierPositionEmbedding(nn.Module):
    """Fourier features of a pixel/token grid, concatenated to or projected and added to features.

    Tables are computed once per (height, width, device, dtype) by :func:`grid_fourier_features`
    (jax's float32 ``linspace`` recipe) and cached, not recomputed per frame.

    Shapes: features (N, h, w, C), positions (h, w, F) or (N, h, w, F) ->
    (N, h, w, C + F) (concat) or (N, h, w, C) (project_add).
    """

    def __init__(self, num_bases: int, update: str, feature_dim: int):
        super().__init__()
        self.num_bases = num_bases
        self.update = update
        self.proj = nn.Linear(4 * num_bases, feature_dim) if update == "project_add" else None
        self._tables: dict[tuple, torch.Tensor] = {}

    def output_dim(self, feature_dim: int) -> int:
        return feature_dim + 4 * self.num_bases if self.update == "concat" else feature_dim

    def table(self, height: int, width: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """(height, width, 4 * num_bases) Fourier table of the grid, cached."""
        key = (height, width, str(device), dtype)
        table = self._tables.get(key)
        if table is None:
            table = grid_fourier_features(height, width, self.num_bases).to(device=device, dtype=dtype)
            self._tables[key] = table
        return table

    def forward(self, features: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        if self.proj is not None:
            return features + self.proj(positions)
        positions = positions.expand(*features.shape[:-1], positions.shape[-1])
        return torch.cat([features, positions], dim=-1)


class MooGEncoder(nn.Module):
    """``SRTEncoder``: per frame, ConvNet (Flax SAME padding, tanh-gelu between convs, bias-free
    LayerNorm) -> grid Fourier positions -> ``ImprovedTransformer``.

    Shapes: frames (N, C, H, W) -> tokens (N, h * w, encoder_output_size).
    """

    def __init__(self, config: MooGConfig):
        super().__init__()
        channels = [config.num_channels, *config.encoder_conv_features]
        self.kernel_size = config.encoder_kernel_size
        self.strides = tuple(config.encoder_strides)
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, self.kernel_size, stride=s)
            for c_in, c_out, s in zip(channels[:-1], channels[1:], self.strides)
        )
        self.conv_norm = nn.LayerNorm(channels[-1], eps=config.layer_norm_eps, bias=False)
        self.position_embedding = FourierPositionEmbedding(
            config.encoder_fourier_bases, config.encoder_position_update, channels[-1]
        )
        self.transformer = MooGTransformer(
            self.position_embedding.output_dim(channels[-1]), config.transformer_spec("encoder_transformer"),
            eps=config.layer_norm_eps,
        )

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames
        for i, (conv, stride) in enumerate(zip(self.convs, self.strides)):
            pad_h = flax_same_padding(x.shape[-2], self.kernel_size, stride)
            pad_w = flax_same_padding(x.shape[-1], self.kernel_size, stride)
            x = conv(F.pad(x, (*pad_w, *pad_h)))
            if i < len(self.convs) - 1:
                x = gelu_tanh(x)
        x = self.conv_norm(x.permute(0, 2, 3, 1))  # (N, h, w, C)
        table = self.position_embedding.table(x.shape[1], x.shape[2], x.device, x.dtype)
        x = self.position_embedding(x, table)
        return self.transformer(x.flatten(1, 2))


def subsample_pixel_indices(
    batch_shape: tuple[int, ...],
    image_size: tuple[int, int],
    factor: int,
    generator: torch.Generator | None = None,
    device: torch.device | None = None,
    offsets: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The original's random-roll subsampling: rows and columns of one pixel in ``factor`` per axis.

    The original rolls each image by a random offset in [0, factor) per axis and takes every
    factor-th pixel with ``jax.image.resize(..., "nearest")`` (index ``factor * j + factor // 2``),
    so it decodes rows ``(factor * j + factor // 2 - offset) mod H``.

    Args:
        offsets: (*batch_shape, 2) (row, column) rolls in [0, factor), instead of drawing them
            from ``generator`` (pretraining draws them per clip, see ``clip_random_inputs``).

    Returns:
        rows (*batch_shape, H / factor) and cols (*batch_shape, W / factor), int64.
    """
    height, width = image_size
    if height % factor or width % factor:
        raise ValueError(
            f"subsampling by {factor} needs the image size to be divisible by it, got {height}x{width}; "
            "crop or resize the video, or set subsample_factor=1"
        )
    if offsets is None:
        offsets = torch.randint(0, factor, (*batch_shape, 2), generator=generator)
    elif tuple(offsets.shape) != (*batch_shape, 2) or offsets.dtype.is_floating_point or bool(((offsets < 0) | (offsets >= factor)).any()):
        raise ValueError(
            f"subsample_offsets must be integers of shape {(*batch_shape, 2)} in [0, {factor}), "
            f"got {offsets.dtype} of shape {tuple(offsets.shape)}"
        )
    offsets = offsets.to(device=device, dtype=torch.long)
    grids = [
        (factor * torch.arange(size // factor, device=device) + factor // 2 - offsets[..., axis : axis + 1]) % size
        for axis, size in enumerate((height, width))
    ]
    return grids[0], grids[1]


def gather_pixels(images: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Pick pixels ``images[..., rows[i], cols[j], :]`` per image.

    Shapes: images (N, H, W, C), rows (N, h), cols (N, w) -> (N, h, w, C).
    """
    index = torch.arange(images.shape[0], device=images.device)[:, None, None]
    return images[index, rows[:, :, None], cols[:, None, :]]


#: Frames :meth:`MooGModel.forward` encodes per encoder call at inference (autograd not recording),
#: each group just before its recurrent steps: peak memory that of one frame's encoder activations.
ENCODER_FRAMES_AT_INFERENCE = 1

#: Pixel queries per decoder chunk (:class:`MooGPixelDecoder`): the per-pixel activations of a
#: chunk (MLP hidden, cross-attention scores) stay a few MiB whatever the frame size.
DECODER_PIXEL_CHUNK = 4096


def _is_fsdp_module(module: nn.Module) -> bool:
    """Whether FSDP2 (``fully_shard``) manages ``module``'s parameters (unsharded by its call hooks)."""
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # a torch built without distributed
        return False
    return isinstance(module, FSDPModule)


def _attention_heads(attention: Attention, projection: nn.Linear, norm: nn.Module | None, inputs: torch.Tensor) -> torch.Tensor:
    """``Attention``'s own projection of q or k/v, as (N, heads, L, head_dim) (what SDPA takes)."""
    heads = projection(inputs).unflatten(-1, (attention.num_heads, attention.head_dim))
    if norm is not None:
        heads = norm(heads)
    return heads.transpose(1, 2)


def _attend(attention: Attention, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """The rest of ``Attention.forward`` for one chunk of queries: SDPA and the output projection.

    Shapes: queries (N, heads, c, head_dim), keys / values (N, heads, M, head_dim) -> (N, c, query_dim).
    """
    # The shared attention: SDPA, or the faster bf16 CPU path where that applies (fourd_hub.layers).
    out = scaled_dot_product_attention(queries, keys, values, dropout_p=attention.dropout if attention.training else 0.0)
    return attention.out_proj(out.transpose(1, 2).flatten(2))


class MooGPixelDecoder(nn.Module):
    """``SRTDecoder``: pixel queries attend to one frame's state tokens; a Dense predicts each pixel.

    Queries are zeros of the token width with the pixel grid's Fourier features (``concat``) or a
    Dense of them (``project_add``). The notebook's version refers to undefined ``height, width``
    when building the zero queries; this one uses the target's (H, W), as the public package does.

    At inference (autograd not recording) the pixel queries go through the blocks ``chunk_size``
    at a time (same arithmetic as :class:`MooGBlock`, so the same result to float32 rounding):
    every per-pixel activation is chunk-sized. While autograd records, or when FSDP2 shards the
    blocks, the blocks run whole, as before (gradient checkpointing and FSDP hooks need them). A self-attending decoder (Ego4D) still needs each layer's keys and values of
    every pixel, (N, P, qkv_size); SDPA tiles the chunk's attention itself. Where the first block
    does not depend on the state (its self-attention reads only the position queries), its result
    is computed once per grid and reused (inference only, never while autograd records).

    Shapes: states (N, S, D) -> (N, h, w, output_channels), for an (H, W) grid, every pixel or the
    given ``rows`` (N, h) / ``cols`` (N, w).
    """

    def __init__(self, state_dim: int, spec: MooGPixelDecoderSpec, eps: float = FLAX_NORM_EPS):
        super().__init__()
        self.state_dim = state_dim
        self.spec = spec
        self.position_embedding = FourierPositionEmbedding(spec.fourier_bases, spec.position_update, state_dim)
        query_dim = self.position_embedding.output_dim(state_dim)
        self.transformer = MooGTransformer(query_dim, spec, context_dim=state_dim, eps=eps)
        self.output_proj = nn.Linear(query_dim, spec.output_channels)
        self._first_block_cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def forward(
        self,
        states: torch.Tensor,
        image_size: tuple[int, int],
        rows: torch.Tensor | None = None,
        cols: torch.Tensor | None = None,
        chunk_size: int | None = None,
    ) -> torch.Tensor:
        """Decode one frame per state.

        Args:
            states: (N, S, D) state tokens, one frame each.
            image_size: (H, W) of the pixel grid whose Fourier features make the queries.
            rows, cols: (N, h) / (N, w) pixel indices to decode (default: every pixel).
            chunk_size: pixel queries per chunk (default :data:`DECODER_PIXEL_CHUNK`).

        Returns:
            (N, h, w, output_channels).
        """
        height, width = image_size
        chunk_size = DECODER_PIXEL_CHUNK if chunk_size is None else int(chunk_size)
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive number of pixels, got {chunk_size}")
        table = self.position_embedding.table(height, width, states.device, states.dtype)
        if rows is None:
            positions = table.unsqueeze(0)  # (1, H, W, F), every pixel
        else:
            positions = table[rows[:, :, None], cols[:, None, :]]  # (N, h, w, F)
        grid = positions.shape[1:3]
        transformer = self.transformer
        if rows is None:
            # One set of queries for every frame: they depend on the grid alone.
            queries = self.position_embedding(states.new_zeros(1, *grid, self.state_dim), positions).flatten(1, 2)
        else:
            zeros = states.new_zeros(states.shape[0], *grid, self.state_dim)
            queries = self.position_embedding(zeros, positions).flatten(1, 2)
        if transformer.input_proj is not None:
            queries = transformer.input_proj(queries)

        hidden = queries.expand(states.shape[0], -1, -1)
        if torch.is_grad_enabled() or any(_is_fsdp_module(layer) for layer in transformer.layers):
            # Training: whole blocks through their own __call__, so that gradient checkpointing and
            # FSDP2's per-block unsharding hooks see them (the chunked path below reaches into the
            # blocks' submodules). Training decodes subsampled pixels anyway.
            for layer in transformer.layers:
                hidden = layer(hidden, states)
            return self._head(hidden).unflatten(1, grid)
        first = 0
        cached = self._first_block(queries, rows is None, (height, width))
        if cached is not None:
            # Block 0's query norm and self-attention, computed once for this grid.
            first = 1
            partial, normed = (t.expand(states.shape[0], -1, -1) for t in cached)
            hidden = self._block_tail(transformer.layers[0], partial, normed, states, chunk_size)
        for layer in transformer.layers[first:]:
            hidden = self._block(layer, hidden, states, chunk_size)
        out = torch.cat(
            [self._head(hidden[:, i : i + chunk_size]) for i in range(0, hidden.shape[1], chunk_size)], dim=1
        )
        return out.unflatten(1, grid)

    def _head(self, hidden: torch.Tensor) -> torch.Tensor:
        """Final norm, optional projection back, per-pixel Dense: (N, c, width) -> (N, c, output_channels)."""
        hidden = self.transformer.final_norm(hidden)
        if self.transformer.output_proj is not None:
            hidden = self.transformer.output_proj(hidden)
        return self.output_proj(hidden)

    def _self_attention(self, layer: MooGBlock, normed: torch.Tensor, chunk_size: int) -> torch.Tensor:
        """``layer.self_attention(normed)`` with the queries in chunks: (N, P, width) -> (N, P, width)."""
        attention = layer.self_attention
        keys = _attention_heads(attention, attention.k_proj, attention.k_norm, normed)
        values = _attention_heads(attention, attention.v_proj, None, normed)
        return torch.cat(
            [
                _attend(attention, _attention_heads(attention, attention.q_proj, attention.q_norm, normed[:, i : i + chunk_size]), keys, values)
                for i in range(0, normed.shape[1], chunk_size)
            ],
            dim=1,
        )

    def _block(self, layer: MooGBlock, hidden: torch.Tensor, states: torch.Tensor, chunk_size: int) -> torch.Tensor:
        """:meth:`MooGBlock.forward` on (N, P, width) pixel queries, chunk by chunk."""
        normed = layer.query_norm(hidden)
        if layer.self_attention is not None:
            hidden = hidden + self._self_attention(layer, normed, chunk_size)
        return self._block_tail(layer, hidden, normed, states, chunk_size)

    def _block_tail(
        self, layer: MooGBlock, hidden: torch.Tensor, normed: torch.Tensor, states: torch.Tensor, chunk_size: int
    ) -> torch.Tensor:
        """The per-pixel rest of a block after its self-attention: cross-attention into the state
        (with the block's normalised queries ``normed``) and the MLP, chunk by chunk."""
        keys = values = None
        if layer.cross_attention is not None:
            attention = layer.cross_attention
            keys = _attention_heads(attention, attention.k_proj, attention.k_norm, states)
            values = _attention_heads(attention, attention.v_proj, None, states)
        # Written chunk by chunk into one tensor: a list of chunks plus their concatenation would
        # hold the frame's activations twice.
        out = hidden.new_empty(hidden.shape)
        for i in range(0, hidden.shape[1], chunk_size):
            chunk = hidden[:, i : i + chunk_size]
            if keys is not None:
                attention = layer.cross_attention
                queries = _attention_heads(attention, attention.q_proj, attention.q_norm, normed[:, i : i + chunk_size])
                chunk = chunk + _attend(attention, queries, keys, values)
            out[:, i : i + chunk_size] = chunk + layer.mlp(layer.mlp_norm(chunk))
        return out

    def _first_block(self, queries: torch.Tensor, full_grid: bool, image_size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Block 0's ``(queries + self_attention(norm(queries)), norm(queries))``, (1, P, width) each,
        cached per grid: they read the position queries only, not the state.

        None (compute as usual) when there is no such work to save (no blocks, or no
        self-attention), for subsampled pixels (their queries differ per frame), or while autograd
        records (training must see the graph). The key holds every weight involved with its
        in-place version counter, so loading or an optimizer step invalidates the entry.
        """
        layers = self.transformer.layers
        if not full_grid or len(layers) == 0 or layers[0].self_attention is None or torch.is_grad_enabled():
            return None
        modules = [self.position_embedding, layers[0].query_norm, layers[0].self_attention]
        if self.transformer.input_proj is not None:
            modules.append(self.transformer.input_proj)
        weights = tuple((id(p), p._version) for module in modules for p in module.parameters())
        key = (tuple(image_size), str(queries.device), queries.dtype, torch.is_inference_mode_enabled(), weights)
        cached = self._first_block_cache.get(key)
        if cached is None:
            layer = layers[0]
            normed = layer.query_norm(queries)
            # chunk_size: the whole grid at once is fine here, it runs once per grid.
            partial = queries + self._self_attention(layer, normed, DECODER_PIXEL_CHUNK)
            self._first_block_cache.clear()  # one grid at a time: a resolution sweep does not pile up tables
            cached = self._first_block_cache[key] = (partial, normed)
        return cached


class MooGPreTrainedModel(FourDPreTrainedModel):
    config_class = MooGConfig
    config: MooGConfig
    base_model_prefix = "moog"
    main_input_name = "pixel_values_videos"
    input_modalities = "video"
    supports_gradient_checkpointing = True
    _no_split_modules = ["MooGBlock"]
    _supports_sdpa = True

    def _init_weights(self, module: nn.Module) -> None:
        init_module_weights(module, self.config.initializer_range)



class MooGModel(MooGPreTrainedModel):
    """MooG backbone: encoder, recurrent core (state norm, predictor, corrector) and pixel decoder.

    Args:
        config: the architecture.
        add_decoder: build the reconstruction decoder when ``config.decoder`` describes one
            (task models that only read features pass ``False``).

    Example:

    ```python
    >>> import torch
    >>> from fourd_hub import MooGConfig, MooGModel
    >>> model = MooGModel(MooGConfig.from_preset("ego4d")).eval()
    >>> video = torch.rand(1, 4, 3, 128, 128)
    >>> out = model(video, generator=torch.Generator().manual_seed(0))
    >>> out.last_hidden_state.shape, out.state.shape
    (torch.Size([1, 4, 1024, 512]), torch.Size([1, 1024, 512]))
    >>> more = model(torch.rand(1, 4, 3, 128, 128), initial_state=out.state)  # continue the video
    ```
    """

    def __init__(self, config: MooGConfig, add_decoder: bool = True):
        super().__init__(config)
        width = config.hidden_size
        self.encoder = MooGEncoder(config)
        self.state_norm = nn.LayerNorm(width, eps=config.state_layer_norm_eps, bias=False)
        self.predictor = MooGTransformer(width, config.transformer_spec("predictor"), eps=config.layer_norm_eps)
        self.corrector = MooGTransformer(
            width, config.transformer_spec("corrector"), context_dim=config.encoder_output_size, eps=config.layer_norm_eps
        )
        decoder_spec = config.decoder_spec("decoder") if add_decoder else None
        self.decoder = MooGPixelDecoder(width, decoder_spec, config.layer_norm_eps) if decoder_spec is not None else None
        self.gradient_checkpointing = False
        self.post_init()

    #: Layout of :meth:`frame_features` per frame (documented by the feature-extraction pipeline).
    frame_features_layout = "(T, N, D)"

    def frame_features(self, pixel_values_videos: torch.Tensor, initial_state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The state after each frame, (B, T, N, D), and the final state (pass it back to continue)."""
        out = self(pixel_values_videos, initial_state=initial_state, return_dict=True)
        return out.last_hidden_state, out.state

    def get_input_embeddings(self) -> nn.Module:
        return self.encoder.convs[0]

    @property
    def compute_dtype(self) -> torch.dtype:
        """The dtype the layers compute in: the weights' dtype, except under FSDP2 mixed precision,
        where it is the policy's (bfloat16) while the stored weights stay float32."""
        return self.state_norm.weight.dtype

    def initial_state(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """The original's random initial state: ``initial_state_scale * N(0, 1)`` of shape (B, N, D).

        Drawn on the generator's device (CPU by default) from ``generator``, or from torch's global
        RNG when it is None, then moved to ``device`` (default: the model's).
        """
        shape = (batch_size, self.config.num_tokens, self.config.hidden_size)
        noise = torch.randn(shape, generator=generator, device=generator.device if generator is not None else "cpu")
        device = self.device if device is None else device
        return (self.config.initial_state_scale * noise).to(device=device, dtype=dtype or self.compute_dtype)

    def _check_state(self, state: torch.Tensor, batch_size: int) -> torch.Tensor:
        expected = (self.config.num_tokens, self.config.hidden_size)
        if not isinstance(state, torch.Tensor):
            raise TypeError(f"initial_state must be a torch.Tensor, got {type(state).__name__}")
        if state.ndim == 2:
            state = state.unsqueeze(0).expand(batch_size, -1, -1)
        if state.ndim != 3 or tuple(state.shape[1:]) != expected or state.shape[0] != batch_size:
            raise ValueError(
                f"initial_state must have shape (B={batch_size}, {expected[0]}, {expected[1]}) (or (N, D) for every "
                f"video), got {tuple(state.shape)}; pass the `state` returned by the previous chunk"
            )
        if not state.is_floating_point():
            raise TypeError(f"initial_state must be a float tensor, got {state.dtype}")
        if state.device.type != "meta" and not torch.isfinite(state).all():
            raise ValueError("initial_state contains NaN or infinite values")
        return state.to(device=self.device, dtype=self.compute_dtype)

    def encode(self, pixel_values_videos: torch.Tensor) -> torch.Tensor:
        """Encoder tokens of every frame: (B, T, C, H, W) -> (B, T, n, d)."""
        batch, frames = pixel_values_videos.shape[:2]
        frames_flat = pixel_values_videos.flatten(0, 1).to(self.compute_dtype)
        return self.encoder(frames_flat).unflatten(0, (batch, frames))

    def step(self, state: torch.Tensor, encoder_tokens: torch.Tensor) -> torch.Tensor:
        """One frame of the recurrent core: (B, N, D), (B, n, d) -> (B, N, D)."""
        state = self.state_norm(state)
        state = state + self.predictor(state)
        return state + self.corrector(state, encoder_tokens)

    def forward(
        self,
        pixel_values_videos: torch.Tensor,
        initial_state: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        output_encoder_tokens: bool = False,
        return_dict: bool | None = None,
        **kwargs,
    ) -> MooGModelOutput | tuple:
        r"""
        Args:
            pixel_values_videos (`torch.FloatTensor` of shape `(B, T, C, H, W)`): RGB in [0, 1], any
                T >= 1 and any H, W.
            initial_state (`torch.FloatTensor` of shape `(B, N, D)` or `(N, D)`, *optional*): the
                state to start from, e.g. the ``state`` returned for the previous chunk. Default:
                fresh noise from ``generator`` (see :meth:`initial_state`).
            generator (`torch.Generator`, *optional*): seeds the default initial state.
            output_encoder_tokens (`bool`): also return the encoder tokens.
        """
        check_video(pixel_values_videos, None, self.config.num_channels)
        batch = pixel_values_videos.shape[0]
        if initial_state is None:
            initial_state = self.initial_state(batch, generator=generator)
        else:
            initial_state = self._check_state(initial_state, batch)

        frames = pixel_values_videos.shape[1]
        # At inference each frame is encoded just before its step: the encoder's activations (the
        # largest tensors of a chunk, tens of MiB per frame group at 128x128) then never exist for
        # every frame of the chunk at once, so the peak stays that of one frame whatever the chunk
        # length, and glibc's heap does not fragment across chunks (a 16-frame chunk encoded at once
        # peaked 1.2x higher after 256 frames than after 16, a frame at a time flat: benchmarks/
        # moog_streaming.py). Training keeps one encoder call over every frame (what autograd and
        # FSDP2's hooks see). The encoder works per frame either way: the tokens are the same.
        # (FSDP2 would all-gather each sharded encoder block once per group: one group there too.)
        whole = torch.is_grad_enabled() or any(_is_fsdp_module(module) for module in self.encoder.modules())
        group = frames if whole else ENCODER_FRAMES_AT_INFERENCE
        state, features, tokens = initial_state, [], []
        for first in range(0, frames, group):
            encoded = self.encode(pixel_values_videos[:, first : first + group])
            for t in range(encoded.shape[1]):
                state = self.step(state, encoded[:, t])
                features.append(state)
            if output_encoder_tokens:
                tokens.append(encoded)
            del encoded
        output = MooGModelOutput(
            last_hidden_state=torch.stack(features, dim=1),
            state=state,
            initial_state=initial_state,
            encoder_hidden_states=(tokens[0] if len(tokens) == 1 else torch.cat(tokens, dim=1)) if output_encoder_tokens else None,
        )
        return self.finish(output, return_dict)

    def decode(
        self,
        states: torch.Tensor,
        image_size: tuple[int, int],
        rows: torch.Tensor | None = None,
        cols: torch.Tensor | None = None,
        resolution: tuple[int, int] | None = None,
        chunk_size: int | None = None,
    ) -> torch.Tensor:
        """Decode frames from states, one frame at a time and its pixels in chunks (bounded memory).

        Args:
            states: (B, T, N, D), e.g. :attr:`MooGModelOutput.states_before_frames`.
            image_size: (H, W) of the frames.
            rows, cols: (B, T, h) / (B, T, w) pixel indices to decode (default: every pixel).
            resolution: (h, w) to decode at instead of (H, W): the queries are the Fourier
                features of an h x w grid over the same image (coordinates still span [-1, 1]),
                so the result is the frame at that size, not a crop. The self-attending decoder's
                cost grows with the square of the pixel count: half the size per axis is about
                16x less attention. Not combinable with ``rows`` / ``cols``. Note that a
                self-attending decoder (Ego4D) predicts each pixel from all the others, so a
                lower-resolution prediction is not a resize of the full one.
            chunk_size: pixel queries per chunk (default ``DECODER_PIXEL_CHUNK``, 4096); smaller
                bounds memory further, at some speed. The result does not depend on it beyond
                float32 rounding.

        Returns:
            (B, T, C, h, w) predicted pixels: (h, w) = ``resolution``, the sampled rows and
            columns, or (H, W).
        """
        if self.decoder is None:
            raise RuntimeError(
                "this MooG model has no decoder (converted from a file without decoder weights, or built with "
                "add_decoder=False / config.decoder=None), so it cannot reconstruct or predict frames; its features "
                "still work for readouts"
            )
        if resolution is not None:
            if rows is not None or cols is not None:
                raise ValueError("resolution= decodes a whole grid; it cannot be combined with sampled rows / cols")
            resolution = check_resolution(resolution)
            image_size = resolution
        frames = []
        for t in range(states.shape[1]):
            frame = self.decoder(
                states[:, t], image_size, None if rows is None else rows[:, t], None if cols is None else cols[:, t],
                chunk_size=chunk_size,
            )
            frames.append(frame.permute(0, 3, 1, 2))
        return torch.stack(frames, dim=1)


def check_resolution(resolution: Any) -> tuple[int, int]:
    """``resolution`` as an (h, w) pair of positive ints, or a ValueError naming it."""
    if isinstance(resolution, int) and not isinstance(resolution, bool):
        resolution = (resolution, resolution)
    try:
        height, width = (int(v) for v in resolution)
        valid = all(int(v) == v and not isinstance(v, bool) for v in resolution) and height >= 1 and width >= 1
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"resolution must be (height, width) in pixels (or one int for a square), got {resolution!r}")
    return height, width


def resize_frames(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear (antialiased when shrinking) resize of (B, T, C, H, W) frames to (B, T, C, *size)."""
    if tuple(frames.shape[-2:]) == tuple(size):
        return frames
    flat = F.interpolate(frames.flatten(0, 1).float(), size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    return flat.to(frames.dtype).unflatten(0, frames.shape[:2])


# ----------------------------------------------------------------------------------------------
# Task models


class MooGForNextFramePrediction(MooGPreTrainedModel):
    """MooG with its pixel decoder: predicts each frame from the state before it (the pretraining task).

    Inference decodes every pixel; training (``model.train()``) decodes one pixel in
    ``decoder.subsample_factor``\\ :sup:`2` at random-roll positions, as the original, with the L2 loss.
    """

    # Every weight is the backbone's (with its decoder): a MooGModel checkpoint loads it whole.
    loads_from_base_model = True

    @staticmethod
    def tokens_per_clip(config: MooGConfig) -> int:
        """Input tokens of one clip: the encoder's tokens over all frames (the trainer's tokens/s and MFU)."""
        downsample = math.prod(config.encoder_strides)
        height, width = (math.ceil(s / downsample) for s in config.image_size)
        return config.num_frames * height * width

    @staticmethod
    def meta_device_inputs(config: MooGConfig, generator: torch.Generator) -> dict[str, Any]:
        """Inputs to pass when counting FLOPs on the meta device: none (MooG draws its state from ``generator``)."""
        return {}

    @staticmethod
    def clip_random_inputs(config: MooGConfig, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Every random input of one training clip, drawn from ``generator`` (CPU tensors, batch of one).

        Pretraining draws them clip by clip from (seed, global sample index), so a clip's inputs do
        not depend on how clips are grouped into micro-batches or ranks.

        Returns:
            ``initial_state`` (1, num_tokens, hidden_size) float32 and ``subsample_offsets``
            (1, num_frames, 2) int64: ``forward`` keywords.
        """
        noise = torch.randn((1, config.num_tokens, config.hidden_size), generator=generator)
        factor = config.decoder_spec("decoder").subsample_factor
        offsets = torch.randint(0, factor, (1, config.num_frames, 2), generator=generator)
        return {"initial_state": config.initial_state_scale * noise, "subsample_offsets": offsets}

    def __init__(self, config: MooGConfig):
        super().__init__(config)
        if config.decoder is None:
            raise ValueError("MooGForNextFramePrediction needs a decoder; config.decoder is None (a backbone without decoder weights)")
        self.moog = MooGModel(config)
        self.post_init()

    def reconstruct_video(
        self,
        pixel_values_videos: torch.Tensor,
        initial_state: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        resolution: tuple[int, int] | None = None,
    ) -> MooGNextFramePredictionOutput:
        """The video-reconstruction pipelines' protocol: every frame predicted from the state before it.

        ``forward`` as the model is set (eval: every pixel decoded); ``generator`` is not used (the
        state is passed in, MooG masks nothing). With ``resolution=(h, w)`` the frames are decoded
        at that size (see :meth:`MooGModel.decode`) and resized back to the video's (H, W)
        (bilinear), so ``predicted_frames`` keep the protocol's shape; ``target_frames`` are then
        the input itself.
        """
        out = self(pixel_values_videos, initial_state=initial_state, resolution=resolution, return_dict=True)
        if resolution is not None:
            out.predicted_frames = resize_frames(out.predicted_frames, tuple(pixel_values_videos.shape[-2:]))
            out.target_frames = pixel_values_videos
        return out

    @classmethod
    def from_base_model(cls, model: MooGModel) -> "MooGForNextFramePrediction":
        """This model around a loaded :class:`MooGModel` (sharing its weights, nothing copied)."""
        if model.decoder is None:
            raise ValueError("this MooG model has no pixel decoder, so it cannot reconstruct frames")
        with torch.device("meta"):  # the wrapper's own copy of the backbone is replaced, never allocated
            wrapper = cls(model.config)
        wrapper.moog = model
        return wrapper

    def forward(
        self,
        pixel_values_videos: torch.Tensor,
        labels: torch.Tensor | None = None,
        initial_state: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        subsample_factor: int | None = None,
        return_loss: bool | None = None,
        return_dict: bool | None = None,
        subsample_offsets: torch.LongTensor | None = None,
        resolution: tuple[int, int] | None = None,
        **kwargs,
    ) -> MooGNextFramePredictionOutput | tuple:
        r"""
        Args:
            pixel_values_videos (`torch.FloatTensor` of shape `(B, T, C, H, W)`): RGB in [0, 1].
            labels (`torch.FloatTensor` of shape `(B, T, C, H, W)`, *optional*): target frames;
                default target: the input video itself (the original's objective).
            initial_state, generator: see :meth:`MooGModel.forward` (the generator also draws the
                subsampling offsets).
            subsample_factor (`int`, *optional*): override: 1 decodes every pixel. Default: the
                config's factor in training, 1 in eval.
            return_loss (`bool`, *optional*): compute the loss (default: in training or when
                ``labels`` are given).
            subsample_offsets (`torch.LongTensor` of shape `(B, T, 2)`, *optional*): the (row, column)
                roll of each frame's subsampling in [0, factor), instead of drawing it from ``generator``.
            resolution (`tuple[int, int]`, *optional*): decode every pixel of an (h, w) grid
                instead (see :meth:`MooGModel.decode`); ``target_frames`` are then the targets
                resized to (h, w) (antialiased bilinear). Not combinable with subsampling.
        """
        out = self.moog(pixel_values_videos, initial_state=initial_state, generator=generator, return_dict=True)
        batch, frames, _, height, width = pixel_values_videos.shape
        if subsample_factor is None:
            subsample_factor = self.moog.decoder.spec.subsample_factor if self.training else 1
        targets = pixel_values_videos if labels is None else labels
        if targets.shape != pixel_values_videos.shape:
            raise ValueError(f"labels must have the video's shape {tuple(pixel_values_videos.shape)}, got {tuple(targets.shape)}")
        rows = cols = None
        if resolution is not None:
            if subsample_factor > 1:
                raise ValueError(
                    "resolution= decodes every pixel of a smaller grid; pass subsample_factor=1 (or use eval mode) with it"
                )
            resolution = check_resolution(resolution)
            targets = resize_frames(targets, resolution)
        if subsample_factor > 1:
            rows, cols = subsample_pixel_indices(
                (batch, frames), (height, width), subsample_factor, generator, out.state.device, offsets=subsample_offsets
            )
            channels_last = targets.flatten(0, 1).permute(0, 2, 3, 1)
            targets = gather_pixels(channels_last, rows.flatten(0, 1), cols.flatten(0, 1))
            targets = targets.permute(0, 3, 1, 2).unflatten(0, (batch, frames))
        predicted = self.moog.decode(out.states_before_frames, (height, width), rows, cols, resolution=resolution)
        if return_loss is None:
            return_loss = self.training or labels is not None
        loss = F.mse_loss(predicted.float(), targets.float()) if return_loss else None
        output = MooGNextFramePredictionOutput(
            loss=loss, predicted_frames=predicted, target_frames=targets, sampled_rows=rows, sampled_cols=cols,
            last_hidden_state=out.last_hidden_state, state=out.state, initial_state=out.initial_state,
        )
        return self.finish(output, return_dict)


class _MooGReadoutModel(ReadoutTaskModel, MooGPreTrainedModel):
    """A MooG backbone (without its pixel decoder) plus one head reading the per-frame features
    (:class:`~fourd_hub.readout.ReadoutTaskModel`): ``initial_state=`` / ``generator=`` in."""

    def build_backbone(self) -> MooGModel:
        return MooGModel(self.config, add_decoder=False)

    def backbone_features(self, pixel_values_videos, initial_state=None, generator=None) -> MooGModelOutput:
        return self.moog(pixel_values_videos, initial_state=initial_state, generator=generator, return_dict=True)

    def features_and_state(
        self, pixel_values_videos: torch.Tensor, initial_state: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The state after each frame, (B, T, N, D), and after the last, (B, N, D) (see :meth:`ReadoutTaskModel.features_and_state`)."""
        out = self.backbone_features(pixel_values_videos, initial_state, generator)
        return out.last_hidden_state, out.state

    def readout_inputs(self, pixel_values_videos: torch.Tensor, initial_state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """What the head reads, (B, T, N, D), and the state after each frame (the same tensor): the pipelines' protocol."""
        features = self.backbone_features(pixel_values_videos, initial_state=initial_state).last_hidden_state
        return features, features

    @classmethod
    def from_backbone(
        cls,
        backbone: MooGModel | str | os.PathLike,
        head: str | os.PathLike | None = None,
        readout: dict[str, Any] | None = None,
        **kwargs,
    ) -> "_MooGReadoutModel":
        """This task model on a MooG backbone, with a converted or a fresh head.

        Args:
            backbone: a :class:`MooGModel` (or task model) or a ``from_pretrained`` path / repo id.
            head: a converted readout head directory (``fourd-hub convert`` of a head file); its
                weights and hyper-parameters are used.
            readout: hyper-parameters of a fresh head (``ReadoutConfig`` fields for tracking,
                ``MooGPixelDecoderSpec`` fields for depth) when ``head`` is not given.
            **kwargs: passed to ``MooGModel.from_pretrained`` when ``backbone`` is a path.

        The backbone's pixel decoder is not carried over: readouts read features.
        """
        backbone_model = load_backbone(backbone, MooGModel, **kwargs)
        config = MooGConfig(**{k: v for k, v in backbone_model.config.to_dict().items() if k in MooGConfig.__dataclass_fields__})
        config.readout = None
        if readout is not None:
            if head is not None:
                raise ValueError("pass either a converted head or the readout hyper-parameters of a fresh head, not both")
            if cls.readout_task == "depth":
                config.depth_decoder = _spec_dict(MooGPixelDecoderSpec.from_dict(readout, "depth_decoder"))
            else:
                config.readout = dict(readout)
        head_state = None
        if head is not None:
            values, head_state = read_head_directory(head)
            readout = ReadoutConfig.for_task(values.get("readout", {}).get("task"), values.get("readout"))
            if readout.task != cls.readout_task:
                raise ValueError(f"{head} holds a {readout.task} head; {cls.__name__} needs a {cls.readout_task} head")
            if values.get("hidden_size") != config.hidden_size:
                raise ValueError(
                    f"{head} reads {values.get('hidden_size')}-wide features; this MooG backbone's tokens are {config.hidden_size} wide"
                )
            config.readout = readout.to_dict()
            config.num_frames = readout.num_frames or config.num_frames
        backbone_state = {k: v for k, v in backbone_model.state_dict().items() if not k.startswith("decoder.")}
        # A head config claiming absurd sizes is refused while building on meta, not after minutes.
        budget = len(backbone_state) + (len(head_state) if head_state is not None else PARAMETER_SLACK)
        with torch.device("meta"), parameter_budget(budget, f"{head if head is not None else 'the readout'} config"):
            model = cls(config)
        model = model.to_empty(device=backbone_model.device)
        model.moog.load_state_dict(backbone_state, strict=True)
        if head_state is not None:
            load_state_strict(model.head, head_state, f"the head in {head}")
        else:
            model.head.apply(model._init_weights)
        return model.to(backbone_model.dtype)


class MooGForPointTracking(RecurrentPointTrackingTask, _MooGReadoutModel):
    """MooG + the point-tracking readout (shared with 4DS: Fourier query embedding, temporal tiling).

    Its output is the shared :class:`~fourd_hub.readout.RecurrentPointTrackingOutput`: the tracks
    and the ``state`` after the last frame (pass it back as ``initial_state`` to continue the video).
    """


class MooGForBoxTracking(RecurrentBoxTrackingTask, _MooGReadoutModel):
    """MooG + the box-tracking readout (one query per box predicts all frames).

    Its output is the shared :class:`~fourd_hub.readout.RecurrentBoxTrackingOutput` (boxes and the
    ``state`` to continue from).
    """


class MooGForDepthEstimation(_MooGReadoutModel):
    """MooG + the MOVi config's dense depth readout: an SRT-style pixel decoder on each frame's features.

    Any resolution at inference (one query per pixel); training decodes one pixel in
    ``depth_decoder.subsample_factor``\\ :sup:`2` (random roll) with the masked L2 depth loss.
    """

    readout_task = "depth"
    output_class = DepthEstimationOutput

    def resolve_readout(self, config: MooGConfig) -> None:
        """None: the depth decoder's hyper-parameters are ``config.depth_decoder`` (:meth:`build_head`), not ``config.readout``."""
        return None

    def build_head(self, readout: None = None) -> nn.Module:
        spec = self.config.decoder_spec("depth_decoder")
        self.config.depth_decoder = _spec_dict(spec)  # save_pretrained keeps the resolved spec
        return MooGPixelDecoder(self.config.hidden_size, spec, self.config.layer_norm_eps)

    def forward(
        self,
        pixel_values_videos: torch.Tensor,
        labels: torch.Tensor | None = None,
        initial_state: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        subsample_factor: int | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> DepthEstimationOutput | tuple:
        r"""
        Args:
            pixel_values_videos (`torch.FloatTensor` of shape `(B, T, C, H, W)`): RGB in [0, 1].
            labels (`torch.FloatTensor` of shape `(B, T, H, W)`, *optional*): depth in metres; pixels
                outside ``depth_decoder.depth_range`` are ignored by the loss.
            initial_state, generator: see :meth:`MooGModel.forward`.
            subsample_factor (`int`, *optional*): default: the config's in training, 1 in eval.
        """
        features, state = self.features_and_state(pixel_values_videos, initial_state, generator)
        batch, frames, _, height, width = pixel_values_videos.shape
        if labels is not None and tuple(labels.shape) != (batch, frames, height, width):
            raise ValueError(f"depth labels must have shape {(batch, frames, height, width)}, got {tuple(labels.shape)}")
        if subsample_factor is None:
            subsample_factor = self.head.spec.subsample_factor if self.training else 1
        rows = cols = None
        if subsample_factor > 1:
            rows, cols = subsample_pixel_indices((batch, frames), (height, width), subsample_factor, generator, features.device)
            if labels is not None:
                labels = gather_pixels(labels.flatten(0, 1).unsqueeze(-1), rows.flatten(0, 1), cols.flatten(0, 1))
                labels = labels[..., 0].unflatten(0, (batch, frames))
        depth = []
        for t in range(frames):
            frame = self.head(features[:, t], (height, width), None if rows is None else rows[:, t], None if cols is None else cols[:, t])
            depth.append(frame[..., 0])
        depth = torch.stack(depth, dim=1)
        loss = masked_depth_loss(depth, labels, self.head.spec.depth_range) if labels is not None else None
        return self.task_output(dict(loss=loss, predicted_depth=depth, readout_features=features), state, return_dict)
