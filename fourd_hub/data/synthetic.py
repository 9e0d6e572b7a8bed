"""Synthetic scenes with exact labels: moving textured shapes under a moving camera.

Every readout test and demo trains on these clips. A pure-numpy ray caster renders each pixel
centre exactly (no rasterisation), so the labels are exact by construction:

- ``video``: procedurally textured surfaces (sums of band-limited sinusoids in each surface's own
  coordinates, so features stay put on a surface as it moves), Lambertian shading and
  atmospheric fog.
- ``depth``: z-depth in the camera frame (distance along the optical axis, metres) of the
  nearest surface hit by the ray through each pixel centre.
- ``surface_ids``: which surface that is (:data:`FLOOR_ID`, :data:`WALL_ID`, then objects from
  :data:`FIRST_OBJECT_ID`).
- point ``tracks`` with ``visible``: surface points picked at frame 0, carried along with their
  surface and projected in every frame; a point is visible when it lies inside the image and the
  ray through its exact projected position hits that same surface at the same depth first.
- ``boxes``: exact 2D extents of each object's projection (card corners; sphere silhouettes in
  closed form), clipped to the image.
- ``camera_to_world`` poses and ``intrinsics``; :func:`relative_pose` for the pose readout.

Depth is meant to be learnable from the pixels, which the readout tests rely on: the ground
plane ties depth to the image row and fog ties it to colour (the fog colour is the same in
every scene).

Conventions:

- Pixels: continuous (x, y), (0, 0) the top-left corner of the image, pixel centres at +0.5.
- Camera frame: OpenCV (x right, y down, z forward); a pinhole with square pixels whose
  principal point is the image centre, focal length from the horizontal field of view.
- World frame: right-handed, y up; the floor is the plane y = 0; an unrotated camera looks
  along -z; the back wall is the plane z = -wall_distance. ``camera_to_world`` maps camera-frame
  points to world points: ``X_world = R @ X_cam + t``.

Entry points: :func:`render_scene` (a random scene from a :class:`SyntheticSceneConfig` and a
seed), :func:`render` (explicit cameras and :class:`SceneObject` s, for handcrafted scenes),
:class:`SyntheticSceneDataset` (items shaped like the task models' ``forward`` arguments).
"""

from __future__ import annotations

import math
import numbers
import operator
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

__all__ = [
    "FIRST_OBJECT_ID",
    "FLOOR_ID",
    "OBJECT_KINDS",
    "WALL_ID",
    "SceneObject",
    "SyntheticScene",
    "SyntheticSceneConfig",
    "SyntheticSceneDataset",
    "Texture",
    "camera_pose",
    "intrinsics_from_fov",
    "relative_pose",
    "render",
    "render_scene",
]

FLOOR_ID = 0
WALL_ID = 1
FIRST_OBJECT_ID = 2  # object k has surface id FIRST_OBJECT_ID + k
OBJECT_KINDS = ("card", "sphere")

DEFAULT_FOG_COLOR = (0.78, 0.82, 0.88)

# Smallest ray parameter (= z-depth, rays have unit z in the camera frame) counted as a hit.
_MIN_HIT = 1e-6
# Near plane (metres) for projections: points closer than this to the camera plane are not
# projected faithfully and count as invisible.
_NEAR = 1e-3
# Track visibility: the first hit along the ray through a projected point must be within this
# (absolute + relative) depth of the point. The ray passes exactly through the point, so a few
# ulps would do; the slack only has to stay far below the gap to any occluder.
_VISIBILITY_ATOL = 1e-5
_VISIBILITY_RTOL = 1e-5
# Rays cast at once: bounds the float64 temporaries of large clips (~50 MB each at this size).
_RAYS_PER_CHUNK = 1 << 18
# Directional light (world frame), fixed so that shading is one more consistent cue.
_LIGHT = np.array([0.3, 1.0, 0.6]) / np.linalg.norm([0.3, 1.0, 0.6])
_AMBIENT = 0.55
# Maps the camera axes (x right, y down, z forward) onto world axes (x right, y up, -z forward).
_CAMERA_BASE = np.diag([1.0, -1.0, -1.0])


# ----------------------------------------------------------------------------------------------
# Small geometry helpers


def _rot_x(angle: np.ndarray | float) -> np.ndarray:
    """Rotation(s) about the x axis by ``angle`` radians: (...,) -> (..., 3, 3)."""
    angle = np.asarray(angle, dtype=np.float64)
    c, s = np.cos(angle), np.sin(angle)
    one, zero = np.ones_like(angle), np.zeros_like(angle)
    return np.stack([one, zero, zero, zero, c, -s, zero, s, c], axis=-1).reshape(angle.shape + (3, 3))


def _rot_y(angle: np.ndarray | float) -> np.ndarray:
    """Rotation(s) about the y axis by ``angle`` radians: (...,) -> (..., 3, 3)."""
    angle = np.asarray(angle, dtype=np.float64)
    c, s = np.cos(angle), np.sin(angle)
    one, zero = np.ones_like(angle), np.zeros_like(angle)
    return np.stack([c, zero, s, zero, one, zero, -s, zero, c], axis=-1).reshape(angle.shape + (3, 3))


def _camera_rotation(yaw_degrees: np.ndarray | float, pitch_degrees: np.ndarray | float) -> np.ndarray:
    """Camera-to-world rotation(s) (..., 3, 3): turn left by yaw, then tilt up by pitch."""
    return _rot_y(np.radians(yaw_degrees)) @ _rot_x(np.radians(pitch_degrees)) @ _CAMERA_BASE


def camera_pose(position: Sequence[float], yaw: float = 0.0, pitch: float = 0.0) -> np.ndarray:
    """A camera-to-world pose.

    Args:
        position: (3,) camera centre in world coordinates (y up; the floor is y = 0).
        yaw: degrees about the world's vertical axis; 0 looks along -z, positive turns left.
        pitch: degrees; positive looks up, negative looks down at the floor.

    Returns:
        (4, 4) float64 matrix mapping camera-frame points to world points.
    """
    position = np.asarray(position, dtype=np.float64)
    if position.shape != (3,):
        raise ValueError(f"position must be (3,), got shape {position.shape}")
    pose = np.eye(4)
    pose[:3, :3] = _camera_rotation(yaw, pitch)
    pose[:3, 3] = position
    return pose


def intrinsics_from_fov(field_of_view: float, height: int, width: int) -> np.ndarray:
    """Pinhole intrinsics (3, 3) float64 from the horizontal field of view (degrees).

    Square pixels, principal point at the image centre ``(width / 2, height / 2)`` (pixel centres
    are at +0.5, so this is the centre of the pixel grid).
    """
    if not 0.0 < field_of_view < 180.0:
        raise ValueError(f"field_of_view must be in (0, 180) degrees, got {field_of_view}")
    focal = (width / 2.0) / math.tan(math.radians(field_of_view) / 2.0)
    return np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])


def _rigid_inverse(pose: np.ndarray) -> np.ndarray:
    """Inverse of rigid transform(s) (..., 4, 4) without a general matrix inverse."""
    rotation_t = np.swapaxes(pose[..., :3, :3], -1, -2)
    inverse = np.zeros_like(pose)
    inverse[..., :3, :3] = rotation_t
    inverse[..., :3, 3] = -np.einsum("...ij,...j->...i", rotation_t, pose[..., :3, 3])
    inverse[..., 3, 3] = 1.0
    return inverse


# ----------------------------------------------------------------------------------------------
# Textures and objects


@dataclass(frozen=True, eq=False)
class Texture:
    """A smooth procedural texture: a base colour plus a few coloured sinusoids.

    ``colour(p) = base + sum_k amplitudes[k] * sin(frequencies[k] . p + phases[k])``, clipped to
    [0, 1], where ``p`` are the surface's own coordinates in metres (2D for planes, 3D surface
    points for spheres). Each wave is attenuated by a Gaussian of the pixel's footprint on the
    surface, i.e. the texture is band-limited before it is point-sampled: far or grazing surfaces
    turn smooth instead of aliasing, so the same surface point keeps (about) the same colour over
    the clip, which trackers need.

    Attributes:
        base: (3,) RGB.
        frequencies: (K, D) radians per metre.
        phases: (K,) radians.
        amplitudes: (K, 3) RGB per wave.
    """

    base: np.ndarray
    frequencies: np.ndarray
    phases: np.ndarray
    amplitudes: np.ndarray

    def __post_init__(self):
        base = np.asarray(self.base, dtype=np.float64)
        frequencies = np.asarray(self.frequencies, dtype=np.float64)
        phases = np.asarray(self.phases, dtype=np.float64)
        amplitudes = np.asarray(self.amplitudes, dtype=np.float64)
        if base.shape != (3,):
            raise ValueError(f"texture base must be (3,) RGB, got shape {base.shape}")
        if frequencies.ndim != 2 or phases.shape != frequencies.shape[:1] or amplitudes.shape != (len(frequencies), 3):
            raise ValueError(
                "texture needs frequencies (K, D), phases (K,) and amplitudes (K, 3), got shapes "
                f"{frequencies.shape}, {phases.shape}, {amplitudes.shape}"
            )
        for name, value in (("base", base), ("frequencies", frequencies), ("phases", phases), ("amplitudes", amplitudes)):
            object.__setattr__(self, name, value)

    @property
    def dim(self) -> int:
        """Dimension D of the coordinates the texture is a function of."""
        return self.frequencies.shape[1]

    @classmethod
    def random(
        cls,
        rng: np.random.Generator,
        dim: int = 2,
        period: tuple[float, float] = (0.3, 1.5),
        contrast: float = 0.5,
        num_waves: int = 4,
        base: Sequence[float] | None = None,
    ) -> Texture:
        """A random texture: ``num_waves`` waves in random directions, log-uniform periods (metres).

        Waves are mostly luminance (shared across channels) so that features survive in grey.
        """
        base = rng.uniform(0.2, 0.8, 3) if base is None else np.asarray(base, dtype=np.float64)
        directions = rng.normal(size=(num_waves, dim))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        periods = np.exp(rng.uniform(math.log(period[0]), math.log(period[1]), num_waves))
        amplitudes = 0.7 * rng.uniform(-1, 1, (num_waves, 1)) + 0.3 * rng.uniform(-1, 1, (num_waves, 3))
        return cls(
            base=base,
            frequencies=directions * (2 * math.pi / periods)[:, None],
            phases=rng.uniform(0, 2 * math.pi, num_waves),
            amplitudes=amplitudes * contrast / math.sqrt(num_waves),
        )

    def __call__(self, coords: np.ndarray, footprint: np.ndarray) -> np.ndarray:
        """Colours (N, 3) in [0, 1] at surface coordinates (N, D), pixel footprints (N,) metres."""
        phase = coords @ self.frequencies.T + self.phases  # (N, K)
        # Gaussian pixel filter of std footprint / 2 applied to each wave.
        attenuation = np.exp(-0.125 * (footprint[:, None] * np.linalg.norm(self.frequencies, axis=1)) ** 2)
        return np.clip(self.base + (np.sin(phase) * attenuation) @ self.amplitudes, 0.0, 1.0)


def _default_texture(dim: int) -> Texture:
    return Texture.random(np.random.default_rng(1234 + dim), dim=dim, period=(0.15, 0.6))


@dataclass(frozen=True, eq=False)
class SceneObject:
    """A rigid textured shape with a pose per frame.

    Attributes:
        kind: ``"card"`` (a rectangle in its local x-y plane, normal = local z, seen from both
            sides) or ``"sphere"`` (centred on its local origin).
        centers: (T, 3) world position of the local origin per frame.
        rotations: (T, 3, 3) object-to-world rotation per frame (the texture turns with it).
        extent: card: ``(half_width, half_height)`` along local x and y; sphere: ``(radius,)``.
        texture: in the local frame: 2D (x, y) for cards, 3D surface points for spheres; a fixed
            texture by default.
    """

    kind: str
    centers: np.ndarray
    rotations: np.ndarray
    extent: tuple[float, ...]
    texture: Texture | None = None

    def __post_init__(self):
        if self.kind not in OBJECT_KINDS:
            raise ValueError(f"object kind must be one of {OBJECT_KINDS}, got {self.kind!r}")
        centers = np.asarray(self.centers, dtype=np.float64)
        rotations = np.asarray(self.rotations, dtype=np.float64)
        if centers.ndim != 2 or centers.shape[1] != 3 or rotations.shape != (len(centers), 3, 3):
            raise ValueError(
                f"object centers must be (T, 3) and rotations (T, 3, 3), got {centers.shape} and {rotations.shape}"
            )
        if not np.allclose(rotations @ np.swapaxes(rotations, 1, 2), np.eye(3), atol=1e-6):
            raise ValueError("object rotations must be orthonormal")
        extent = tuple(float(v) for v in np.atleast_1d(self.extent))
        want = 2 if self.kind == "card" else 1
        if len(extent) != want or not all(v > 0 and math.isfinite(v) for v in extent):
            raise ValueError(f"a {self.kind} needs {want} positive extent value(s), got {self.extent}")
        dim = 2 if self.kind == "card" else 3
        texture = _default_texture(dim) if self.texture is None else self.texture
        if texture.dim != dim:
            raise ValueError(f"a {self.kind} needs a {dim}D texture, got {texture.dim}D")
        object.__setattr__(self, "centers", centers)
        object.__setattr__(self, "rotations", rotations)
        object.__setattr__(self, "extent", extent)
        object.__setattr__(self, "texture", texture)

    @property
    def num_frames(self) -> int:
        return len(self.centers)

    @property
    def bounding_radius(self) -> float:
        """Radius of a sphere around the local origin that contains the object."""
        return math.hypot(*self.extent) if self.kind == "card" else self.extent[0]

    @classmethod
    def moving(
        cls,
        kind: str,
        extent: Sequence[float] | float,
        start: Sequence[float],
        end: Sequence[float] | None = None,
        num_frames: int = 1,
        yaw: tuple[float, float] = (0.0, 0.0),
        texture: Texture | None = None,
    ) -> SceneObject:
        """An object moving at constant velocity from ``start`` to ``end`` (world, metres).

        ``yaw`` (degrees, about the world's vertical axis) turns linearly from ``yaw[0]`` to
        ``yaw[1]``; at yaw 0 a card faces +z, i.e. an unrotated camera.
        """
        s = np.linspace(0.0, 1.0, num_frames) if num_frames > 1 else np.zeros(1)
        start = np.asarray(start, dtype=np.float64)
        end = start if end is None else np.asarray(end, dtype=np.float64)
        centers = start + s[:, None] * (end - start)
        rotations = _rot_y(np.radians(yaw[0] + s * (yaw[1] - yaw[0])))
        return cls(kind, centers, rotations, tuple(np.atleast_1d(extent)), texture)


# ----------------------------------------------------------------------------------------------
# Ray casting


@dataclass(frozen=True, eq=False)
class _World:
    wall_distance: float
    objects: tuple[SceneObject, ...]
    floor_texture: Texture
    wall_texture: Texture


def _ray_directions(rotations: np.ndarray, intrinsics: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """World directions (F, N, 3) of rays through pixels (x, y), each (F, N) or (N,).

    The camera-frame direction has unit z, so the ray parameter of a hit is its z-depth.
    """
    fx, fy, cx, cy = intrinsics[0, 0], intrinsics[1, 1], intrinsics[0, 2], intrinsics[1, 2]
    x, y = np.broadcast_arrays(x, y)
    camera = np.stack([(x - cx) / fx, (y - cy) / fy, np.ones_like(x)], axis=-1)
    # matmul rather than einsum: several times faster for these shapes.
    return np.matmul(camera, np.swapaxes(rotations, 1, 2))


def _hit_card(obj: SceneObject, frames: np.ndarray, origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    rotations, centers = obj.rotations[frames], obj.centers[frames]
    normal = rotations[:, :, 2]  # (F, 3)
    denom = np.matmul(dirs, normal[:, :, None])[..., 0]
    numer = np.sum((centers - origins) * normal, axis=1)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = numer / denom
    t = np.where(np.isfinite(t) & (t > _MIN_HIT), t, np.inf)
    finite = np.where(np.isfinite(t), t, 0.0)
    points = origins[:, None] + finite[..., None] * dirs - centers[:, None]
    local = np.matmul(points, rotations[:, :, :2])  # first two coordinates of R^T (X - c)
    inside = (np.abs(local[..., 0]) <= obj.extent[0]) & (np.abs(local[..., 1]) <= obj.extent[1])
    return np.where(inside, t, np.inf)


def _hit_sphere(obj: SceneObject, frames: np.ndarray, origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    offset = origins - obj.centers[frames]  # (F, 3)
    a = np.sum(dirs * dirs, axis=-1)
    half_b = np.matmul(dirs, offset[:, :, None])[..., 0]
    c = np.sum(offset * offset, axis=1)[:, None] - obj.extent[0] ** 2
    disc = half_b**2 - a * c
    root = np.sqrt(np.maximum(disc, 0.0))
    near, far = (-half_b - root) / a, (-half_b + root) / a
    # The far root only matters if the camera is inside the sphere.
    t = np.where(near > _MIN_HIT, near, np.where(far > _MIN_HIT, far, np.inf))
    return np.where(disc >= 0, t, np.inf)


def _hit_axis_plane(origin: np.ndarray, direction: np.ndarray, value: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (value - origin[:, None]) / direction
    return np.where(np.isfinite(t) & (t > _MIN_HIT), t, np.inf)


def _cast(world: _World, frames: np.ndarray, origins: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest hits of rays ``origins[f] + t * dirs[f, n]`` (t > 0) at the given frames.

    Args:
        world: the scene.
        frames: (F,) frame indices (object poses).
        origins: (F, 3) camera centres.
        dirs: (F, N, 3) directions with unit camera-frame z.

    Returns:
        t (F, N) float64: ray parameter = z-depth of the hit (inf where nothing is hit);
        ids (F, N) int16: surface id of the hit.
    """
    best = _hit_axis_plane(origins[:, 1], dirs[..., 1], 0.0)  # floor: y = 0
    ids = np.full(best.shape, FLOOR_ID, dtype=np.int16)
    candidates = [(WALL_ID, _hit_axis_plane(origins[:, 2], dirs[..., 2], -world.wall_distance))]
    for k, obj in enumerate(world.objects):
        hit = _hit_card if obj.kind == "card" else _hit_sphere
        candidates.append((FIRST_OBJECT_ID + k, hit(obj, frames, origins, dirs)))
    for surface_id, t in candidates:
        closer = t < best
        best = np.where(closer, t, best)
        ids[closer] = surface_id
    return best, ids


def _shade(
    world: _World, frames: np.ndarray, origins: np.ndarray, dirs: np.ndarray, t: np.ndarray, ids: np.ndarray, pixel_angle: float
) -> np.ndarray:
    """Surface colours (F, N, 3) of the hits found by :func:`_cast` (before fog)."""
    colour = np.zeros(t.shape + (3,))
    for surface_id in np.unique(ids):
        mask = ids == surface_id
        frame_of, _ = np.nonzero(mask)
        d = dirs[mask]
        depth = t[mask]
        points = origins[frame_of] + depth[:, None] * d
        if surface_id == FLOOR_ID:
            texture, coords, normal, two_sided = world.floor_texture, points[:, [0, 2]], np.array([[0.0, 1.0, 0.0]]), True
        elif surface_id == WALL_ID:
            texture, coords, normal, two_sided = world.wall_texture, points[:, [0, 1]], np.array([[0.0, 0.0, 1.0]]), True
        else:
            obj = world.objects[surface_id - FIRST_OBJECT_ID]
            rotations, centers = obj.rotations[frames[frame_of]], obj.centers[frames[frame_of]]
            local = np.matmul((points - centers)[:, None], rotations)[:, 0]  # R^T (X - c)
            texture = obj.texture
            if obj.kind == "card":
                coords, normal, two_sided = local[:, :2], rotations[:, :, 2], True
            else:
                coords, normal, two_sided = local, (points - centers) / obj.extent[0], False
        d_norm = np.linalg.norm(d, axis=1)
        cos_incidence = np.abs(np.sum(normal * d, axis=1)) / d_norm
        # Footprint of one pixel on the surface: distance x angle, stretched at grazing incidence.
        footprint = depth * d_norm * pixel_angle / np.maximum(cos_incidence, 0.2)
        lambert = np.sum(normal * _LIGHT, axis=1)
        lambert = np.abs(lambert) if two_sided else np.maximum(lambert, 0.0)
        shade = _AMBIENT + (1.0 - _AMBIENT) * lambert
        colour[mask] = texture(coords, footprint) * shade[:, None]
    return colour


# ----------------------------------------------------------------------------------------------
# Rendering


@dataclass
class SyntheticScene:
    """A rendered clip and its exact labels (T frames, Q query points, K objects).

    Attributes:
        video: (T, H, W, 3) float32 RGB in [0, 1].
        depth: (T, H, W) float32 z-depth in the camera frame, metres, > 0.
        surface_ids: (T, H, W) int16: ``FLOOR_ID`` (0), ``WALL_ID`` (1), object k ``2 + k``.
        query_points: (Q, 2) float32 pixel (x, y) in frame 0.
        tracks: (T, Q, 2) float32 pixel (x, y) of the query points' surface points in every frame;
            ``tracks[0] == query_points``. Points behind the camera plane are projected as if
            they were ``_NEAR`` in front of it (meaningless, and invisible).
        visible: (T, Q) bool: inside the image and not occluded (self-occlusion included).
        boxes: (T, K, 4) float32 pixel (x1, y1, x2, y2) of each object's projection, clipped to
            [0, W] x [0, H]; zero-area when the object is out of view, all zeros when it is
            entirely behind the camera.
        box_visible: (T, K) bool: at least one pixel centre of the object is visible.
        camera_to_world: (T, 4, 4) float32 camera-to-world poses.
        intrinsics: (3, 3) float32 pinhole intrinsics.
    """

    video: np.ndarray
    depth: np.ndarray
    surface_ids: np.ndarray
    query_points: np.ndarray
    tracks: np.ndarray
    visible: np.ndarray
    boxes: np.ndarray
    box_visible: np.ndarray
    camera_to_world: np.ndarray
    intrinsics: np.ndarray


def relative_pose(scene: SyntheticScene) -> np.ndarray:
    """Pose of the last frame's camera relative to the first's: ``inv(c2w[0]) @ c2w[-1]``.

    It maps points in the last camera's frame into the first camera's frame (OpenCV camera axes),
    i.e. its translation is the last camera centre expressed in the first camera's frame.

    Returns:
        (4, 4) float32, last row exactly ``[0, 0, 0, 1]``.
    """
    poses = np.asarray(scene.camera_to_world, dtype=np.float64)
    return (_rigid_inverse(poses[0]) @ poses[-1]).astype(np.float32)


def _sample_queries(ids0: np.ndarray, num_points: int, object_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Distinct pixel centres (Q, 2) (x, y) of frame 0, ``object_fraction`` of them on objects."""
    height, width = ids0.shape
    flat = ids0.reshape(-1)
    on_object = np.flatnonzero(flat >= FIRST_OBJECT_ID)
    background = np.flatnonzero(flat < FIRST_OBJECT_ID)
    num_object = min(int(round(object_fraction * num_points)), len(on_object))
    num_background = min(num_points - num_object, len(background))
    num_object = num_points - num_background  # fill a short background pool from objects
    chosen = np.concatenate(
        [rng.choice(on_object, num_object, replace=False), rng.choice(background, num_background, replace=False)]
    )
    chosen = rng.permutation(chosen)
    return np.stack([chosen % width + 0.5, chosen // width + 0.5], axis=1)


def _card_boxes(camera_points: np.ndarray, intrinsics: np.ndarray, height: int, width: int):
    """Boxes (T, 4) of a card from its corners in the camera frames (T, 4, 3).

    The card is clipped against the near plane first: the box of a convex polygon is the box of
    its vertices, which after clipping are the corners in front plus the edge crossings.
    """
    z = camera_points[..., 2]
    nxt = np.roll(camera_points, -1, axis=1)
    z_next = nxt[..., 2]
    crosses = (z - _NEAR) * (z_next - _NEAR) < 0
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(crosses, (_NEAR - z) / (z_next - z), 0.0)
    crossings = camera_points + frac[..., None] * (nxt - camera_points)
    candidates = np.concatenate([camera_points, crossings], axis=1)  # (T, 8, 3)
    valid = np.concatenate([z >= _NEAR, crosses], axis=1)
    depth = np.maximum(candidates[..., 2], _NEAR)
    px = intrinsics[0, 0] * candidates[..., 0] / depth + intrinsics[0, 2]
    py = intrinsics[1, 1] * candidates[..., 1] / depth + intrinsics[1, 2]
    boxes = np.stack(
        [
            np.where(valid, px, np.inf).min(1),
            np.where(valid, py, np.inf).min(1),
            np.where(valid, px, -np.inf).max(1),
            np.where(valid, py, -np.inf).max(1),
        ],
        axis=1,
    )
    return _clip_boxes(boxes, valid.any(1), height, width)


def _sphere_boxes(radius: float, centers: np.ndarray, intrinsics: np.ndarray, height: int, width: int):
    """Exact boxes (T, 4) of spheres' silhouettes from their centres in the camera frames (T, 3).

    The silhouette's extreme x' = x/z values are where the plane through the camera centre and
    the image line x' = const is tangent to the sphere: ``(cx - x' cz)^2 = r^2 (1 + x'^2)``.
    """
    cx, cy, cz = centers[:, 0], centers[:, 1], centers[:, 2]
    in_front = cz > radius * (1 + 1e-9)
    denom = np.where(in_front, cz**2 - radius**2, 1.0)

    def extent(c):
        root = radius * np.sqrt(np.maximum(c**2 + cz**2 - radius**2, 0.0))
        return (c * cz - root) / denom, (c * cz + root) / denom

    (x_lo, x_hi), (y_lo, y_hi) = extent(cx), extent(cy)
    boxes = np.stack(
        [
            intrinsics[0, 0] * x_lo + intrinsics[0, 2],
            intrinsics[1, 1] * y_lo + intrinsics[1, 2],
            intrinsics[0, 0] * x_hi + intrinsics[0, 2],
            intrinsics[1, 1] * y_hi + intrinsics[1, 2],
        ],
        axis=1,
    )
    # A sphere that straddles the camera plane can cover anything: take the whole image.
    straddles = ~in_front & (cz > -radius)
    boxes[straddles] = [0.0, 0.0, width, height]
    return _clip_boxes(boxes, in_front | straddles, height, width)


def _clip_boxes(boxes: np.ndarray, present: np.ndarray, height: int, width: int) -> np.ndarray:
    boxes = np.where(present[:, None], boxes, 0.0)
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0.0, width)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0.0, height)
    return boxes


def render(
    camera_to_world: np.ndarray,
    intrinsics: np.ndarray,
    height: int,
    width: int,
    objects: Sequence[SceneObject] = (),
    *,
    wall_distance: float,
    floor_texture: Texture | None = None,
    wall_texture: Texture | None = None,
    fog_density: float = 0.0,
    fog_color: Sequence[float] = DEFAULT_FOG_COLOR,
    query_points: np.ndarray | None = None,
    num_points: int = 0,
    object_query_fraction: float = 0.5,
    rng: np.random.Generator | int | None = None,
) -> SyntheticScene:
    """Ray-cast an explicit scene: floor (y = 0), back wall (z = -wall_distance) and objects.

    Every ray must hit the floor or the wall (keep the wall in view above the horizon).

    Args:
        camera_to_world: (T, 4, 4) camera poses (see :func:`camera_pose`).
        intrinsics: (3, 3) pinhole intrinsics (see :func:`intrinsics_from_fov`).
        height: image height H.
        width: image width W.
        objects: K objects with T poses each; object k gets surface id ``FIRST_OBJECT_ID + k``.
        wall_distance: the wall is the plane z = -wall_distance.
        floor_texture: 2D texture in world (x, z); a fixed one by default.
        wall_texture: 2D texture in world (x, y); a fixed one by default.
        fog_density: per metre of depth; 0 disables fog.
        fog_color: (3,) RGB the fog fades to.
        query_points: (Q, 2) pixel (x, y) in frame 0 to track (any continuous positions inside
            the image); sampled at ``num_points`` distinct pixel centres when None.
        num_points: number of queries to sample when ``query_points`` is None.
        object_query_fraction: share of sampled queries placed on objects (as far as there are
            object pixels).
        rng: generator (or seed) for sampling queries.

    Returns:
        The rendered :class:`SyntheticScene`.
    """
    poses = np.asarray(camera_to_world, dtype=np.float64)
    intrinsics = np.asarray(intrinsics, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (4, 4) or len(poses) == 0:
        raise ValueError(f"camera_to_world must be (T, 4, 4) with T >= 1, got shape {poses.shape}")
    if intrinsics.shape != (3, 3):
        raise ValueError(f"intrinsics must be (3, 3), got shape {intrinsics.shape}")
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    num_frames = len(poses)
    objects = tuple(objects)
    for k, obj in enumerate(objects):
        if obj.num_frames != num_frames:
            raise ValueError(f"object {k} has {obj.num_frames} poses, the cameras {num_frames}")
    if fog_density < 0:
        raise ValueError(f"fog_density must be >= 0, got {fog_density}")
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    world = _World(
        wall_distance=float(wall_distance),
        objects=objects,
        floor_texture=Texture.random(np.random.default_rng(11), period=(0.5, 2.5)) if floor_texture is None else floor_texture,
        wall_texture=Texture.random(np.random.default_rng(12), period=(1.0, 4.0)) if wall_texture is None else wall_texture,
    )
    rotations, origins = poses[:, :3, :3], poses[:, :3, 3]
    frames = np.arange(num_frames)

    # The image: all pixel centres of all frames, a few frames at a time.
    ys, xs = np.mgrid[0:height, 0:width]
    xs, ys = xs.reshape(-1) + 0.5, ys.reshape(-1) + 0.5
    depth = np.empty((num_frames, height * width))
    ids = np.empty((num_frames, height * width), dtype=np.int16)
    colour = np.empty((num_frames, height * width, 3))
    pixel_angle = 1.0 / intrinsics[0, 0]
    chunk = max(1, _RAYS_PER_CHUNK // (height * width))
    for start in range(0, num_frames, chunk):
        f = frames[start : start + chunk]
        dirs = _ray_directions(rotations[f], intrinsics, xs, ys)
        depth[f], ids[f] = _cast(world, f, origins[f], dirs)
        if not np.isfinite(depth[f]).all():
            raise ValueError("some rays hit no surface: the floor and the back wall must fill the view")
        colour[f] = _shade(world, f, origins[f], dirs, depth[f], ids[f], pixel_angle)
    if fog_density > 0:
        transmittance = np.exp(-fog_density * depth)[..., None]
        colour = colour * transmittance + np.asarray(fog_color, dtype=np.float64) * (1.0 - transmittance)
    depth = depth.reshape(num_frames, height, width)
    ids = ids.reshape(num_frames, height, width)

    # Point tracks: find each query's surface point at frame 0, move it with its surface.
    if query_points is None:
        if not 0 <= num_points <= height * width:
            raise ValueError(f"num_points must be in [0, {height * width}], got {num_points}")
        queries = _sample_queries(ids[0], num_points, object_query_fraction, rng)
    else:
        queries = np.asarray(query_points, dtype=np.float64)
        if queries.ndim != 2 or queries.shape[1] != 2:
            raise ValueError(f"query_points must be (Q, 2) pixel (x, y), got shape {queries.shape}")
        if not ((queries >= 0).all() and (queries[:, 0] < width).all() and (queries[:, 1] < height).all()):
            raise ValueError("query_points must lie inside the image")
    tracks, visible = _track(world, rotations, origins, intrinsics, queries, height, width)

    # Boxes: exact projected extents, visibility from the id map.
    boxes = np.zeros((num_frames, len(objects), 4))
    for k, obj in enumerate(objects):
        if obj.kind == "card":
            a, b = obj.extent
            corners = np.array([[-a, -b, 0.0], [a, -b, 0.0], [a, b, 0.0], [-a, b, 0.0]])
            world_corners = np.einsum("tij,cj->tci", obj.rotations, corners) + obj.centers[:, None]
            camera_corners = np.einsum("tji,tcj->tci", rotations, world_corners - origins[:, None])
            boxes[:, k] = _card_boxes(camera_corners, intrinsics, height, width)
        else:
            camera_centers = np.einsum("tji,tj->ti", rotations, obj.centers - origins)
            boxes[:, k] = _sphere_boxes(obj.extent[0], camera_centers, intrinsics, height, width)
    object_ids = FIRST_OBJECT_ID + np.arange(len(objects), dtype=np.int16)
    box_visible = (ids.reshape(num_frames, 1, -1) == object_ids[None, :, None]).any(-1)

    return SyntheticScene(
        video=np.clip(colour, 0.0, 1.0).reshape(num_frames, height, width, 3).astype(np.float32),
        depth=depth.astype(np.float32),
        surface_ids=ids,
        query_points=queries.astype(np.float32),
        tracks=tracks.astype(np.float32),
        visible=visible,
        boxes=boxes.astype(np.float32),
        box_visible=box_visible,
        camera_to_world=poses.astype(np.float32),
        intrinsics=intrinsics.astype(np.float32),
    )


def _track(world: _World, rotations, origins, intrinsics, queries, height, width) -> tuple[np.ndarray, np.ndarray]:
    """Tracks (T, Q, 2) and visibility (T, Q) of the surface points under queries (Q, 2) at frame 0."""
    num_frames, num_queries = len(rotations), len(queries)
    if num_queries == 0:
        return np.zeros((num_frames, 0, 2)), np.zeros((num_frames, 0), dtype=bool)
    dirs0 = _ray_directions(rotations[:1], intrinsics, queries[:, 0], queries[:, 1])
    t0, surface = _cast(world, np.zeros(1, dtype=int), origins[:1], dirs0)
    t0, surface = t0[0], surface[0]
    if not np.isfinite(t0).all():
        raise ValueError("some query rays hit no surface: the floor and the back wall must fill the view")
    points = np.broadcast_to(origins[0] + t0[:, None] * dirs0[0], (num_frames, num_queries, 3)).copy()
    for k, obj in enumerate(world.objects):
        on = surface == FIRST_OBJECT_ID + k
        if on.any():
            local = (points[0, on] - obj.centers[0]) @ obj.rotations[0]  # R0^T (X - c0)
            points[:, on] = np.einsum("tij,qj->tqi", obj.rotations, local) + obj.centers[:, None]
    camera = np.einsum("tji,tqj->tqi", rotations, points - origins[:, None])
    z = camera[..., 2]
    safe_z = np.maximum(z, _NEAR)
    x = intrinsics[0, 0] * camera[..., 0] / safe_z + intrinsics[0, 2]
    y = intrinsics[1, 1] * camera[..., 1] / safe_z + intrinsics[1, 2]
    x[0], y[0] = queries[:, 0], queries[:, 1]  # exact, not up to rounding
    inside = (z > _NEAR) & (x >= 0) & (x < width) & (y >= 0) & (y < height)
    # Occlusion: cast the ray through the exact projected position; its first hit must be the
    # point itself (same surface, same depth), which also catches a sphere's far side.
    hit_t, hit_id = _cast(world, np.arange(num_frames), origins, _ray_directions(rotations, intrinsics, x, y))
    same = (hit_id == surface[None]) & (np.abs(hit_t - z) <= _VISIBILITY_ATOL + _VISIBILITY_RTOL * np.abs(z))
    return np.stack([x, y], axis=-1), inside & same


# ----------------------------------------------------------------------------------------------
# Random scenes


def _pair(name: str, value, low: float, high: float) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (min, max) pair of numbers, got {value!r}") from None
    if not (low <= lo <= hi <= high):
        raise ValueError(f"{name} must satisfy {low} <= min <= max <= {high}, got {value!r}")
    return lo, hi


@dataclass(frozen=True)
class SyntheticSceneConfig:
    """What :func:`render_scene` draws scenes from.

    Motions are given per clip (not per frame) so that the room stays the right size whatever
    the clip length: a longer clip is the same motion, sampled more densely.

    Attributes:
        num_frames: T.
        height: H pixels.
        width: W pixels.
        num_objects: K objects (cards and/or spheres).
        num_points: Q query points to track, distinct pixel centres of frame 0.
        field_of_view: horizontal, degrees.
        camera_motion: False keeps the camera fixed.
        object_motion: False keeps objects fixed (no translation, no spin).
        fog_density: per metre of depth; 0 disables fog.
        max_depth: every depth is below this (the back wall is placed accordingly), metres.
        fog_color: RGB the fog fades to; the same in every scene (a depth cue).
        camera_height: metres above the floor at frame 0, (min, max).
        camera_pitch: degrees at frame 0, negative looks down, (min, max).
        camera_travel: the camera moves at most this far over the clip, metres.
        camera_rotation: the camera turns (yaw) at most this much over the clip, degrees; its
            pitch changes by at most a third of it.
        object_travel: an object moves at most this far over the clip, metres.
        object_rotation: an object spins about the vertical at most this much over the clip,
            degrees.
        object_size: (min, max) metres: card width and height, sphere diameter.
        object_kinds: kinds drawn from, uniformly.
        object_query_fraction: share of the queries placed on objects (when visible at frame 0),
            so that tracks move by more than the camera's motion.
    """

    num_frames: int = 16
    height: int = 64
    width: int = 64
    num_objects: int = 3
    num_points: int = 64
    field_of_view: float = 60.0
    camera_motion: bool = True
    object_motion: bool = True
    fog_density: float = 0.08
    max_depth: float = 20.0
    fog_color: tuple[float, float, float] = DEFAULT_FOG_COLOR
    camera_height: tuple[float, float] = (1.2, 1.8)
    camera_pitch: tuple[float, float] = (-20.0, -8.0)
    camera_travel: float = 1.0
    camera_rotation: float = 10.0
    object_travel: float = 1.5
    object_rotation: float = 45.0
    object_size: tuple[float, float] = (0.6, 1.5)
    object_kinds: tuple[str, ...] = OBJECT_KINDS
    object_query_fraction: float = 0.5

    def __post_init__(self):
        def integer(name: str, minimum: int):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
            object.__setattr__(self, name, operator.index(value))

        def number(name: str, low: float, high: float, low_open: bool = False):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
            if value < low or value > high or (low_open and value == low):
                bracket = "(" if low_open else "["
                raise ValueError(f"{name} must be in {bracket}{low}, {high}], got {value!r}")
            object.__setattr__(self, name, float(value))

        integer("num_frames", 1)
        integer("height", 2)
        integer("width", 2)
        integer("num_objects", 0)
        integer("num_points", 0)
        if self.num_points > self.height * self.width:
            raise ValueError(f"num_points ({self.num_points}) exceeds the number of pixels ({self.height * self.width})")
        for name in ("camera_motion", "object_motion"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        # Wider views tilted down would look past the wall's side: every ray must hit floor or wall.
        number("field_of_view", 0.0, 120.0, low_open=True)
        number("fog_density", 0.0, math.inf)
        # Below this there is no room between the camera and the wall for objects.
        number("max_depth", 6.0, 1e6)
        number("camera_travel", 0.0, 5.0)
        number("camera_rotation", 0.0, 45.0)
        number("object_travel", 0.0, 10.0)
        number("object_rotation", 0.0, 360.0)
        number("object_query_fraction", 0.0, 1.0)
        try:
            fog_color = tuple(float(v) for v in self.fog_color)
        except (TypeError, ValueError):
            fog_color = ()
        if len(fog_color) != 3 or not all(0.0 <= v <= 1.0 for v in fog_color):
            raise ValueError(f"fog_color must be 3 values in [0, 1], got {self.fog_color!r}")
        object.__setattr__(self, "fog_color", fog_color)
        object.__setattr__(self, "camera_height", _pair("camera_height", self.camera_height, 0.1, 10.0))
        object.__setattr__(self, "camera_pitch", _pair("camera_pitch", self.camera_pitch, -60.0, 20.0))
        if self.camera_height[0] <= 0:
            raise ValueError(f"camera_height must be positive, got {self.camera_height}")
        object.__setattr__(self, "object_size", _pair("object_size", self.object_size, 0.01, 3.0))
        if self.object_size[0] <= 0:
            raise ValueError(f"object_size must be positive, got {self.object_size}")
        kinds = (self.object_kinds,) if isinstance(self.object_kinds, str) else tuple(self.object_kinds)
        if not kinds or any(kind not in OBJECT_KINDS for kind in kinds):
            raise ValueError(f"object_kinds must be a non-empty subset of {OBJECT_KINDS}, got {self.object_kinds!r}")
        object.__setattr__(self, "object_kinds", kinds)


# Objects are placed this far (metres of z-depth) in front of the first camera, at least...
_MIN_OBJECT_DEPTH = 2.5
# ... and stay at least this far in front of every camera (plus their radius).
_MIN_OBJECT_CLEARANCE = 0.8
# The wall is at least this far from every camera position.
_MIN_WALL_DISTANCE = 5.0
_MAX_ATTEMPTS = 100


def _smooth_path(start: np.ndarray, delta: np.ndarray, bend: np.ndarray, num_frames: int) -> np.ndarray:
    """(T, 3) points from start to start + delta along a parabola bulging by ``bend`` midway."""
    s = np.linspace(0.0, 1.0, num_frames)[:, None] if num_frames > 1 else np.zeros((1, 1))
    return start + s * delta + 4.0 * s * (1.0 - s) * bend


def _sample_camera(config: SyntheticSceneConfig, intrinsics: np.ndarray, rng: np.random.Generator):
    """Camera poses (T, 4, 4) and a wall distance keeping every depth below ``max_depth``."""
    num_frames, limit = config.num_frames, 0.97 * config.max_depth
    ys, xs = np.mgrid[0 : config.height, 0 : config.width]
    xs, ys = xs.reshape(-1) + 0.5, ys.reshape(-1) + 0.5
    s = np.linspace(0.0, 1.0, num_frames) if num_frames > 1 else np.zeros(1)
    for _ in range(_MAX_ATTEMPTS):
        height = rng.uniform(*config.camera_height)
        pitch = rng.uniform(*config.camera_pitch)
        yaw = rng.uniform(-5.0, 5.0)
        start = np.array([0.0, height, 0.0])
        delta, bend, turn, tilt = np.zeros(3), np.zeros(3), 0.0, 0.0
        if config.camera_motion:
            heading = rng.uniform(-math.pi, math.pi)
            travel = rng.uniform(0.3, 1.0) * config.camera_travel
            delta = np.array([travel * math.sin(heading), 0.0, -travel * math.cos(heading)])
            delta[1] = rng.uniform(-0.15, 0.15) * config.camera_travel
            bend = rng.uniform(-0.15, 0.15, 3) * config.camera_travel * np.array([1.0, 0.3, 1.0])
            turn = rng.uniform(-1.0, 1.0) * config.camera_rotation
            tilt = rng.uniform(-1.0, 1.0) * config.camera_rotation / 3.0
        positions = _smooth_path(start, delta, bend, num_frames)
        if positions[:, 1].min() < 0.1:
            continue
        poses = np.tile(np.eye(4), (num_frames, 1, 1))
        poses[:, :3, :3] = _camera_rotation(yaw + turn * s, pitch + tilt * s)
        poses[:, :3, 3] = positions
        # Largest wall distance D keeping depth < limit: a pixel's depth is min(floor, wall)
        # with wall depth (D + o_z) / (-d_z), so pixels whose floor depth is already below the
        # limit impose nothing and the others need D <= limit * (-d_z) - o_z.
        dirs = _ray_directions(poses[:, :3, :3], intrinsics, xs, ys)
        with np.errstate(divide="ignore", invalid="ignore"):
            floor_depth = np.where(dirs[..., 1] < 0, -positions[:, 1:2] / dirs[..., 1], np.inf)
        far = floor_depth >= limit
        if (dirs[..., 2][far] >= 0).any():
            continue  # a ray would miss the wall
        bounds = limit * -dirs[..., 2] - positions[:, 2:3]
        wall_max = bounds[far].min() if far.any() else np.inf
        wall_min = _MIN_WALL_DISTANCE - positions[:, 2].min()
        if not math.isfinite(wall_max):
            wall_max = wall_min + 10.0  # the floor fills every view; the wall only bounds the room
        if wall_max < wall_min:
            continue
        wall_distance = rng.uniform(max(wall_min, 0.75 * wall_max), wall_max)
        return poses, wall_distance
    raise ValueError(
        f"could not place the back wall within max_depth={config.max_depth} m for field_of_view="
        f"{config.field_of_view}, camera_height={config.camera_height} and camera_pitch={config.camera_pitch}: "
        "increase max_depth, narrow the field of view, lower the camera or look further down"
    )


def _sample_object(
    config: SyntheticSceneConfig, poses: np.ndarray, wall_distance: float, rng: np.random.Generator
) -> SceneObject:
    num_frames = config.num_frames
    s = np.linspace(0.0, 1.0, num_frames) if num_frames > 1 else np.zeros(1)
    rotation0, origin0 = poses[0, :3, :3], poses[0, :3, 3]
    forward = rotation0[:, 2] * np.array([1.0, 0.0, 1.0])
    forward /= np.linalg.norm(forward)
    right = np.array([-forward[2], 0.0, forward[0]])
    camera_yaw = math.degrees(math.atan2(-forward[0], -forward[2]))
    half_fov = math.tan(math.radians(config.field_of_view) / 2)
    room = wall_distance + origin0[2]  # distance from the first camera to the wall
    candidate = None
    for attempt in range(_MAX_ATTEMPTS):
        kind = config.object_kinds[rng.integers(len(config.object_kinds))]
        if kind == "card":
            extent = tuple(rng.uniform(*config.object_size, 2) / 2)
            vertical, radius = extent[1], math.hypot(*extent)
            texture = Texture.random(rng, 2, period=(0.12, 0.5), contrast=0.6)
        else:
            extent = (rng.uniform(*config.object_size) / 2,)
            vertical = radius = extent[0]
            texture = Texture.random(rng, 3, period=(0.12, 0.5), contrast=0.6)
        texture = Texture(rng.uniform(0.05, 0.95, 3), texture.frequencies, texture.phases, texture.amplitudes)
        near = _MIN_OBJECT_DEPTH + radius
        depth = rng.uniform(near, max(near + 0.1, min(0.5 * room, 8.0)))
        lateral = rng.uniform(-0.75, 0.75) * half_fov * depth
        start = origin0 + forward * depth + right * lateral
        start[1] = rng.uniform(vertical + 0.02, vertical + 0.8)
        delta, bend, spin = np.zeros(3), np.zeros(3), 0.0
        if config.object_motion:
            heading = rng.uniform(-math.pi, math.pi)
            travel = rng.uniform(0.3, 1.0) * config.object_travel
            delta = np.array([travel * math.cos(heading), rng.uniform(-0.2, 0.2) * travel, travel * math.sin(heading)])
            bend = rng.uniform(-0.2, 0.2, 3) * config.object_travel * np.array([1.0, 0.0, 1.0])
            spin = rng.uniform(-1.0, 1.0) * config.object_rotation
        if attempt == _MAX_ATTEMPTS - 1:
            delta, bend, spin = np.zeros(3), np.zeros(3), 0.0  # last resort: a static object
        centers = _smooth_path(start, delta, bend, num_frames)
        yaw0 = camera_yaw + (rng.uniform(-35.0, 35.0) if kind == "card" else rng.uniform(0.0, 360.0))
        tilt = rng.uniform(-10.0, 10.0)
        rotations = _rot_y(np.radians(yaw0 + spin * s)) @ _rot_x(math.radians(tilt))
        candidate = SceneObject(kind, centers, rotations, extent, texture)
        camera_z = np.einsum("tk,tk->t", poses[:, :3, 2], centers - poses[:, :3, 3])
        if (
            (camera_z >= _MIN_OBJECT_CLEARANCE + radius).all()
            and (centers[:, 2] - radius >= -wall_distance + 0.1).all()
            and (centers[:, 1] - vertical >= 0.0).all()
        ):
            return candidate
    return candidate


def render_scene(
    config: SyntheticSceneConfig | None = None, seed: int | Sequence[int] | np.random.Generator = 0
) -> SyntheticScene:
    """Render a random scene: a floor, a back wall and ``num_objects`` moving cards/spheres.

    Deterministic per seed (anything ``np.random.default_rng`` takes, e.g. ``[seed, index]``);
    a Generator is advanced.

    Args:
        config: scene parameters; defaults to ``SyntheticSceneConfig()``.
        seed: random seed or generator.

    Returns:
        The rendered :class:`SyntheticScene`.
    """
    config = SyntheticSceneConfig() if config is None else config
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    intrinsics = intrinsics_from_fov(config.field_of_view, config.height, config.width)
    poses, wall_distance = _sample_camera(config, intrinsics, rng)
    objects = [_sample_object(config, poses, wall_distance, rng) for _ in range(config.num_objects)]
    return render(
        poses,
        intrinsics,
        config.height,
        config.width,
        objects,
        wall_distance=wall_distance,
        floor_texture=Texture.random(rng, 2, period=(0.4, 2.5), base=rng.uniform(0.25, 0.7, 3)),
        wall_texture=Texture.random(rng, 2, period=(0.8, 4.0), base=rng.uniform(0.25, 0.7, 3)),
        fog_density=config.fog_density,
        fog_color=config.fog_color,
        num_points=config.num_points,
        object_query_fraction=config.object_query_fraction,
        rng=rng,
    )


# ----------------------------------------------------------------------------------------------
# Dataset


class SyntheticSceneDataset(torch.utils.data.Dataset):
    """Map-style dataset of rendered scenes: scene i = ``render_scene(config, seed=[seed, i])``.

    Items are dicts of the keyword arguments of the matching task model's ``forward``, so that
    ``transformers.Trainer`` with the default collator works:

    - every task: ``pixel_values_videos`` float32 (T, 3, H, W) in [0, 1];
    - ``"depth"``: ``labels`` float32 (T, H, W) metres;
    - ``"points"``: ``query_points`` float32 (Q, 2) pixel (x, y) at frame 0, ``labels`` float32
      (T, Q, 2), ``visibility_labels`` bool (T, Q);
    - ``"boxes"``: ``query_boxes`` float32 (K, 4) (the frame-0 boxes), ``labels`` float32 (T, K, 4);
    - ``"pose"``: ``labels`` float32 (4, 4) = :func:`relative_pose`;
    - ``"video"``: nothing else.

    Args:
        task: one of :attr:`TASKS`.
        num_scenes: dataset length.
        config: scene parameters; defaults to ``SyntheticSceneConfig()``.
        seed: non-negative base seed.
        cache: keep rendered items in memory (rendering is deterministic, this only saves time).
    """

    TASKS = ("video", "depth", "points", "boxes", "pose")

    def __init__(
        self, task: str, num_scenes: int, config: SyntheticSceneConfig | None = None, seed: int = 0, cache: bool = True
    ):
        if task not in self.TASKS:
            raise ValueError(f"unknown task {task!r}; expected one of {self.TASKS}")
        if isinstance(num_scenes, bool) or not isinstance(num_scenes, numbers.Integral) or num_scenes < 0:
            raise ValueError(f"num_scenes must be a non-negative integer, got {num_scenes!r}")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.task = task
        self.num_scenes = int(num_scenes)
        self.config = SyntheticSceneConfig() if config is None else config
        self.seed = int(seed)
        self.cache = cache
        self._items: dict[int, dict[str, torch.Tensor]] = {}

    def __len__(self) -> int:
        return self.num_scenes

    def scene(self, i: int) -> SyntheticScene:
        """The full rendered scene i (never cached)."""
        return render_scene(self.config, seed=[self.seed, self._index(i)])

    def _index(self, i) -> int:
        i = operator.index(i)
        if not -self.num_scenes <= i < self.num_scenes:
            raise IndexError(f"scene index {i} out of range for {self.num_scenes} scenes")
        return i % self.num_scenes

    def __getitem__(self, i) -> dict[str, torch.Tensor]:
        i = self._index(i)
        item = self._items.get(i)
        if item is None:
            item = self._make_item(self.scene(i))
            if self.cache:
                self._items[i] = item
        # Copies: a consumer writing into a tensor must not change the cache.
        return {key: value.clone() for key, value in item.items()}

    def _make_item(self, scene: SyntheticScene) -> dict[str, torch.Tensor]:
        item = {"pixel_values_videos": torch.from_numpy(np.ascontiguousarray(scene.video.transpose(0, 3, 1, 2)))}
        if self.task == "depth":
            item["labels"] = torch.from_numpy(scene.depth)
        elif self.task == "points":
            item["query_points"] = torch.from_numpy(scene.query_points)
            item["labels"] = torch.from_numpy(scene.tracks)
            item["visibility_labels"] = torch.from_numpy(scene.visible)
        elif self.task == "boxes":
            item["query_boxes"] = torch.from_numpy(np.ascontiguousarray(scene.boxes[0]))
            item["labels"] = torch.from_numpy(scene.boxes)
        elif self.task == "pose":
            item["labels"] = torch.from_numpy(relative_pose(scene))
        return item

