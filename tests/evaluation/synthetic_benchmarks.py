"""Tiny synthetic DAVIS-2017, JHMDB and VIP trees in the real layouts, with known masks and joints.

Written with Pillow and scipy directly (not with fourd_hub's writers), so the readers are tested
against files made independently. Everything is small (32 x 48 frames, 4 - 5 frames per video).

DAVIS (``write_davis``): 5 frames of 32 x 48 (H x W), textured background and textured moving shapes:
- ``shapes-two``: object 1 a 10 x 10 square, rows 5..14, columns 4+t..13+t (moves right);
  object 2 a 6 x 8 (h x w) rectangle, rows 18..23, columns 26-t..33-t (moves left).
- ``square``: object 1 a 10 x 10 square, rows 10..19, columns 20+t..29+t.
Every shape stays >= 4 pixels from the right border and >= 2 from the others, also when shifted
right by 2 pixels, so shifting a label map never clips a shape nor reaches the last row / column.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

H, W = 32, 48
NUM_FRAMES = 5

#: video -> list of (label, rows (r0, r1) inclusive, column start at t=0, width, column step per frame)
DAVIS_SHAPES = {
    "shapes-two": [(1, (5, 14), 4, 10, +1), (2, (18, 23), 26, 8, -1)],
    "square": [(1, (10, 19), 20, 10, +1)],
}

# The DAVIS palette's first colours (label 1 = dark red, 2 = green), written by hand.
PALETTE = [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] + [0, 0, 0] * 252


def davis_masks(video: str, num_frames: int = NUM_FRAMES) -> np.ndarray:
    """(T, H, W) uint8 ground-truth label maps of a synthetic DAVIS video."""
    masks = np.zeros((num_frames, H, W), dtype=np.uint8)
    for t in range(num_frames):
        for label, (r0, r1), c0, width, step in DAVIS_SHAPES[video]:
            c = c0 + step * t
            masks[t, r0 : r1 + 1, c : c + width] = label
    return masks


def textured_frames(masks: np.ndarray, seed: int) -> np.ndarray:
    """(T, H, W, 3) uint8 frames: a fixed noise background, each label a texture that moves with it."""
    rng = np.random.RandomState(seed)
    background = rng.randint(0, 120, size=masks.shape[1:] + (3,))
    textures = {int(label): rng.randint(120, 256, size=masks.shape[1:] + (3,)) for label in np.unique(masks) if label}
    frames = np.repeat(background[None], len(masks), axis=0).astype(np.uint8)
    for t, mask in enumerate(masks):
        for label in np.unique(mask[mask > 0]):
            frames[t][mask == label] = np.roll(textures[int(label)], t, axis=1)[mask == label]
    return frames


def save_palette_png(path: Path, labels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.frombytes("P", (labels.shape[1], labels.shape[0]), np.ascontiguousarray(labels, dtype=np.uint8).tobytes())
    image.putpalette(PALETTE)
    image.save(path)


def write_davis(root: Path, videos=("shapes-two", "square")) -> dict[str, np.ndarray]:
    """Write ``root/{JPEGImages,Annotations}/480p/<video>/0000t.{jpg,png}`` and ``ImageSets/2017/val.txt``.

    Returns:
        video -> (T, H, W) ground-truth label maps.
    """
    masks = {}
    for seed, video in enumerate(videos):
        gt = davis_masks(video)
        masks[video] = gt
        frames = textured_frames(gt, seed)
        for t in range(len(gt)):
            frame_path = root / "JPEGImages" / "480p" / video / f"{t:05d}.jpg"
            frame_path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(frames[t]).save(frame_path, quality=95)
            save_palette_png(root / "Annotations" / "480p" / video / f"{t:05d}.png", gt[t])
    (root / "ImageSets" / "2017").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("".join(f"{v}\n" for v in videos))
    return masks


def write_davis_predictions(root: Path, masks: dict[str, np.ndarray], frames=None, digits: int = 5) -> None:
    """Write predictions in davis2017-evaluation's results layout, ``<root>/<video>/<t, zero-padded>.png``;
    ``frames`` selects frame indices (default all); VIP's frames have 6 digits."""
    for video, labels in masks.items():
        for t in range(len(labels)) if frames is None else frames:
            save_palette_png(root / video / f"{t:0{digits}d}.png", labels[t])


# --------------------------------------------------------------------------------------------------
# JHMDB: 4 frames of 64 x 64, 15 joints


JHMDB_H = JHMDB_W = 64
JHMDB_FRAMES = 4
# Joints 0..3 are the corners of their bounding box (30 wide, 40 high: diagonal 50, human box
# 0.6 * 50 = 30 pixels); the others lie strictly inside. Joint 14 is an interior joint.
BASE_JOINTS = np.array(
    [[10, 10], [40, 10], [10, 50], [40, 50], [20, 15], [25, 20], [30, 25], [15, 30], [35, 35],
     [20, 40], [25, 45], [30, 12], [12, 22], [38, 28], [22, 33]],
    dtype=np.float64,
)
#: class -> [(video, 1 = train | 2 = test)]; the test videos of split 1 are walk/walker_a and brush_hair/brusher_b.
JHMDB_SPLIT1 = {"walk": [("walker_a", 2), ("walker_c", 1)], "brush_hair": [("brusher_b", 2)]}


def jhmdb_pose(video_index: int) -> np.ndarray:
    """(T, 15, 2) 0-based (x, y) ground truth: the base joints moving (+1, +0.5) px per frame, offset per video."""
    t = np.arange(JHMDB_FRAMES, dtype=np.float64)[:, None, None]
    return BASE_JOINTS[None] + t * np.array([1.0, 0.5]) + np.array([video_index * 2.0, 0.0])


def write_jhmdb(root: Path) -> dict[str, np.ndarray]:
    """Write ``Rename_Images/<class>/<video>/0000t.png``, ``joint_positions/.../joint_positions.mat`` and ``splits/``.

    ``pos_img`` is saved as MATLAB does: (2, 15, T), 1-based (the reader subtracts 1).

    Returns:
        ``<class>/<video>`` -> (T, 15, 2) float 0-based ground truth (all videos, train included).
    """
    from scipy.io import savemat

    poses = {}
    index = 0
    for action, videos in JHMDB_SPLIT1.items():
        lines = []
        for video, flag in videos:
            pose = jhmdb_pose(index)
            poses[f"{action}/{video}"] = pose
            masks = np.zeros((JHMDB_FRAMES, JHMDB_H, JHMDB_W), dtype=np.uint8)
            for t in range(JHMDB_FRAMES):
                for x, y in pose[t]:
                    masks[t, int(y) - 1 : int(y) + 2, int(x) - 1 : int(x) + 2] = 1
            frames = textured_frames(masks, 10 + index)
            for t in range(JHMDB_FRAMES):
                path = root / "Rename_Images" / action / video / f"{t + 1:05d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(frames[t]).save(path)
            mat = root / "joint_positions" / action / video / "joint_positions.mat"
            mat.parent.mkdir(parents=True, exist_ok=True)
            savemat(mat, {"pos_img": (pose + 1).transpose(2, 1, 0), "scale": np.ones(JHMDB_FRAMES)})
            lines.append(f"{video}.avi {flag} \n")
            index += 1
        (root / "splits").mkdir(parents=True, exist_ok=True)
        (root / "splits" / f"{action}_test_split1.txt").write_text("".join(lines))
    return poses


# --------------------------------------------------------------------------------------------------
# VIP: 4 frames of 32 x 48, class ids 0 (background), 1 (hat: a 10 x 10 square) and 13 (face, 4 x 4)


def vip_masks(video_index: int) -> np.ndarray:
    masks = np.zeros((4, H, W), dtype=np.uint8)
    for t in range(4):
        c = 6 + 3 * video_index + t
        masks[t, 8:18, c : c + 10] = 1
        masks[t, 22:26, 30:34] = 13
    return masks


def write_vip(root: Path, videos=("vip-a", "vip-b")) -> dict[str, np.ndarray]:
    """Write ``Images/<video>/*.jpg``, ``Annotations/Category_ids/<video>/*.png`` (8-bit grey) and ``lists/val_videos.txt``."""
    out = {}
    for index, video in enumerate(videos):
        gt = vip_masks(index)
        out[video] = gt
        frames = textured_frames(gt, 20 + index)
        for t in range(len(gt)):
            frame = root / "Images" / video / f"{t:06d}.jpg"
            frame.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(frames[t]).save(frame, quality=95)
            ann = root / "Annotations" / "Category_ids" / video / f"{t:06d}.png"
            ann.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(gt[t]).save(ann)  # mode L
    (root / "lists").mkdir(parents=True, exist_ok=True)
    (root / "lists" / "val_videos.txt").write_text("".join(f"{v}\n" for v in videos))
    return out
