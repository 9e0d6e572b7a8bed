"""Label propagation along feature affinities (no trained head), as the RVM evaluation demo computes it.

The first frame's labels (object masks, keypoint heatmaps) are carried to every frame by a top-k
softmax over feature affinities with a context queue (``docs/label_propagation.md``; the algorithm
is ``docs/rvm.md`` section 6.2 of the shared notes, the DAVIS / JHMDB pre- and post-processing
6.3 / 6.4). Any backbone with a spatial feature grid works: RVM's and 4DS's patch features are
(T, h, w, C); MooG's tokens are not on a grid and are refused.

The label resizes reproduce OpenCV's ``cv2.resize`` rules (INTER_NEAREST, INTER_NEAREST_EXACT,
INTER_LINEAR on float32) in numpy, because the benchmark's label maps are compared exactly and
OpenCV is not a dependency.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np
import torch

__all__ = [
    "PROPAGATION_DEFAULTS",
    "LabelPropagator",
    "check_propagation_parameters",
    "check_topk_fits",
    "label_propagation",
    "normalize_features",
    "mask_to_heatmap",
    "heatmap_to_mask",
    "pose_to_heatmap",
    "heatmap_to_pose",
    "cv2_resize_nearest",
    "cv2_resize_nearest_exact",
    "cv2_resize_linear",
]

# Default memory budget of one chunk of the affinity tensor (query positions x context entries), bytes.
DEFAULT_MAX_CHUNK_BYTES = 256 * 2**20


def _as_tensor(x, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a numpy array or a torch tensor, got {type(x).__name__}")
    return x


def _check_features(feats: torch.Tensor) -> None:
    if feats.ndim == 3:
        raise ValueError(
            f"features of shape {tuple(feats.shape)} look like a (T, N, D) token set without a spatial grid: "
            "label propagation needs (T, h, w, C) features on the image grid (RVM, 4DS patch features). "
            "MooG's tokens are off the grid (they are not tied to image positions), so MooG cannot be used here"
        )
    if feats.ndim != 4:
        raise ValueError(f"features must be (T, h, w, C), got shape {tuple(feats.shape)}")
    if not feats.is_floating_point():
        raise TypeError(f"features must be floating point, got {feats.dtype}")
    if feats.shape[0] < 1 or 0 in feats.shape:
        raise ValueError(f"features must be non-empty (T, h, w, C), got shape {tuple(feats.shape)}")
    if not torch.isfinite(feats).all():
        raise ValueError("features contain NaN or infinite values")


def normalize_features(feats) -> torch.Tensor:
    """L2-normalises features per position, as the evaluation does before propagation (6.1).

    ``x / max(||x||, 1e-12)`` over the last axis (``torch.nn.functional.normalize``).

    Args:
        feats: (T, h, w, C) features (numpy or torch).

    Returns:
        (T, h, w, C) float tensor.
    """
    feats = _as_tensor(feats, "feats")
    _check_features(feats)
    return torch.nn.functional.normalize(feats, dim=-1)


def _check_heatmap(heatmap: torch.Tensor, grid: tuple[int, int], device: torch.device) -> torch.Tensor:
    h, w = grid
    if heatmap.ndim != 3 or tuple(heatmap.shape[:2]) != (h, w):
        raise ValueError(f"heatmap must be (h, w, L) = ({h}, {w}, L) like the feature grid, got shape {tuple(heatmap.shape)}")
    if heatmap.shape[2] < 1:
        raise ValueError("heatmap needs at least one label channel")
    if heatmap.dtype == torch.bool or not (heatmap.is_floating_point() or heatmap.dtype in (torch.uint8, torch.int32, torch.int64)):
        raise TypeError(f"heatmap must be a float (or integer one-hot) array, got {heatmap.dtype}")
    heatmap = heatmap.to(device=device, dtype=torch.float32)
    if not torch.isfinite(heatmap).all():
        raise ValueError("heatmap contains NaN or infinite values")
    return heatmap


# The largest affinity magnitude (Cauchy-Schwarz bound |q . k| / temperature) for which positions
# outside the radius (reference value about -1e10) provably never reach the top-k and get softmax
# weight exactly 0, so they need not be computed at all. L2-normalised features have 1 / temperature.
_BAND_SAFE_AFFINITY = 1e8


#: The label propagation parameters of rvm.md 6.2 and their defaults (the evaluation demo's).
PROPAGATION_DEFAULTS = {"n_context": 20, "temperature": 0.7, "topk": 7, "radius": 20, "restrict_neighborhood": True}


def _is_integer(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_propagation_parameters(n_context=20, temperature=0.7, topk=7, radius=20, restrict_neighborhood=True) -> dict[str, Any]:
    """The propagation parameters checked (what needs no video: topk's upper bound needs the grid)."""
    if not _is_integer(n_context) or n_context < 1:
        raise ValueError(f"n_context must be a positive integer (frames in the context queue), got {n_context!r}")
    number = isinstance(temperature, (int, float, np.integer, np.floating)) and not isinstance(temperature, (bool, np.bool_))
    if not number or not np.isfinite(temperature) or not temperature > 0:
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    if not _is_integer(topk) or topk < 1:
        raise ValueError(f"topk must be a positive integer (neighbours averaged per position), got {topk!r}")
    number = isinstance(radius, (int, float, np.integer, np.floating)) and not isinstance(radius, (bool, np.bool_))
    if not number or not np.isfinite(radius):
        raise ValueError(f"radius must be a number of grid cells, got {radius!r}")
    if not isinstance(restrict_neighborhood, (bool, np.bool_)):
        raise ValueError(f"restrict_neighborhood must be True or False, got {restrict_neighborhood!r}")
    return {
        "n_context": int(n_context), "temperature": float(temperature), "topk": int(topk), "radius": float(radius),
        "restrict_neighborhood": bool(restrict_neighborhood),
    }


def check_topk_fits(topk: int, n_context: int, grid: tuple[int, int]) -> None:
    """Refuse a ``topk`` above the (n_context + 1) * h * w candidates of each position (needs the grid)."""
    keys = (n_context + 1) * grid[0] * grid[1]
    if topk > keys:
        raise ValueError(
            f"topk={topk} is more than the {keys} candidates ((n_context + 1) x h x w on the {grid[0]}x{grid[1]} grid)"
        )


class LabelPropagator:
    """The evaluation demo's label propagation, one frame at a time (streaming; rvm.md 6.2).

    Holds the first frame's features and labels and the context queue of the last ``n_context``
    frames with their predicted labels (initially ``n_context`` copies of the first frame); each
    :meth:`step` predicts one frame's labels and pushes that frame into the queue, exactly as the
    loop of :func:`label_propagation` (which is this class over a (T, h, w, C) array). Memory
    does not grow with the video: the context (``n_context + 1`` frames of (h, w, C) features and
    (h, w, L) labels) plus the affinities of one chunk of query positions.

    How a frame is computed (the same result as the reference's single top-k over all
    ``(n_context + 1) * h * w`` candidates, see ``docs/label_propagation.md``):

    - per context entry, the affinities of a chunk of query positions against that entry, then
      its ``topk`` best; the global top-k is contained in the union of these per-entry top-k's, so
      a second top-k over the ``(n_context + 1) * topk`` survivors gives it;
    - the initial copies of the first frame in the queue share one computation (same features,
      same labels);
    - with ``restrict_neighborhood``, queue entries are computed only for the grid rows within
      ``radius`` of the chunk's rows: the others are outside the radius, carry -1e10 in the
      reference, are never among the top-k (the first frame alone offers h*w unrestricted
      candidates) and would get softmax weight exactly 0. This is used only while
      ``max |features| ** 2 / temperature`` is below 1e8 (always for normalised features), where
      that argument holds; else full rows are computed.

    Exact ties among affinities may be broken differently from ``torch.topk`` over the full row
    (whose tie order is itself unspecified); only ties between candidates with *different* labels
    can change a prediction, and only in the last bits of float32 sums unless the tie is at the
    k-th place. On the fixtures the predictions are equal to 1.2e-7.

    Args:
        first_features: (h, w, C) float features of the first frame, L2-normalised per position.
        heatmap: (h, w, L) first-frame labels (one-hot masks, keypoint heatmaps).
        n_context: length of the queue of past frames (>= 1).
        temperature: affinity temperature (> 0).
        topk: neighbours averaged per position (1 <= topk <= (n_context+1) * h * w).
        radius: neighbourhood radius in grid cells for the queue entries (distance < radius kept).
        restrict_neighborhood: apply the radius restriction (False: the inference demo's JAX copy).
        chunk_size: query positions per chunk; default from ``max_chunk_bytes``.
        max_chunk_bytes: memory budget of one chunk's affinities (float32, a few (chunk, h*w) buffers).

    Raises:
        ValueError / TypeError: wrong shapes, dtypes, NaNs or parameters.
    """

    def __init__(
        self,
        first_features,
        heatmap,
        n_context: int = 20,
        temperature: float = 0.7,
        topk: int = 7,
        radius: float = 20,
        restrict_neighborhood: bool = True,
        *,
        chunk_size: int | None = None,
        max_chunk_bytes: int = DEFAULT_MAX_CHUNK_BYTES,
    ):
        first = _as_tensor(first_features, "first_features")
        if first.ndim != 3:
            _check_features(first[None] if first.ndim == 2 else first)  # (N, D) tokens: the off-grid message
            raise ValueError(f"first_features must be one frame's (h, w, C) features, got shape {tuple(first.shape)}")
        _check_features(first[None])
        h, w, C = first.shape
        heatmap = _check_heatmap(_as_tensor(heatmap, "heatmap"), (h, w), first.device)
        params = check_propagation_parameters(n_context, temperature, topk, radius, restrict_neighborhood)
        check_topk_fits(params["topk"], params["n_context"], (h, w))
        n_context, temperature, topk = params["n_context"], params["temperature"], params["topk"]
        radius, restrict_neighborhood = params["radius"], params["restrict_neighborhood"]
        n = h * w
        self.grid = (h, w)
        self.num_channels = C
        self.num_labels = heatmap.shape[2]
        self.n_context = int(n_context)
        self.temperature = temperature
        self._temperature = torch.tensor(float(temperature), dtype=torch.float32, device=first.device)
        self.topk = int(topk)
        self.radius = radius
        self.restrict_neighborhood = bool(restrict_neighborhood)
        self.device = first.device
        self.first_features = first.to(torch.float32).reshape(n, C)
        self.first_labels = heatmap.reshape(n, self.num_labels)
        self.queue: deque[tuple[torch.Tensor, torch.Tensor]] = deque(
            [(self.first_features, self.first_labels)] * self.n_context, maxlen=self.n_context
        )
        if chunk_size is None:
            # Per query row: the first frame's affinities, one queue entry's and the top-k workspace.
            chunk_size = max(1, int(max_chunk_bytes) // (n * 4 * 3))
        self.chunk_size = max(1, min(int(chunk_size), n))
        self.chunks = [(start, min(start + self.chunk_size, n)) for start in range(0, n, self.chunk_size)]
        # Grid coordinates, for the neighbourhood masks (dist < radius in float32, as the reference).
        ii, jj = torch.meshgrid(torch.arange(h, device=self.device), torch.arange(w, device=self.device), indexing="ij")
        self._coords = torch.stack([ii.reshape(-1), jj.reshape(-1)], -1).to(torch.float32)  # (n, 2)
        # Largest feature norm of each context entry, for the band's safety bound (see the class notes).
        self._first_norm = float(self.first_features.norm(dim=-1).max())
        self._norms: deque[float] = deque([self._first_norm] * self.n_context, maxlen=self.n_context)
        # The masks are the same for every frame: kept when all of them take at most a quarter of the
        # chunk budget (64 MiB by default: a 30 x 55 grid's take 11 MB), else rebuilt for each chunk.
        self._masks: dict[tuple[int, int, int], torch.Tensor] = {}
        self._cache_masks = self.restrict_neighborhood and n * n * 4 <= int(max_chunk_bytes) // 4
        self.frames_done = 0

    def _band(self, start: int, stop: int) -> tuple[int, int]:
        """Key positions [lo, hi) that can be within the radius of query positions [start, stop): whole grid rows."""
        h, w = self.grid
        reach = max(int(math.ceil(float(self.radius))), 0)  # rows farther than that are outside (|di| >= radius)
        first_row, last_row = start // w, (stop - 1) // w
        lo_row, hi_row = max(0, first_row - reach), min(h, last_row + reach + 1)
        return lo_row * w, hi_row * w

    def _dmask(self, start: int, stop: int, lo: int, hi: int) -> torch.Tensor:
        """The reference's Dmask rows of queries [start, stop) and keys [lo, hi): 0 inside the radius, -1e10 outside."""
        key = (start, lo, hi)
        mask = self._masks.get(key)
        if mask is None:
            dist = torch.sqrt(((self._coords[start:stop, None, :] - self._coords[None, lo:hi, :]) ** 2).sum(-1))
            mask = torch.where(dist < self.radius, 0.0, -1e10).to(torch.float32)
            if self._cache_masks:
                self._masks[key] = mask
        return mask

    def step(self, features) -> torch.Tensor:
        """Predicts the labels of the next frame and appends it to the context queue.

        Args:
            features: (h, w, C) float features of the frame (L2-normalised like the first's).

        Returns:
            (h, w, L) float32 tensor of propagated labels, on the device of the first features.
        """
        feats = _as_tensor(features, "features")
        if feats.ndim != 3 or tuple(feats.shape) != (*self.grid, self.num_channels):
            raise ValueError(
                f"features must be one frame's (h, w, C) = ({self.grid[0]}, {self.grid[1]}, {self.num_channels}) "
                f"like the first frame's, got shape {tuple(feats.shape)}"
            )
        _check_features(feats[None])
        n = self.grid[0] * self.grid[1]
        query_all = feats.to(device=self.device, dtype=torch.float32).reshape(n, self.num_channels)
        query_norm = float(query_all.norm(dim=-1).max())
        entries = list(self.queue)
        context_labels = torch.cat([self.first_labels] + [labels for _, labels in entries])  # ((n_context+1)*n, L)
        banded = self.restrict_neighborhood and (
            query_norm * max(self._first_norm, *self._norms) / self.temperature < _BAND_SAFE_AFFINITY
        )
        out = torch.empty((n, self.num_labels), dtype=torch.float32, device=self.device)
        for start, stop in self.chunks:
            query = query_all[start:stop]
            lo, hi = self._band(start, stop) if banded else (0, n)
            # The reference's einsum('hwc,tmnc->hwtmn', ...) / temperature (+ Dmask), one context
            # entry at a time: (q, n) for entry 0 (the first frame, never restricted).
            first_aff = torch.mm(query, self.first_features.t()).div_(self.temperature)
            first_vals, first_idx = torch.topk(first_aff, min(self.topk, n), dim=-1)
            values, indices = [first_vals], [first_idx]
            copies = None  # the initial copies of the first frame: one computation for all of them
            for entry, (keys, _) in enumerate(entries, start=1):
                if hi <= lo:
                    continue  # no key row within the radius: every queue candidate is masked
                if keys is self.first_features:
                    if copies is None:
                        aff = first_aff[:, lo:hi]
                        if self.restrict_neighborhood:
                            aff = aff + self._dmask(start, stop, lo, hi)
                        copies = torch.topk(aff, min(self.topk, hi - lo), dim=-1)
                    vals, idx = copies
                else:
                    aff = torch.mm(query, keys[lo:hi].t())
                    if self.restrict_neighborhood:  # Dmask + aff / temperature in one pass, same bits
                        aff = torch.addcdiv(self._dmask(start, stop, lo, hi), aff, self._temperature)
                    else:
                        aff.div_(self.temperature)
                    vals, idx = torch.topk(aff, min(self.topk, hi - lo), dim=-1)
                values.append(vals)
                indices.append(idx + (entry * n + lo))
            values, indices = torch.cat(values, dim=1), torch.cat(indices, dim=1)
            weights, pick = torch.topk(values, min(self.topk, values.shape[1]), dim=-1)
            weights = torch.softmax(weights, dim=-1)
            out[start:stop] = (weights[..., None] * context_labels[indices.gather(1, pick)]).sum(-2)
        self.queue.append((query_all, out))
        self._norms.append(query_norm)
        self.frames_done += 1
        return out.reshape(*self.grid, self.num_labels)


def label_propagation(
    feats,
    heatmap,
    n_context: int = 20,
    temperature: float = 0.7,
    topk: int = 7,
    radius: float = 20,
    restrict_neighborhood: bool = True,
    norm_mask: bool = False,
    *,
    chunk_size: int | None = None,
    max_chunk_bytes: int = DEFAULT_MAX_CHUNK_BYTES,
) -> torch.Tensor:
    """Propagates first-frame labels to every frame along feature affinities (the evaluation demo's version).

    For each frame t (frame 0 included: its prediction is not the ground truth), every position
    attends to the context = the first frame with its given labels plus the last ``n_context``
    frames with their *predicted* labels (the queue starts as ``n_context`` copies of the first
    frame). Affinities are dot products / ``temperature``; queue entries (never the first frame)
    farther than ``radius`` grid cells get -1e10; the ``topk`` largest over all context positions
    are softmax-weighted to average their labels.

    This is :class:`LabelPropagator` stepped over the frames (see it for how the top-k is
    computed without the full (h*w) x ((n_context+1)*h*w) affinity table, and about ties);
    for long videos step a propagator yourself, frame by frame, to avoid holding every frame's
    features.

    Args:
        feats: (T, h, w, C) floating features, L2-normalised per position (see ``normalize_features``).
        heatmap: (h, w, L) first-frame labels (one-hot masks, keypoint heatmaps), float.
        n_context: length of the queue of past frames (>= 1).
        temperature: affinity temperature (> 0).
        topk: neighbours averaged per position (<= (n_context+1) * h * w).
        radius: neighbourhood radius in grid cells for the queue entries (distance < radius kept).
        restrict_neighborhood: apply the radius restriction (the inference demo's JAX copy silently
            never applies it; this equals that when False).
        norm_mask: must be False: the reference never uses it.
        chunk_size: query positions per chunk; default from ``max_chunk_bytes``.
        max_chunk_bytes: memory budget of one chunk's affinities (float32).

    Returns:
        (T, h, w, L) float32 tensor of propagated labels, on the device of ``feats``.

    Raises:
        ValueError / TypeError: wrong shapes, dtypes, NaNs or parameters.
    """
    feats = _as_tensor(feats, "feats")
    heatmap = _as_tensor(heatmap, "heatmap")
    _check_features(feats)
    if norm_mask:
        raise ValueError("norm_mask=True is not supported: the reference's function never uses it (False everywhere)")
    propagator = LabelPropagator(
        feats[0], heatmap, n_context=n_context, temperature=temperature, topk=topk, radius=radius,
        restrict_neighborhood=restrict_neighborhood, chunk_size=chunk_size, max_chunk_bytes=max_chunk_bytes,
    )
    return torch.stack([propagator.step(frame) for frame in feats])


# --------------------------------------------------------------------------------------------------
# cv2.resize rules in numpy (OpenCV 4.x imgproc/src/resize.cpp). Sizes are (height, width) here.
# --------------------------------------------------------------------------------------------------


def _check_image(image: np.ndarray, name: str) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim not in (2, 3) or 0 in image.shape[:2]:
        raise ValueError(f"{name} must be (H, W) or (H, W, C), got shape {image.shape}")
    return image


def cv2_resize_nearest(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``cv2.resize(image, (width, height), interpolation=cv2.INTER_NEAREST)`` in numpy.

    OpenCV's resizeNN: source index ``floor(x * (1 / (dst / src)))`` in float64, clamped to src-1
    (not the pixel-centre rule: this is why the result is shifted against PIL's nearest).

    Args:
        image: (H, W) or (H, W, C) array of any dtype.
        size: (height, width) of the output.

    Returns:
        (height, width[, C]) array of the input's dtype.
    """
    image = _check_image(image, "image")
    height, width = size

    def index(dst: int, src: int) -> np.ndarray:
        ifx = 1.0 / (dst / src)
        return np.minimum(np.floor(np.arange(dst) * ifx).astype(np.int64), src - 1)

    return image[index(height, image.shape[0])][:, index(width, image.shape[1])]


def cv2_resize_nearest_exact(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``cv2.resize(image, (width, height), interpolation=cv2.INTER_NEAREST_EXACT)`` in numpy.

    OpenCV's resizeNN_bitexact: 16-bit fixed point, pixel centres (as PIL / scikit-image):
    ``ifx = ((src << 16) + dst // 2) // dst``, ``ifx0 = ifx // 2 - src % 2``, index
    ``(ifx * x + ifx0) >> 16`` clamped to src-1.

    Args:
        image: (H, W) or (H, W, C) array of any dtype.
        size: (height, width) of the output.

    Returns:
        (height, width[, C]) array of the input's dtype.
    """
    image = _check_image(image, "image")
    height, width = size

    def index(dst: int, src: int) -> np.ndarray:
        ifx = ((src << 16) + dst // 2) // dst
        ifx0 = ifx // 2 - src % 2
        return np.minimum((ifx * np.arange(dst, dtype=np.int64) + ifx0) >> 16, src - 1)

    return image[index(height, image.shape[0])][:, index(width, image.shape[1])]


def _linear_taps(dst: int, src: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OpenCV's INTER_LINEAR taps along one axis: indices (dst, 2) and float32 weights (dst, 2)."""
    scale = 1.0 / (dst / src)  # scale_x = 1. / inv_scale_x, both float64
    # fx = (float)((dx + 0.5) * scale_x - 0.5); sx = floor(fx); fx -= sx (in float32).
    f = ((np.arange(dst, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
    s = np.floor(f).astype(np.int64)
    f = (f - s.astype(np.float32)).astype(np.float32)
    # Borders: sx < 0 -> (0, fx = 0); sx >= src - 1 -> (src - 1, fx = 0).
    low = s < 0
    f[low], s[low] = 0, 0
    high = s >= src - 1
    f[high], s[high] = 0, src - 1
    idx = np.stack([s, np.minimum(s + 1, src - 1)], -1)
    weights = np.stack([np.float32(1) - f, f], -1).astype(np.float32)
    return idx, weights


def cv2_resize_linear(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``cv2.resize(image.astype(float32), (width, height), interpolation=cv2.INTER_LINEAR)`` in numpy.

    OpenCV's float path: taps from ``(dx + 0.5) * scale - 0.5`` (no antialiasing: shrinking by 16
    samples the 2 x 2 pixels at each patch centre, not an area average), a horizontal pass
    ``S[sx] * a0 + S[sx+1] * a1`` then a vertical pass ``R0 * b0 + R1 * b1``, both in float32
    without fused multiply-add, which is what OpenCV's x86 builds compute. Exactly 2x shrinks
    use OpenCV's area path, which equals this for the same taps (weights 0.5).

    Args:
        image: (H, W) or (H, W, C) array; computed in float32.
        size: (height, width) of the output.

    Returns:
        (height, width[, C]) float32 array.
    """
    image = _check_image(image, "image").astype(np.float32, copy=False)
    height, width = size
    xi, xw = _linear_taps(width, image.shape[1])
    yi, yw = _linear_taps(height, image.shape[0])
    extra = (None,) * (image.ndim - 2)
    rows = image[:, xi[:, 0]] * xw[(slice(None), 0) + extra] + image[:, xi[:, 1]] * xw[(slice(None), 1) + extra]
    wy0 = yw[(slice(None), 0, None) + extra]
    wy1 = yw[(slice(None), 1, None) + extra]
    return (rows[yi[:, 0]] * wy0 + rows[yi[:, 1]] * wy1).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# DAVIS (6.3) and JHMDB (6.4) label encodings.
# --------------------------------------------------------------------------------------------------


def mask_to_heatmap(mask: np.ndarray, grid: tuple[int, int], size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """First-frame label map -> (h, w, L) one-hot heatmap on the feature grid (the demo's ``mask2heatmap``).

    ``labels = np.unique(mask)``; the mask is resized to the processing size with INTER_NEAREST,
    one-hot encoded over ``labels`` (float32) and resized to the grid with INTER_LINEAR.

    Args:
        mask: (H0, W0) integer label map (0 = background).
        grid: (h, w) feature grid.
        size: (height, width) processing size of the video (the backbone's input).

    Returns:
        heatmap (h, w, L) float32 and labels (L,) int32 (the label of each channel).
    """
    mask = np.asarray(mask)
    if mask.ndim != 2 or 0 in mask.shape:
        raise ValueError(f"mask must be a (H, W) label map, got shape {mask.shape}")
    if not np.issubdtype(mask.dtype, np.integer):
        raise TypeError(f"mask must be an integer label map, got {mask.dtype}")
    labels = np.unique(mask)
    resized = cv2_resize_nearest(mask, size)
    onehot = (resized[..., None] == labels).astype(np.float32)
    return cv2_resize_linear(onehot, grid).reshape(*grid, len(labels)), labels.astype(np.int32)


def heatmap_to_mask(heatmaps, labels: np.ndarray, size: tuple[int, int], original_size: tuple[int, int]) -> np.ndarray:
    """Propagated heatmaps -> label maps at the original size (the demo's ``process_segmentation``).

    Per frame: INTER_LINEAR to the processing size, argmax over L (first maximum), the label of
    that channel, INTER_NEAREST_EXACT to the original size.

    Args:
        heatmaps: (T, h, w, L) propagated labels.
        labels: (L,) label of each channel (``mask_to_heatmap``'s second output).
        size: (height, width) processing size.
        original_size: (H0, W0) of the video.

    Returns:
        (T, H0, W0) int32 label maps.
    """
    heatmaps = heatmaps.detach().cpu().numpy() if isinstance(heatmaps, torch.Tensor) else np.asarray(heatmaps)
    labels = np.asarray(labels)
    if heatmaps.ndim != 4 or heatmaps.shape[-1] != len(labels):
        raise ValueError(f"heatmaps must be (T, h, w, L) with L = {len(labels)} labels, got shape {heatmaps.shape}")
    out = np.empty((heatmaps.shape[0], *original_size), dtype=np.int32)
    for t, pred in enumerate(heatmaps):
        up = cv2_resize_linear(pred, size).reshape(*size, len(labels))
        out[t] = cv2_resize_nearest_exact(labels[np.argmax(up, axis=-1)].astype(np.int32), original_size)
    return out


def _draw_labelmap(img: np.ndarray, pt: tuple[float, float], sigma: float) -> None:
    """pytorch-pose's ``draw_labelmap`` (Gaussian): a (6 sigma + 1)^2 patch written, not added, in place.

    The corner is ``int(pt - 3 sigma)``: truncation toward zero, so near the left/top border the
    peak is shifted (a trap of the reference, kept).
    """
    ul = [int(pt[0] - 3 * sigma), int(pt[1] - 3 * sigma)]
    br = [int(pt[0] + 3 * sigma + 1), int(pt[1] + 3 * sigma + 1)]
    if ul[0] >= img.shape[1] or ul[1] >= img.shape[0] or br[0] < 0 or br[1] < 0:
        return
    size = 6 * sigma + 1
    x = np.arange(0, size, 1, float)
    y = x[:, None]
    x0 = y0 = size // 2
    g = np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * sigma**2))
    g_x = max(0, -ul[0]), min(br[0], img.shape[1]) - ul[0]
    g_y = max(0, -ul[1]), min(br[1], img.shape[0]) - ul[1]
    img_x = max(0, ul[0]), min(br[0], img.shape[1])
    img_y = max(0, ul[1]), min(br[1], img.shape[0])
    img[img_y[0] : img_y[1], img_x[0] : img_x[1]] = g[g_y[0] : g_y[1], g_x[0] : g_x[1]]


def pose_to_heatmap(keypoints: np.ndarray, grid: tuple[int, int], original_size: tuple[int, int], sigma: float = 0.5) -> np.ndarray:
    """First-frame keypoints -> (h, w, K + 1) heatmap (the demo's ``pose2heatmap``).

    Coordinates scale to the grid by (w / W0, h / H0) (no half-pixel shift); joint k gets channel
    k + 1 (a Gaussian patch, see ``_draw_labelmap``); channel 0 = 1 where every joint channel is 0.

    Args:
        keypoints: (K, 2) pixel (x, y) in the original frame.
        grid: (h, w) feature grid.
        original_size: (H0, W0) of the video.
        sigma: Gaussian sigma in grid cells (0.5 in the demo).

    Returns:
        (h, w, K + 1) float32 heatmap.
    """
    keypoints = np.asarray(keypoints)
    if keypoints.ndim != 2 or keypoints.shape[1] != 2 or not np.issubdtype(keypoints.dtype, np.number):
        raise ValueError(f"keypoints must be a numeric (K, 2) array of (x, y), got shape {keypoints.shape}")
    if not np.isfinite(keypoints).all():
        raise ValueError("keypoints contain NaN or infinite values")
    h, w = grid
    H0, W0 = original_size
    heatmap = np.zeros((h, w, len(keypoints) + 1), dtype=np.float32)
    for k, (x, y) in enumerate(keypoints):
        channel = np.zeros((h, w), dtype=np.float32)
        _draw_labelmap(channel, (x * w / W0, y * h / H0), sigma)
        heatmap[..., k + 1] = channel
    heatmap[..., 0] = (heatmap[..., 1:].sum(-1) == 0).astype(np.float32)
    return heatmap


def heatmap_to_pose(heatmaps, original_size: tuple[int, int], topk: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Propagated heatmaps -> keypoints (the demo's ``process_pose``).

    Per joint channel (1..): the ``topk`` largest values over the h*w positions (``torch.topk``, so
    exact ties at the k-th value break as the reference's do), normalised to sum 1, weight the grid
    coordinates (x = idx % w, y = idx // w), scaled by (W0 / w, H0 / h). A channel that is all
    zero gives (-1, -1) and is invisible.

    Args:
        heatmaps: (T, h, w, K + 1) propagated labels (channel 0 = background).
        original_size: (H0, W0) of the video.
        topk: positions averaged per joint.

    Returns:
        coordinates (T, K, 2) float32 (x, y) pixels, -1 where invisible, and visibility (T, K) bool.
    """
    heatmaps = _as_tensor(heatmaps, "heatmaps").detach().to("cpu", torch.float32)
    if heatmaps.ndim != 4 or heatmaps.shape[-1] < 2:
        raise ValueError(f"heatmaps must be (T, h, w, K + 1), got shape {tuple(heatmaps.shape)}")
    T, h, w, _ = heatmaps.shape
    H0, W0 = original_size
    flat = heatmaps[..., 1:].reshape(T, h * w, -1)  # (T, h*w, K)
    k = min(topk, h * w)
    vals, ids = torch.topk(flat, k=k, dim=1)
    total = vals.sum(1, keepdim=True)
    vals = vals / torch.where(total == 0, torch.ones_like(total), total)
    x = (vals * (ids % w)).sum(1) * (W0 / w)
    y = (vals * torch.div(ids, w, rounding_mode="floor")).sum(1) * (H0 / h)
    coords = torch.stack([x, y], -1)
    empty = flat.sum(1) == 0
    coords[empty] = -1
    coords = coords.numpy().astype(np.float32)
    return coords, coords[..., 0] >= 0
