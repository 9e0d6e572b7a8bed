"""Readers for the benchmark layouts: DAVIS-2017, JHMDB and VIP, validated before any work.

Each reader lists and checks a whole split when it is built, reading only image headers (and
JHMDB's small ``.mat`` files): a missing folder, list or file, a video without frames, frame and
annotation counts or sizes that differ, an annotation that is not a label PNG, a corrupt image or
``.mat`` file -> one error naming the path (:class:`DatasetError`, a ``ValueError``, or
``FileNotFoundError``), before a model is loaded or anything is written. Pixels are decoded
per video, when the runner asks for them.

Files are read as the references read them (``docs/evaluation.md``): paths sorted as strings
(``sorted`` / ``np.sort``, not natural order), frames with Pillow ``.convert("RGB")`` (no EXIF
rotation), label PNGs as ``np.array(Image.open(path))`` (a palette PNG gives its indices), JHMDB
joints as ``loadmat(...)["pos_img"] - 1`` (``scipy.io.loadmat``: the MATLAB format, nothing is
unpickled; scipy is the ``[eval]`` extra).

Layouts:

- DAVIS-2017 (``davis2017-evaluation``'s ``DAVIS`` class): ``ROOT/ImageSets/2017/<split>.txt``
  (one video per line), ``ROOT/JPEGImages/480p/<video>/*.jpg``,
  ``ROOT/Annotations/480p/<video>/*.png`` (palette PNGs, 0 background, 1..n objects, 255 void).
- JHMDB (the RVM evaluation demo's ``create_jhmdb_dataset``): ``ROOT/splits/<class>_test_split<N>.txt``
  (lines ``<video>.avi <1|2>``, 2 = test), ``ROOT/Rename_Images/<class>/<video>/*.png``,
  ``ROOT/joint_positions/<class>/<video>/joint_positions.mat`` (``pos_img``: (2, 15, T), 1-based
  pixels). Or a CRW-style list (``jhmdb_vallist.txt``: lines ``<frames dir> <joint_positions.mat>``).
- VIP (the demo's ``create_vip_dataset``): ``ROOT/lists/val_videos.txt``,
  ``ROOT/Images/<video>/*.jpg``, ``ROOT/Annotations/Category_ids/<video>/*.png`` (class ids 0..19).
"""

from __future__ import annotations

import glob
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Iterable, Sequence

import numpy as np
from PIL import Image

from ..visualization import davis_palette  # the DAVIS / PASCAL VOC colour map (davis2017.utils.color_map)

__all__ = [
    "DatasetError",
    "DavisVideo",
    "DavisDataset",
    "JhmdbVideo",
    "JhmdbDataset",
    "VipVideo",
    "VipDataset",
    "davis_palette",
    "load_mat",
    "read_frames",
    "read_label_maps",
    "check_label_pngs",
    "write_label_png",
]

#: DAVIS's void label: ignored by nothing in the semi-supervised protocol; it is read as background.
VOID_LABEL = 255
EVAL_EXTRA_HINT = 'pip install "fourd-hub[eval]"'


class DatasetError(ValueError):
    """A benchmark directory that does not have the expected layout or content (the message names the path)."""


def _header(path: Path, what: str) -> tuple[str, tuple[int, int]]:
    """(mode, (H, W)) of an image from its header; a clear error for a missing or unreadable file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return image.mode, (image.height, image.width)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {path}") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise DatasetError(f"{path} ({what}) is not an image Pillow can read ({error}); replace it with a valid file") from None


def _decode(path: Path, what: str, rgb: bool) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB") if rgb else image)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {path} (was it removed after the dataset was listed?)") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise DatasetError(f"{path} ({what}) cannot be decoded ({error}); replace it with a valid file") from None


def read_frames(paths: Sequence[Path], what: str = "frame") -> np.ndarray:
    """Decode frame images as the references do (Pillow, ``.convert("RGB")``).

    Args:
        paths: the T frame files, in order.
        what: what the files are, for error messages.

    Returns:
        (T, H, W, 3) uint8 frames.
    """
    frames = [_decode(Path(p), what, rgb=True) for p in paths]
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise DatasetError(f"the frames {paths[0]} ... {paths[-1]} differ in size ({sorted(shapes)}): all frames of a video must have one size")
    return np.stack(frames)


def read_label_maps(paths: Sequence[Path], what: str = "label map") -> np.ndarray:
    """Decode label PNGs as ``np.array(Image.open(path))`` (palette indices, or grey levels).

    Args:
        paths: the T PNG files, in order.
        what: what the files are, for error messages.

    Returns:
        (T, H, W) uint8 label maps.
    """
    maps = []
    for p in paths:
        labels = _decode(Path(p), what, rgb=False)
        if labels.ndim != 2 or labels.dtype != np.uint8:
            raise DatasetError(
                f"{p} ({what}) decodes to {labels.dtype} {labels.shape}, not an 8-bit label map: save labels as a palette "
                "(mode P) or 8-bit greyscale PNG"
            )
        maps.append(labels)
    if len({m.shape for m in maps}) != 1:
        raise DatasetError(f"the label maps {paths[0]} ... {paths[-1]} differ in size")
    return np.stack(maps)


def check_label_pngs(paths: Sequence[Path], size: tuple[int, int], what: str, modes: tuple[str, ...] = ("P", "L")) -> None:
    """Check label PNG headers: each exists, is readable, has one of ``modes`` and is (H, W) = ``size``."""
    for p in paths:
        mode, shape = _header(Path(p), what)
        if mode not in modes:
            kinds = " or ".join({"P": "palette (mode P)", "L": "8-bit greyscale (mode L)"}.get(m, m) for m in modes)
            raise DatasetError(
                f"{p} ({what}) is a mode-{mode} image, not a {kinds} label PNG: each pixel must hold its label index "
                "(davis2017-evaluation reads np.array(Image.open(path)))"
            )
        if shape != tuple(size):
            raise DatasetError(f"{p} ({what}) is {shape[1]}x{shape[0]} but its frames are {size[1]}x{size[0]}")


def write_label_png(path: str | os.PathLike, labels: np.ndarray, palette: np.ndarray | None = None) -> None:
    """Write a (H, W) label map as a palette PNG (``davis2017.utils.save_mask``'s format).

    Args:
        path: destination (written directly: callers stage whole directories, see the runner).
        labels: (H, W) integer labels in 0..255.
        palette: (256, 3) uint8 colours; default :func:`davis_palette`.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be an (H, W) integer label map, got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ValueError(f"labels must lie in 0..255 for a palette PNG, got {labels.min()}..{labels.max()}")
    palette = davis_palette() if palette is None else np.asarray(palette, dtype=np.uint8)
    if palette.shape != (256, 3):
        raise ValueError(f"palette must be (256, 3), got {palette.shape}")
    height, width = labels.shape
    image = Image.frombytes("P", (width, height), np.ascontiguousarray(labels, dtype=np.uint8).tobytes())
    image.putpalette(palette.reshape(-1).tolist())
    image.save(path, format="PNG")


def _sorted_files(directory: Path, pattern: str) -> list[Path]:
    """``sorted(glob(directory / pattern))`` as the references list files (string order, hidden files skipped)."""
    return [Path(p) for p in sorted(glob.glob(os.path.join(glob.escape(str(directory)), pattern)))]


def _read_list(path: Path, what: str) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"cannot read {what} {path}: {error}") from None
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise DatasetError(f"{what} {path} lists no video")
    return names


def _select(names: list[str], videos: Iterable[str] | None, source: str) -> list[str]:
    if videos is None:
        return names
    wanted = [v.strip() for v in videos if v.strip()]
    if not wanted:
        raise ValueError("the list of videos to evaluate is empty")
    missing = [v for v in wanted if v not in names]
    if missing:
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise ValueError(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not in {source} (it lists {shown})")
    return list(dict.fromkeys(wanted))


def _require_dir(path: Path, what: str, hint: str = "") -> None:
    if not path.is_dir():
        raise FileNotFoundError(f"{what} not found: {path}{hint}")


@dataclass(frozen=True)
class LabelledVideo:
    """One video of a segmentation benchmark: frame and annotation files (checked) and its size.

    Attributes:
        name: the sequence name (the list file's line).
        frames: the T ``.jpg`` frames, sorted.
        annotations: the T ``.png`` label maps, sorted (paired with the frames by position).
        size: (H, W) of frames and annotations.
    """

    #: The benchmark's name, for messages.
    benchmark: ClassVar[str] = "benchmark"

    name: str
    frames: tuple[Path, ...]
    annotations: tuple[Path, ...]
    size: tuple[int, int]

    @property
    def frame_ids(self) -> list[str]:
        """The annotation file stems (``00000``, ...): the names of the result PNGs."""
        return [p.stem for p in self.annotations]

    def read_frames(self) -> np.ndarray:
        """(T, H, W, 3) uint8 RGB frames."""
        return read_frames(self.frames, f"frame of {self.benchmark} video {self.name}")

    def read_annotations(self) -> np.ndarray:
        """(T, H, W) uint8 label maps, as stored (DAVIS's void 255 is kept: the runner maps it to background)."""
        return read_label_maps(self.annotations, f"annotation of {self.benchmark} video {self.name}")


# --------------------------------------------------------------------------------------------------
# DAVIS-2017


@dataclass(frozen=True)
class DavisVideo(LabelledVideo):
    """One DAVIS-2017 video (``JPEGImages/480p/<name>``, ``Annotations/480p/<name>``)."""

    benchmark: ClassVar[str] = "DAVIS"


class DavisDataset:
    """DAVIS-2017 semi-supervised split, listed and checked (headers only) on construction.

    Args:
        root: the ``DAVIS`` folder holding ``JPEGImages``, ``Annotations`` and ``ImageSets``.
        split: the ``ImageSets/2017/<split>.txt`` list (``val`` for the benchmark).
        videos: evaluate only these sequences (each must be in the list); default all.
        resolution: the resolution folder (``480p`` for the benchmark).

    Attributes:
        videos: the :class:`DavisVideo` entries, in list order.

    Raises:
        FileNotFoundError: the root, a folder, the list or a video's frames are missing.
        DatasetError: frame and annotation counts or sizes differ, an annotation is not a palette
            PNG, an image is unreadable, a video has fewer than 3 frames (frames 1 .. T-2 are scored).
    """

    def __init__(self, root: str | os.PathLike, split: str = "val", videos: Iterable[str] | None = None, resolution: str = "480p"):
        self.root = Path(root)
        hint = " (download DAVIS-2017 from https://davischallenge.org/davis2017/code.html)"
        _require_dir(self.root, "DAVIS directory", hint)
        image_dir = self.root / "JPEGImages" / resolution
        annotation_dir = self.root / "Annotations" / resolution
        list_file = self.root / "ImageSets" / "2017" / f"{split}.txt"
        _require_dir(image_dir, "DAVIS frames folder (JPEGImages/<resolution>)", hint)
        _require_dir(annotation_dir, "DAVIS annotations folder (Annotations/<resolution>)", hint)
        names = _select(_read_list(list_file, f"DAVIS {split!r} list (ImageSets/2017/{split}.txt)"), videos, str(list_file))
        self.split = split
        self.videos = [self._check_video(name, image_dir, annotation_dir) for name in names]

    @staticmethod
    def _check_video(name: str, image_dir: Path, annotation_dir: Path) -> DavisVideo:
        frames = _sorted_files(image_dir / name, "*.jpg")
        if not frames:
            raise FileNotFoundError(f"DAVIS video {name!r} has no frames: no .jpg files in {image_dir / name}")
        annotations = _sorted_files(annotation_dir / name, "*.png")
        if not annotations:
            raise FileNotFoundError(f"DAVIS video {name!r} has no annotations: no .png files in {annotation_dir / name}")
        if len(frames) != len(annotations):
            raise DatasetError(
                f"DAVIS video {name!r} has {len(frames)} frames in {image_dir / name} but {len(annotations)} annotations in "
                f"{annotation_dir / name}: every frame needs its annotation"
            )
        if len(frames) < 3:
            raise DatasetError(f"DAVIS video {name!r} has {len(frames)} frames; scoring (frames 1 .. T-2) needs at least 3")
        _, size = _header(frames[0], f"frame of DAVIS video {name}")
        for p in frames[1:]:
            if _header(p, f"frame of DAVIS video {name}")[1] != size:
                raise DatasetError(f"{p} differs in size from {frames[0]} ({size[1]}x{size[0]}): all frames of a video must have one size")
        check_label_pngs(annotations, size, f"annotation of DAVIS video {name}", modes=("P",))
        return DavisVideo(name, tuple(frames), tuple(annotations), size)

    def __len__(self) -> int:
        return len(self.videos)

    def __iter__(self):
        return iter(self.videos)


# --------------------------------------------------------------------------------------------------
# JHMDB


def load_mat(path: str | os.PathLike) -> dict:
    """``scipy.io.loadmat(path)`` (MATLAB v5 / v7 files; nothing is unpickled), errors naming the file.

    Raises:
        ModuleNotFoundError: scipy is missing (the ``[eval]`` extra).
        DatasetError: the file is not a MATLAB file scipy reads (corrupt, empty, v7.3 / HDF5).
    """
    try:
        from scipy.io import loadmat
    except ImportError as error:
        raise ModuleNotFoundError(f"reading JHMDB's .mat files needs scipy: {EVAL_EXTRA_HINT}", name="scipy") from error
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"JHMDB joint file not found: {path}")
    try:
        return loadmat(path)
    except NotImplementedError as error:  # MATLAB v7.3 (HDF5)
        raise DatasetError(f"{path} is a MATLAB v7.3 (HDF5) file, which scipy.io.loadmat cannot read ({error}); re-save it with -v7") from None
    except Exception as error:  # scipy raises ValueError, TypeError, MatReadError (an Exception), ... for corrupt files
        raise DatasetError(f"{path} is not a readable MATLAB file ({type(error).__name__}: {error}); replace it with the dataset's copy") from None


def _read_pose(path: Path) -> np.ndarray:
    """JHMDB ground truth as the demo reads it: ``(pos_img - 1)`` as float32, transposed to (T, K, 2) (x, y)."""
    data = load_mat(path)
    if "pos_img" not in data:
        keys = ", ".join(k for k in data if not k.startswith("__")) or "none"
        raise DatasetError(f"{path} has no 'pos_img' array (it holds: {keys}); it is not a JHMDB joint_positions.mat")
    pos = np.asarray(data["pos_img"])
    if pos.ndim != 3 or pos.shape[0] != 2 or pos.shape[2] < 1 or not np.issubdtype(pos.dtype, np.number):
        raise DatasetError(f"{path}: 'pos_img' must be a numeric (2, K, T) array of (x, y) per joint and frame, got {pos.dtype} {pos.shape}")
    pose = (pos - 1).astype(np.float32).transpose(2, 1, 0)
    if not np.isfinite(pose).all():
        raise DatasetError(f"{path}: 'pos_img' contains NaN or infinite coordinates")
    return np.ascontiguousarray(pose)


@dataclass(frozen=True)
class JhmdbVideo:
    """One JHMDB video: its frames (checked), its ground-truth joints and its size.

    Attributes:
        name: ``<class>/<video>``.
        frames: the frame ``.png`` files, sorted (at least as many as the annotated frames).
        joints: the ``joint_positions.mat`` file.
        pose: (T, K, 2) float32 ground truth (x, y) in 0-based pixels (``pos_img - 1``); T may be
            smaller than the number of frames (the extra frames are propagated, not scored).
        size: (H, W) of the frames.
    """

    name: str
    frames: tuple[Path, ...]
    joints: Path
    pose: np.ndarray
    size: tuple[int, int]

    def read_frames(self) -> np.ndarray:
        """(T_frames, H, W, 3) uint8 RGB frames."""
        return read_frames(self.frames, f"frame of JHMDB video {self.name}")


class JhmdbDataset:
    """JHMDB test videos of one split, listed and checked (headers and ``.mat`` files) on construction.

    Args:
        root: the JHMDB folder holding ``Rename_Images``, ``joint_positions`` and ``splits``; with
            ``list_file``, relative paths in the list are resolved against it (default: the current
            directory, as CRW's own code opens them).
        split: the split number N of ``splits/<class>_test_split<N>.txt`` (1 for the benchmark);
            its videos marked 2 (test) are evaluated.
        videos: evaluate only these ``<class>/<video>`` names; default all.
        list_file: instead of the split files, a CRW-style list (``jhmdb_vallist.txt``): one video
            per line, ``<frames dir> <joint_positions.mat>``; the video's name is the frames
            directory's last two components.

    Attributes:
        videos: the :class:`JhmdbVideo` entries, sorted by name.

    Raises:
        FileNotFoundError: a folder, the split files, a video's frames or joint file are missing.
        DatasetError: an unreadable image or ``.mat`` file, frames of different sizes, fewer frames
            than annotated poses, joint counts that differ between videos.
        ModuleNotFoundError: scipy is not installed (``pip install "fourd-hub[eval]"``).
    """

    def __init__(
        self,
        root: str | os.PathLike | None,
        split: int = 1,
        videos: Iterable[str] | None = None,
        list_file: str | os.PathLike | None = None,
    ):
        self.root = None if root is None else Path(root)
        self.split = int(split)
        if list_file is not None:
            entries = self._list_entries(Path(list_file))
            source = str(list_file)
        else:
            if self.root is None:
                raise ValueError("JHMDB needs its directory (--data) or a list file (--list)")
            entries = self._split_entries()
            source = f"the test videos of split {self.split} ({self.root / 'splits'})"
        names = _select([name for name, _, _ in entries], videos, source)
        by_name = {name: (frames, joints) for name, frames, joints in entries}
        self.videos = [self._check_video(name, *by_name[name]) for name in names]
        joint_counts = {v.pose.shape[1] for v in self.videos}
        if len(joint_counts) > 1:
            counts = ", ".join(f"{v.name}: {v.pose.shape[1]}" for v in self.videos[:4])
            raise DatasetError(f"the JHMDB videos have different numbers of joints ({counts}, ...): PCK pools joints across videos")

    def _split_entries(self) -> list[tuple[str, Path, Path]]:
        root = self.root
        hint = " (JHMDB: http://jhmdb.is.tue.mpg.de/; the RVM demo's copy: representations4d/datasets/jhmdb.zip)"
        _require_dir(root, "JHMDB directory", hint)
        for folder in ("Rename_Images", "joint_positions", "splits"):
            _require_dir(root / folder, f"JHMDB {folder} folder", hint)
        suffix = f"_test_split{self.split}.txt"
        split_files = sorted(p for p in (root / "splits").iterdir() if p.name.endswith(suffix) and p.is_file())
        if not split_files:
            raise FileNotFoundError(f"no JHMDB split files <class>{suffix} in {root / 'splits'}")
        entries = []
        for split_file in split_files:
            action = split_file.name[: -len(suffix)]
            for number, line in enumerate(_read_list(split_file, "JHMDB split file"), start=1):
                fields = line.split()
                if len(fields) != 2 or fields[1] not in ("1", "2"):
                    raise DatasetError(f"{split_file} line {number} ({line!r}) is not '<video>.avi <1|2>' (1 = train, 2 = test)")
                if fields[1] == "2":
                    video = fields[0].split(".")[0]  # as the demo: 'name.avi' -> 'name'
                    name = f"{action}/{video}"
                    entries.append((name, root / "Rename_Images" / action / video, root / "joint_positions" / action / video / "joint_positions.mat"))
        if not entries:
            raise DatasetError(f"the split-{self.split} files in {root / 'splits'} mark no video as test (2)")
        return sorted(entries)

    def _list_entries(self, list_file: Path) -> list[tuple[str, Path, Path]]:
        base = self.root if self.root is not None else Path.cwd()
        entries = []
        for number, line in enumerate(_read_list(list_file, "JHMDB video list"), start=1):
            fields = line.split()
            if len(fields) != 2:
                raise DatasetError(f"{list_file} line {number} ({line!r}) is not '<frames dir> <joint_positions.mat>'")
            frames, joints = (Path(f) if Path(f).is_absolute() else base / f for f in fields)
            entries.append((f"{frames.parent.name}/{frames.name}", frames, joints))
        names = [name for name, _, _ in entries]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise DatasetError(f"{list_file} lists {', '.join(duplicates[:3])} more than once")
        return entries

    @staticmethod
    def _check_video(name: str, frame_dir: Path, joints: Path) -> JhmdbVideo:
        _require_dir(frame_dir, f"frames of JHMDB video {name}")
        frames = _sorted_files(frame_dir, "*.png")
        if not frames:
            raise FileNotFoundError(f"JHMDB video {name!r} has no frames: no .png files in {frame_dir}")
        _, size = _header(frames[0], f"frame of JHMDB video {name}")
        for p in frames[1:]:
            if _header(p, f"frame of JHMDB video {name}")[1] != size:
                raise DatasetError(f"{p} differs in size from {frames[0]}: all frames of a video must have one size")
        if not joints.is_file():
            raise FileNotFoundError(f"joint positions of JHMDB video {name!r} not found: {joints}")
        pose = _read_pose(joints)
        if len(pose) > len(frames):
            raise DatasetError(
                f"JHMDB video {name!r}: {joints} annotates {len(pose)} frames but {frame_dir} holds {len(frames)}: "
                "every annotated frame needs its image"
            )
        return JhmdbVideo(name, tuple(frames), joints, pose, size)

    def __len__(self) -> int:
        return len(self.videos)

    def __iter__(self):
        return iter(self.videos)


# --------------------------------------------------------------------------------------------------
# VIP


@dataclass(frozen=True)
class VipVideo(LabelledVideo):
    """One VIP video (``Images/<name>``, ``Annotations/Category_ids/<name>``: class ids 0 .. 19)."""

    benchmark: ClassVar[str] = "VIP"


class VipDataset:
    """VIP (``VIP_Fine``) validation videos, listed and checked (headers only) on construction.

    Args:
        root: the ``VIP_Fine`` folder holding ``Images``, ``Annotations/Category_ids`` and ``lists``.
        videos: evaluate only these videos; default all of ``lists/val_videos.txt``.
        list_name: the list file under ``lists/``.

    Attributes:
        videos: the :class:`VipVideo` entries, in list order.
    """

    def __init__(self, root: str | os.PathLike, videos: Iterable[str] | None = None, list_name: str = "val_videos.txt"):
        self.root = Path(root)
        _require_dir(self.root, "VIP directory (VIP_Fine)")
        image_dir, annotation_dir = self.root / "Images", self.root / "Annotations" / "Category_ids"
        _require_dir(image_dir, "VIP frames folder (Images)")
        _require_dir(annotation_dir, "VIP annotations folder (Annotations/Category_ids)")
        list_file = self.root / "lists" / list_name
        names = _select(_read_list(list_file, f"VIP list (lists/{list_name})"), videos, str(list_file))
        self.videos = [self._check_video(name, image_dir, annotation_dir) for name in names]

    @staticmethod
    def _check_video(name: str, image_dir: Path, annotation_dir: Path) -> VipVideo:
        frames = _sorted_files(image_dir / name, "*.jpg")
        if not frames:
            raise FileNotFoundError(f"VIP video {name!r} has no frames: no .jpg files in {image_dir / name}")
        annotations = _sorted_files(annotation_dir / name, "*.png")
        if len(frames) != len(annotations):
            raise DatasetError(
                f"VIP video {name!r} has {len(frames)} frames in {image_dir / name} but {len(annotations)} annotations in "
                f"{annotation_dir / name}: every frame needs its annotation"
            )
        _, size = _header(frames[0], f"frame of VIP video {name}")
        for p in frames[1:]:
            if _header(p, f"frame of VIP video {name}")[1] != size:
                raise DatasetError(f"{p} differs in size from {frames[0]}: all frames of a video must have one size")
        check_label_pngs(annotations, size, f"annotation of VIP video {name}")
        return VipVideo(name, tuple(frames), tuple(annotations), size)

    def __len__(self) -> int:
        return len(self.videos)

    def __iter__(self):
        return iter(self.videos)
