"""The synthetic scene generator: exact depth, tracks, visibility, boxes and poses."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from fourd_hub.data.synthetic import (
    FIRST_OBJECT_ID,
    FLOOR_ID,
    WALL_ID,
    SceneObject,
    SyntheticScene,
    SyntheticSceneConfig,
    SyntheticSceneDataset,
    Texture,
    camera_pose,
    intrinsics_from_fov,
    relative_pose,
    render,
    render_scene,
)

pytestmark = pytest.mark.training

H = W = 64
FOV = 60.0
SMALL = SyntheticSceneConfig(num_frames=8, height=32, width=32, num_objects=2, num_points=16)


def unproject(intrinsics: np.ndarray, pose: np.ndarray, xy: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """World points (N, 3) of pixels (N, 2) (x, y) at z-depths (N,)."""
    k = np.asarray(intrinsics, dtype=np.float64)
    pose = np.asarray(pose, dtype=np.float64)
    xy, depth = np.asarray(xy, dtype=np.float64), np.asarray(depth, dtype=np.float64)
    camera = np.stack([(xy[:, 0] - k[0, 2]) / k[0, 0] * depth, (xy[:, 1] - k[1, 2]) / k[1, 1] * depth, depth], axis=1)
    return camera @ pose[:3, :3].T + pose[:3, 3]


def project(intrinsics: np.ndarray, pose: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Pixels (N, 2) of world points (N, 3)."""
    k = np.asarray(intrinsics, dtype=np.float64)
    pose = np.asarray(pose, dtype=np.float64)
    camera = (points - pose[:3, 3]) @ pose[:3, :3]
    return np.stack([k[0, 0] * camera[:, 0] / camera[:, 2] + k[0, 2], k[1, 1] * camera[:, 1] / camera[:, 2] + k[1, 2]], axis=1)


def pixel_values(image: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Values of an (H, W, ...) map at the pixels containing continuous positions (N, 2)."""
    index = np.floor(xy).astype(int)
    return image[index[:, 1], index[:, 0]]


@pytest.fixture(scope="module")
def scene() -> SyntheticScene:
    return render_scene(SyntheticSceneConfig(), seed=0)


# ----------------------------------------------------------------------------------------------
# Shapes, ranges, determinism


def test_shapes_dtypes_and_ranges(scene):
    config = SyntheticSceneConfig()
    t, q, k = config.num_frames, config.num_points, config.num_objects
    expected = {
        "video": ((t, H, W, 3), np.float32),
        "depth": ((t, H, W), np.float32),
        "surface_ids": ((t, H, W), np.int16),
        "query_points": ((q, 2), np.float32),
        "tracks": ((t, q, 2), np.float32),
        "visible": ((t, q), np.bool_),
        "boxes": ((t, k, 4), np.float32),
        "box_visible": ((t, k), np.bool_),
        "camera_to_world": ((t, 4, 4), np.float32),
        "intrinsics": ((3, 3), np.float32),
    }
    for name, (shape, dtype) in expected.items():
        value = getattr(scene, name)
        assert value.shape == shape, name
        assert value.dtype == dtype, name
    assert 0.0 <= scene.video.min() and scene.video.max() <= 1.0
    assert scene.depth.min() > 0.0 and scene.depth.max() < config.max_depth
    assert set(np.unique(scene.surface_ids)) <= set(range(FIRST_OBJECT_ID + k))
    # Queries are distinct pixel centres and their tracks start on them.
    np.testing.assert_array_equal(scene.query_points % 1, 0.5)
    assert len(np.unique(scene.query_points, axis=0)) == q
    np.testing.assert_array_equal(scene.tracks[0], scene.query_points)
    assert scene.visible[0].all()
    # About half of the queries sit on objects, so tracks move by more than the camera's motion.
    on_object = pixel_values(scene.surface_ids[0], scene.query_points) >= FIRST_OBJECT_ID
    assert on_object.sum() == q // 2
    np.testing.assert_allclose(scene.intrinsics, intrinsics_from_fov(FOV, H, W), rtol=1e-6)
    rotations = scene.camera_to_world[:, :3, :3].astype(np.float64)
    np.testing.assert_allclose(rotations @ rotations.transpose(0, 2, 1), np.broadcast_to(np.eye(3), rotations.shape), atol=1e-6)
    np.testing.assert_allclose(np.linalg.det(rotations), 1.0, atol=1e-6)
    np.testing.assert_array_equal(scene.camera_to_world[:, 3], np.broadcast_to([0, 0, 0, 1], (t, 4)))
    # The camera and the objects do move.
    assert np.abs(np.diff(scene.camera_to_world[:, :3, 3], axis=0)).max() > 1e-3
    assert np.abs(scene.tracks[-1] - scene.tracks[0]).max() > 1.0


def test_deterministic_per_seed_and_seeds_differ():
    a, b = render_scene(SMALL, seed=3), render_scene(SMALL, seed=3)
    for field in dataclasses.fields(SyntheticScene):
        np.testing.assert_array_equal(getattr(a, field.name), getattr(b, field.name))
    np.testing.assert_array_equal(render_scene(SMALL, seed=[1, 2]).video, render_scene(SMALL, seed=np.random.default_rng([1, 2])).video)
    c = render_scene(SMALL, seed=4)
    assert not np.array_equal(a.video, c.video)
    assert not np.array_equal(a.depth, c.depth)


def test_depth_stays_below_max_depth_for_wide_views():
    config = SyntheticSceneConfig(num_frames=4, height=24, width=32, field_of_view=100.0, max_depth=8.0, camera_rotation=20.0)
    for seed in range(5):
        depth = render_scene(config, seed=seed).depth
        assert 0.0 < depth.min() and depth.max() < 8.0


# ----------------------------------------------------------------------------------------------
# Exact geometry


def test_depth_of_level_camera_matches_closed_form():
    """A level camera at height h sees the floor at z = h f / (y - cy) and the wall at z = D."""
    height, wall = 1.5, 12.0
    scene = render(camera_pose([0.0, height, 0.0])[None], intrinsics_from_fov(FOV, H, W), H, W, wall_distance=wall)
    focal, cy = float(scene.intrinsics[0, 0]), H / 2
    rows = np.arange(H) + 0.5
    with np.errstate(divide="ignore"):
        floor = np.where(rows > cy, height * focal / (rows - cy), np.inf)
    expected = np.minimum(floor, wall)[:, None].repeat(W, axis=1)
    np.testing.assert_allclose(scene.depth[0], expected, rtol=1e-6)
    expected_ids = np.where(floor < wall, FLOOR_ID, WALL_ID)[:, None].repeat(W, axis=1)
    np.testing.assert_array_equal(scene.surface_ids[0], expected_ids)


def test_unprojected_depth_lands_on_floor_and_wall():
    wall = 9.0
    pose = camera_pose([0.4, 1.3, 0.2], yaw=12.0, pitch=-18.0)
    scene = render(pose[None], intrinsics_from_fov(70.0, 40, 56), 40, 56, wall_distance=wall, fog_density=0.1)
    ys, xs = np.mgrid[0:40, 0:56]
    pixels = np.stack([xs.ravel() + 0.5, ys.ravel() + 0.5], axis=1)
    points = unproject(scene.intrinsics, pose, pixels, scene.depth[0].ravel())
    ids = scene.surface_ids[0].ravel()
    assert (ids == FLOOR_ID).sum() > 100 and (ids == WALL_ID).sum() > 100
    np.testing.assert_allclose(points[ids == FLOOR_ID, 1], 0.0, atol=1e-4)
    np.testing.assert_allclose(points[ids == WALL_ID, 2], -wall, atol=1e-4 * wall)
    # The floor hit is the nearest: floor pixels' wall would be further, and vice versa.
    assert (points[ids == FLOOR_ID, 2] >= -wall - 1e-3).all()
    assert (points[ids == WALL_ID, 1] >= -1e-4).all()


def test_fog_is_a_lerp_towards_the_fog_colour():
    pose = camera_pose([0.0, 1.5, 0.0], pitch=-10.0)[None]
    k = intrinsics_from_fov(FOV, 32, 32)
    clear = render(pose, k, 32, 32, wall_distance=10.0)
    fog_color = np.array([0.9, 0.8, 0.7])
    foggy = render(pose, k, 32, 32, wall_distance=10.0, fog_density=0.2, fog_color=fog_color)
    np.testing.assert_array_equal(clear.depth, foggy.depth)
    haze = 1.0 - np.exp(-0.2 * clear.depth.astype(np.float64))[..., None]
    np.testing.assert_allclose(foggy.video, clear.video * (1 - haze) + fog_color * haze, atol=1e-5)


def test_rays_that_miss_everything_are_an_error():
    with pytest.raises(ValueError, match="hit no surface"):
        render(camera_pose([0.0, 1.5, 0.0], pitch=80.0)[None], intrinsics_from_fov(FOV, 16, 16), 16, 16, wall_distance=10.0)


# ----------------------------------------------------------------------------------------------
# Tracks and visibility


def test_static_scene_has_constant_fully_visible_tracks():
    config = dataclasses.replace(SMALL, camera_motion=False, object_motion=False)
    scene = render_scene(config, seed=5)
    np.testing.assert_array_equal(scene.tracks, np.broadcast_to(scene.query_points, scene.tracks.shape))
    assert scene.visible.all()
    np.testing.assert_array_equal(scene.depth, np.broadcast_to(scene.depth[0], scene.depth.shape))
    np.testing.assert_array_equal(scene.video, np.broadcast_to(scene.video[0], scene.video.shape))


def test_tracks_of_a_static_scene_follow_the_moving_camera_exactly():
    poses = np.stack([camera_pose([0.1 * t, 1.5 - 0.02 * t, -0.15 * t], yaw=1.5 * t, pitch=-12.0 + 0.5 * t) for t in range(8)])
    k = intrinsics_from_fov(FOV, H, W)
    scene = render(poses, k, H, W, wall_distance=10.0, num_points=100, rng=0)
    world = unproject(k, poses[0], scene.query_points, pixel_values(scene.depth[0], scene.query_points))
    for t in range(8):
        expected = project(k, poses[t], world)
        np.testing.assert_allclose(scene.tracks[t], expected, atol=1e-3)
        # Floor and wall cannot hide each other's points seen from above the floor.
        inside = (expected[:, 0] >= 0) & (expected[:, 0] < W) & (expected[:, 1] >= 0) & (expected[:, 1] < H)
        np.testing.assert_array_equal(scene.visible[t], inside)
    assert not scene.visible[-1].all()  # some points left the view


def test_visible_track_points_unproject_to_their_frame0_world_point(scene):
    """Static-surface points: track + depth at that pixel gives back the same world point."""
    k, poses = scene.intrinsics, scene.camera_to_world
    surface = pixel_values(scene.surface_ids[0], scene.query_points)
    world = unproject(k, poses[0], scene.query_points, pixel_values(scene.depth[0], scene.query_points))
    checked = 0
    for t in range(len(poses)):
        xy = scene.tracks[t]
        index = np.clip(np.floor(xy).astype(int), 0, [W - 1, H - 1])
        # Skip pixels whose centre lies on another surface (track right at an occluding edge).
        same = scene.surface_ids[t, index[:, 1], index[:, 0]] == surface
        use = scene.visible[t] & (surface < FIRST_OBJECT_ID) & same
        depth = scene.depth[t, index[use, 1], index[use, 0]]
        error = np.linalg.norm(unproject(k, poses[t], xy[use], depth) - world[use], axis=1)
        # Only the depth is quantised to the pixel grid: errors are a fraction of the depth.
        assert (error <= 0.1 * depth).all()
        checked += use.sum()
    assert checked > 100


def test_object_tracks_move_with_the_object():
    num_frames, depth, shift = 5, 5.0, 1.2
    k = intrinsics_from_fov(FOV, H, W)
    card = SceneObject.moving("card", (0.6, 0.6), [0.0, 1.5, -depth], [shift, 1.5, -depth], num_frames)
    poses = np.repeat(camera_pose([0.0, 1.5, 0.0])[None], num_frames, axis=0)
    query = np.array([[W / 2 + 0.5, H / 2 + 0.5], [W / 2 - 3.5, H / 2 + 2.5]])
    scene = render(poses, k, H, W, [card], wall_distance=10.0, query_points=query)
    offsets = k[0, 0] * np.linspace(0, shift, num_frames) / depth  # fronto-parallel: f dx / z
    np.testing.assert_allclose(scene.tracks[..., 0], query[None, :, 0] + offsets[:, None], atol=1e-4)
    np.testing.assert_allclose(scene.tracks[..., 1], np.broadcast_to(query[:, 1], (num_frames, 2)), atol=1e-4)
    assert scene.visible.all()
    np.testing.assert_array_equal(pixel_values(scene.surface_ids[0], query), FIRST_OBJECT_ID)


def test_point_behind_a_passing_card_is_occluded():
    """A card sweeps across the ray to a wall point: invisible exactly while the card covers it."""
    num_frames, half = 9, 0.5
    k = intrinsics_from_fov(FOV, H, W)
    xs = np.linspace(-3.0, 3.0, num_frames)
    card = SceneObject.moving("card", (half, half), [xs[0], 1.5, -5.0], [xs[-1], 1.5, -5.0], num_frames)
    poses = np.repeat(camera_pose([0.0, 1.5, 0.0])[None], num_frames, axis=0)
    centre = np.array([[W / 2, H / 2]])  # the ray along the optical axis hits the wall at x = 0
    scene = render(poses, k, H, W, [card], wall_distance=10.0, query_points=centre)
    np.testing.assert_array_equal(pixel_values(scene.surface_ids[0], centre), WALL_ID)
    np.testing.assert_allclose(scene.tracks[:, 0], np.broadcast_to(centre[0], (num_frames, 2)), atol=1e-6)
    np.testing.assert_array_equal(scene.visible[:, 0], np.abs(xs) > half)
    assert not scene.visible[:, 0].all() and scene.visible[0, 0] and scene.visible[-1, 0]


def test_point_on_a_spinning_sphere_hides_on_its_far_side():
    num_frames = 7
    k = intrinsics_from_fov(FOV, H, W)
    ball = SceneObject.moving("sphere", 1.0, [0.0, 1.5, -5.0], num_frames=num_frames, yaw=(0.0, 180.0))
    poses = np.repeat(camera_pose([0.0, 1.5, 0.0])[None], num_frames, axis=0)
    centre = np.array([[W / 2 + 0.5, H / 2 + 0.5]])
    scene = render(poses, k, H, W, [ball], wall_distance=10.0, query_points=centre)
    assert pixel_values(scene.surface_ids[0], centre)[0] == FIRST_OBJECT_ID
    visible = scene.visible[:, 0]
    assert visible[0] and not visible[-1]
    assert (np.diff(visible.astype(int)) <= 0).all()  # visible, then hidden for good
    assert np.abs(scene.tracks[1, 0, 0] - scene.tracks[0, 0, 0]) > 1.0  # the surface point moves


# ----------------------------------------------------------------------------------------------
# Boxes


@pytest.mark.parametrize("seed", range(4))
def test_boxes_contain_object_pixels(seed):
    scene = render_scene(SyntheticSceneConfig(num_objects=4, num_points=8), seed=seed)
    assert scene.box_visible.any()
    for t in range(scene.boxes.shape[0]):
        for k in range(scene.boxes.shape[1]):
            ys, xs = np.nonzero(scene.surface_ids[t] == FIRST_OBJECT_ID + k)
            assert scene.box_visible[t, k] == (len(xs) > 0)
            if len(xs):
                x1, y1, x2, y2 = scene.boxes[t, k]
                assert x1 <= xs.min() + 0.5 and xs.max() + 0.5 <= x2
                assert y1 <= ys.min() + 0.5 and ys.max() + 0.5 <= y2
            assert (scene.boxes[t, k, [0, 2]] >= 0).all() and (scene.boxes[t, k, [0, 2]] <= W).all()
            assert (scene.boxes[t, k, [1, 3]] >= 0).all() and (scene.boxes[t, k, [1, 3]] <= H).all()


@pytest.mark.parametrize("kind", ["card", "sphere"])
def test_boxes_are_tight_around_unoccluded_objects(kind):
    config = SyntheticSceneConfig(num_objects=1, num_points=4, object_kinds=(kind,), object_size=(1.0, 1.5))
    for seed in range(3):
        scene = render_scene(config, seed=seed)
        for t in range(scene.boxes.shape[0]):
            ys, xs = np.nonzero(scene.surface_ids[t] == FIRST_OBJECT_ID)
            if len(xs):  # pixel-grid extent of the silhouette vs. its exact box
                grid = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float32)
                np.testing.assert_allclose(scene.boxes[t, 0], grid, atol=1.0)


# ----------------------------------------------------------------------------------------------
# Poses


def test_relative_pose_of_a_static_camera_is_identity():
    scene = render_scene(dataclasses.replace(SMALL, camera_motion=False), seed=1)
    np.testing.assert_allclose(relative_pose(scene), np.eye(4), atol=1e-6)


def test_relative_pose_of_a_pure_translation_is_that_translation():
    poses = np.stack([camera_pose([0.0, 1.5, 0.0]), camera_pose([0.0, 1.5, 0.0]), camera_pose([0.3, 1.6, -0.5])])
    scene = render(poses, intrinsics_from_fov(FOV, 16, 16), 16, 16, wall_distance=10.0)
    expected = np.eye(4)
    # World (right, up, backwards) -> first camera (right, down, forwards).
    expected[:3, 3] = [0.3, -0.1, 0.5]
    np.testing.assert_allclose(relative_pose(scene), expected, atol=1e-6)


def test_relative_pose_maps_last_camera_points_into_the_first_camera(scene):
    pose = relative_pose(scene)
    assert pose.shape == (4, 4) and pose.dtype == np.float32
    np.testing.assert_array_equal(pose[3], [0, 0, 0, 1])
    pose = pose.astype(np.float64)
    first, last = scene.camera_to_world[0].astype(np.float64), scene.camera_to_world[-1].astype(np.float64)
    point_last = np.array([0.3, -0.2, 4.0, 1.0])
    np.testing.assert_allclose(pose @ point_last, np.linalg.inv(first) @ last @ point_last, atol=1e-5)
    np.testing.assert_allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-5)
    assert np.linalg.norm(pose[:3, 3]) > 1e-3  # the camera moved


# ----------------------------------------------------------------------------------------------
# Learnability


def test_depth_is_predictable_from_image_row_and_colour():
    """The cues the depth readouts learn: a per-pixel linear fit beats the mean depth by far."""
    config = SyntheticSceneConfig(num_frames=4, height=32, width=32)

    def features(seed):
        scene = render_scene(config, seed=seed)
        row = np.broadcast_to((np.arange(32)[None, :, None] + 0.5) / 32, scene.depth.shape)
        colour = [scene.video[..., c] for c in range(3)]
        x = np.stack([np.ones_like(row), row, row**2, row**3, *colour, *(c * row for c in colour)], axis=-1)
        return x.reshape(-1, x.shape[-1]), scene.depth.reshape(-1)

    train = [features([0, i]) for i in range(8)]
    test = [features([1, i]) for i in range(4)]
    x, y = np.concatenate([a for a, _ in train]), np.concatenate([b for _, b in train])
    x_test, y_test = np.concatenate([a for a, _ in test]), np.concatenate([b for _, b in test])
    weights = np.linalg.lstsq(x, y, rcond=None)[0]
    fit_error = np.mean((x_test @ weights - y_test) ** 2)
    mean_error = np.mean((y.mean() - y_test) ** 2)
    assert fit_error < 0.4 * mean_error


# ----------------------------------------------------------------------------------------------
# Dataset


@pytest.mark.parametrize(
    "task, extra",
    [
        ("video", {}),
        ("depth", {"labels": ((8, 32, 32), torch.float32)}),
        (
            "points",
            {
                "query_points": ((16, 2), torch.float32),
                "labels": ((8, 16, 2), torch.float32),
                "visibility_labels": ((8, 16), torch.bool),
            },
        ),
        ("boxes", {"query_boxes": ((2, 4), torch.float32), "labels": ((8, 2, 4), torch.float32)}),
        ("pose", {"labels": ((4, 4), torch.float32)}),
    ],
)
def test_dataset_items_match_the_task_models_inputs(task, extra):
    dataset = SyntheticSceneDataset(task, num_scenes=3, config=SMALL, seed=7)
    assert len(dataset) == 3
    item = dataset[1]
    expected = {"pixel_values_videos": ((8, 3, 32, 32), torch.float32), **extra}
    assert set(item) == set(expected)
    for key, (shape, dtype) in expected.items():
        assert tuple(item[key].shape) == shape, key
        assert item[key].dtype == dtype, key
    scene = render_scene(SMALL, seed=[7, 1])
    np.testing.assert_array_equal(item["pixel_values_videos"].numpy(), scene.video.transpose(0, 3, 1, 2))
    if task == "boxes":
        np.testing.assert_array_equal(item["query_boxes"].numpy(), scene.boxes[0])
    if task == "pose":
        np.testing.assert_array_equal(item["labels"].numpy(), relative_pose(scene))
    batch = torch.utils.data.default_collate([dataset[0], dataset[2]])
    for key, (shape, dtype) in expected.items():
        assert tuple(batch[key].shape) == (2, *shape) and batch[key].dtype == dtype


def test_dataset_cache_indices_and_errors():
    dataset = SyntheticSceneDataset("depth", num_scenes=2, config=SMALL)
    first = dataset[0]
    first["labels"].zero_()  # consumers writing into items must not corrupt the cache
    again = dataset[0]
    assert again["labels"].min() > 0
    uncached = SyntheticSceneDataset("depth", num_scenes=2, config=SMALL, cache=False)[0]
    torch.testing.assert_close(again["labels"], uncached["labels"])
    torch.testing.assert_close(dataset[-1]["labels"], dataset[1]["labels"])
    with pytest.raises(IndexError):
        dataset[2]
    with pytest.raises(IndexError):
        dataset[-3]
    with pytest.raises(ValueError, match="video.*depth.*points.*boxes.*pose"):
        SyntheticSceneDataset("segmentation", num_scenes=1)
    with pytest.raises(ValueError, match="num_scenes"):
        SyntheticSceneDataset("depth", num_scenes=-1)


# ----------------------------------------------------------------------------------------------
# Validation


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"num_frames": 0}, "num_frames"),
        ({"height": 2.5}, "height"),
        ({"num_objects": -1}, "num_objects"),
        ({"num_points": 10_000}, "num_points"),
        ({"field_of_view": 0.0}, "field_of_view"),
        ({"field_of_view": 170.0}, "field_of_view"),
        ({"fog_density": -0.1}, "fog_density"),
        ({"fog_density": float("nan")}, "fog_density"),
        ({"max_depth": 2.0}, "max_depth"),
        ({"camera_motion": 1}, "camera_motion"),
        ({"object_size": (1.0, 0.5)}, "object_size"),
        ({"object_size": 1.0}, "object_size"),
        ({"object_kinds": ("cube",)}, "object_kinds"),
        ({"object_query_fraction": 1.5}, "object_query_fraction"),
        ({"fog_color": (1.0, 2.0, 0.0)}, "fog_color"),
        ({"camera_pitch": (-10.0, -20.0)}, "camera_pitch"),
    ],
)
def test_bad_config_values_are_rejected(overrides, match):
    with pytest.raises(ValueError, match=match):
        SyntheticSceneConfig(**overrides)


def test_bad_render_inputs_are_rejected():
    k = intrinsics_from_fov(FOV, 16, 16)
    pose = camera_pose([0.0, 1.5, 0.0])[None]
    with pytest.raises(ValueError, match="camera_to_world"):
        render(pose[0], k, 16, 16, wall_distance=10.0)
    with pytest.raises(ValueError, match="poses"):
        render(pose, k, 16, 16, [SceneObject.moving("card", (0.5, 0.5), [0, 1, -4], num_frames=2)], wall_distance=10.0)
    with pytest.raises(ValueError, match="inside the image"):
        render(pose, k, 16, 16, wall_distance=10.0, query_points=np.array([[16.0, 3.0]]))
    with pytest.raises(ValueError, match="extent"):
        SceneObject.moving("card", 0.5, [0, 1, -4])
    with pytest.raises(ValueError, match="kind"):
        SceneObject.moving("cube", 0.5, [0, 1, -4])
    with pytest.raises(ValueError, match="3D texture"):
        SceneObject.moving("sphere", 0.5, [0, 1, -4], texture=Texture.random(np.random.default_rng(0), dim=2))
