"""The ``fourd-hub`` command line: ``list`` the catalog, ``convert`` an original checkpoint,
``download`` a catalog model into the Hugging Face cache, ``push`` one to the Hub, regenerate the
``model-cards``, and run
the pipelines on a video (``depth-estimation``, ``point-tracking``, ``box-tracking``,
``camera-pose-estimation``, ``features``, ``video-reconstruction``, ``video-object-segmentation``,
``keypoint-tracking``) with the output format chosen by
the extension of ``--output``: ``.mp4`` visualisation, ``.npz`` arrays, ``.json`` tracks/boxes/poses,
or a directory (no extension) of PNG frames.

Errors are one clear line on stderr, ``fourd-hub <command>: error: ...``, never a traceback: the
user's input (missing or corrupt files, wrong checkpoint, bad options, a device this machine
lacks, an output that cannot be replaced) exits with status 2, as argparse's usage errors do; the
environment (a Python package that is not installed, the device out of memory) with 1. A reader
that goes away (``fourd-hub list --json | head -1``) ends the command quietly with status 141, as
a Unix tool killed by SIGPIPE. What needs no model (the output path, ``--device``, ``--grid``, the
video's header; ``convert``'s ``--max-shard-size`` and output directory) is checked before anything
large is loaded or read. ``--quiet`` leaves only errors on stderr: no progress bars (ours,
transformers' and huggingface_hub's), no load reports, no warnings. See ``docs/cli.md``.

Startup: this module imports only the standard library and fourd_hub's light tables (catalog,
registry, tasks, version) at import time; torch, transformers and the pipelines are imported by
the commands that need them, so ``--help``, ``--version`` and ``list`` need none of them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Iterator

from ._version import __version__
from .catalog import CATALOG, DEFAULT_HUB_ORG
from .registry import FAMILIES, families
from .tasks import TASKS

#: ``fourd_hub.pipelines.MAX_GRID_SIZE``, for ``--help`` without importing torch (tests keep them equal).
MAX_GRID_SIZE = 64

#: Exit statuses: the user's input or options, the environment, Ctrl-C, the reader of stdout gone.
EXIT_USAGE, EXIT_ENVIRONMENT, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 2, 1, 130, 141

# Import name -> what to pip install, where they differ (or an extra of ours provides it).
_PIP_NAMES = {
    "PIL": "pillow",
    "yaml": "pyyaml",
    "accelerate": '"fourd_hub[train]"',
    "tensorboard": '"fourd_hub[train]"',
    "scipy": '"fourd_hub[eval]"',
}


def _catalog_json(entry) -> dict:
    """One catalog entry as ``fourd-hub list --json`` prints it: the listing's columns plus the
    facts a script needs to fetch or cite the weights (official URL, size, checksum, Hub repo id)."""
    return {
        "name": entry.name,
        "family": entry.family,
        "class": entry.architecture,
        "params": f"{entry.num_parameters / 1e6:,.1f}M",
        "num_parameters": entry.num_parameters,
        "input": f"{entry.input_spec.num_frames}x{entry.input_spec.image_size[0]}x{entry.input_spec.image_size[1]}",
        "original_file": entry.original_file or "(config only)",
        "original_url": entry.original_url,
        "file_size": entry.file_size,
        "sha256": entry.sha256,
        "hub_repo_id": entry.hub_repo_id(),
        "base_model": entry.base_model,
        "license": entry.license,
        "description": entry.description,
    }


def _cmd_list(args: argparse.Namespace) -> int:
    listed = [_catalog_json(entry) for entry in CATALOG.values() if not args.family or entry.family == args.family]
    if args.json:
        print(json.dumps(listed, indent=2))
        return 0
    rows = [tuple(item[key] for key in ("name", "class", "params", "input", "original_file")) for item in listed]
    header = ("name", "class", "params", "input TxHxW", "original file")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from .cards import write_conversion_card
    from .conversion import convert_checkpoint

    config = None
    if args.config is not None:
        try:
            config = json.loads(Path(args.config).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"cannot read --config {args.config}: {err}") from None
    result = convert_checkpoint(
        args.source,
        args.output,
        name=args.name,
        preset=args.preset,
        config=config,
        dtype=args.dtype,
        max_shard_size=args.max_shard_size,
        overwrite=args.overwrite,
        verify=True if args.verify else (False if args.no_verify else "auto"),
        compute_sha256=not args.no_sha256,
        progress=not args.quiet,
        on_staged=lambda directory, staged: write_conversion_card(staged, directory),
    )
    print(f"wrote {result.model_class} ({result.num_parameters:,} parameters) to {result.output_dir}")
    print(f"layout: {result.layout}")
    for assumption in result.assumptions:
        print(f"assumed: {assumption}")
    if result.source_sha256:
        print(f"source sha256: {result.source_sha256}")
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from .hub import convert_into_cache, resolve_model_dir

    if args.original is not None:
        from .catalog import get_entry

        path = convert_into_cache(
            get_entry(args.name), original=args.original, force=args.force, cache_dir=args.cache_dir, progress=not args.quiet
        )
    else:
        path = resolve_model_dir(args.name, force_download=args.force, cache_dir=args.cache_dir, progress=not args.quiet)
    print(path)
    return 0


def _cmd_push(args: argparse.Namespace) -> int:
    from .hub import push_model_dir

    commit = push_model_dir(
        args.model,
        args.repo_id,
        original=args.original,
        commit_message=args.commit_message,
        private=True if args.private else None,
        token=args.token,
        revision=args.revision,
        create_pr=args.create_pr,
        progress=not args.quiet,
    )
    print(f"pushed {args.model} to {args.repo_id}: {commit}")
    return 0


def _cmd_model_cards(args: argparse.Namespace) -> int:
    from .cards import write_model_cards

    if args.check:
        stale = write_model_cards(args.directory, check=True)
        if stale:
            names = ", ".join(path.name for path in stale)
            raise ValueError(f"{len(stale)} model card(s) differ from the catalog ({names}); run `fourd-hub model-cards {args.directory}`")
        print(f"all model cards in {args.directory} match the catalog")
        return 0
    written = write_model_cards(args.directory)
    print(f"wrote {len(written)} model cards to {args.directory}")
    return 0


# CLI command -> (pipeline task, output extensions it can write): the task table's.
_TASK_COMMANDS = {spec.cli: (name, spec.output_extensions) for name, spec in TASKS.items() if spec.cli}


def parse_coordinates(text: str, size: int, what: str) -> list[list[float]]:
    """``"t,x,y;t,x,y"`` (or without t) -> rows of floats; a clear error names the bad entry."""
    rows = []
    for number, item in enumerate(part for part in text.split(";") if part.strip()):
        try:
            values = [float(value) for value in item.split(",")]
        except ValueError:
            raise ValueError(f"--{what}: entry {number + 1} ({item.strip()!r}) is not comma-separated numbers") from None
        if len(values) not in (size, size + 1):
            raise ValueError(f"--{what}: entry {number + 1} ({item.strip()!r}) needs {size + 1} numbers (t first) or {size}")
        rows.append(values)
    if not rows:
        raise ValueError(f"--{what} is empty")
    if len({len(row) for row in rows}) != 1:
        raise ValueError(f"--{what}: give t for every entry or for none")
    return rows


def _cmd_task(args: argparse.Namespace) -> int:
    from .pipelines import check_grid_size, pipeline, resolve_device
    from .results import check_output_path

    task, extensions = _TASK_COMMANDS[args.command]
    output = Path(args.output)
    suffix = output.suffix.lower()
    if suffix not in extensions:
        allowed = ", ".join(e or "a directory (PNG frames)" for e in extensions)
        raise ValueError(f"cannot write {args.command} results to {output.name!r}: use {allowed}")
    # Everything that needs no model is checked first, so a bad option fails in a second, not after
    # the model is loaded and the video processed: the output, the device, the query grid.
    check_output_path(output, overwrite=args.overwrite)
    # Probing CUDA can warn (e.g. "CUDA initialization: ... no NVIDIA driver"): if the device is
    # refused, our one line says it all (it lists the devices available); if not, the warnings
    # are shown as usual.
    with warnings.catch_warnings(record=True) as probed:
        warnings.simplefilter("always")
        device = resolve_device(args.device)
    for caught in probed:
        warnings.warn_explicit(caught.message, caught.category, caught.filename, caught.lineno)
    if getattr(args, "grid", None) is not None:
        check_grid_size(args.grid)
    call: dict = {}
    if args.command in _PROPAGATION_COMMANDS:
        call.update(_propagation_call(args))  # the mask / keypoints and the parameters, before the model loads
    # Check the video before loading a (possibly large) model: a bad file fails in a second.
    from .video_io import open_video

    with open_video(args.video, min_frames=2) as reader:
        frame_size = (reader.metadata.height, reader.metadata.width)
    if args.command in _PROPAGATION_COMMANDS:
        _check_against_frame(call, frame_size)
    if args.command == "point-tracking":
        if (args.points is None) == (args.grid is None):
            raise ValueError("point-tracking needs --points 't,x,y;...' or --grid N")
        if args.points is not None:
            call["points"] = parse_coordinates(args.points, 2, "points")
        else:
            call.update(grid=args.grid, grid_frame=args.grid_frame)
    elif args.command == "box-tracking":
        if args.boxes is None:
            raise ValueError("box-tracking needs --boxes 't,x1,y1,x2,y2;...'")
        call["boxes"] = parse_coordinates(args.boxes, 4, "boxes")
    if args.command in ("point-tracking", "box-tracking"):
        call["backward_tracking"] = args.backward_tracking
    if getattr(args, "source_fps", None) is not None:
        call["source_fps"] = args.source_fps
    for name in ("num_frames", "stride", "fps", "end"):
        if getattr(args, name) is not None:
            call[name] = getattr(args, name)
    call["start"] = args.start
    overrides = {"resize_mode": args.resize_mode} if getattr(args, "resize_mode", None) else {}
    runner = pipeline(
        task, args.model, backbone=args.backbone, device=device, dtype=args.dtype,
        batch_size=args.batch_size, progress=not args.quiet, seed=args.seed, **overrides,
    )
    result = runner(args.video, **call)
    render_options = {"colorbar": True} if getattr(args, "colorbar", False) and output.suffix.lower() not in (".npz", ".json") else {}
    written = result.save(output, overwrite=args.overwrite, **render_options)
    print(f"wrote {written} ({len(result.frame_indices)} frames, {result.image_size[1]}x{result.image_size[0]})")
    return 0


#: Commands of the label propagation pipelines (their own arguments: --mask / --keypoints, --size, the parameters).
_PROPAGATION_COMMANDS = ("video-object-segmentation", "keypoint-tracking")


def _propagation_call(args: argparse.Namespace) -> dict:
    """The call arguments of a label propagation command, checked (the mask read) before any model loads."""
    from .label_propagation import check_propagation_parameters
    from .pipelines import parse_processing_size, read_first_mask

    call: dict = {}
    if args.command == "video-object-segmentation":
        read_first_mask(args.mask)  # a missing, corrupt or RGB mask fails now
        call["mask"] = args.mask
    else:
        rows = parse_coordinates(args.keypoints, 2, "keypoints")
        if len(rows[0]) != 2:
            raise ValueError("--keypoints takes 'x,y;x,y' pixel pairs in the first processed frame (no t)")
        call["keypoints"] = rows
        if args.allow_outside:
            call["allow_outside"] = True
    if args.size is not None:
        call["size"] = parse_processing_size(args.size)
    params = {name: getattr(args, name) for name in ("n_context", "temperature", "topk", "radius", "restrict_neighborhood")}
    params = {name: value for name, value in params.items() if value is not None}
    check_propagation_parameters(**params)
    call.update(params)
    return call


def _check_against_frame(call: dict, frame_size: tuple[int, int]) -> None:
    """The mask's size / the keypoints' positions against the video's frame, before the model loads."""
    from .pipelines import check_mask_size, parse_keypoints, read_first_mask

    if "mask" in call:
        check_mask_size(read_first_mask(call["mask"])[0], frame_size)
    else:
        parse_keypoints(call["keypoints"], frame_size, call.get("allow_outside", False))


def _add_propagation_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    if command == "video-object-segmentation":
        parser.add_argument(
            "--mask", required=True,
            help="the first processed frame's object labels: a palette (P) or grayscale (L) PNG of the frame's size, as "
            "DAVIS annotations (0 = background, up to 255 objects; the palette is kept)",
        )
    else:
        parser.add_argument(
            "--keypoints", required=True, help="first-frame keypoints 'x,y;x,y' in pixels; write --keypoints=... if it starts with '-'"
        )
        parser.add_argument(
            "--allow-outside", action="store_true",
            help="keep keypoints outside the frame (as the JHMDB protocol; one outside the grid is never visible) instead of an error",
        )
    short = 480 if command == "video-object-segmentation" else 320
    parser.add_argument(
        "--size",
        help=f"processing size HxW, multiples of the model's patch (DAVIS 480x880, JHMDB 320x320); default: short side {short}, "
        "the aspect ratio kept",
    )
    parser.add_argument("--n-context", type=int, help="frames in the context queue (default 20)")
    parser.add_argument("--temperature", type=float, help="affinity temperature (default 0.7)")
    parser.add_argument("--topk", type=int, help="neighbours averaged per position (default 7)")
    parser.add_argument("--radius", type=float, help="neighbourhood radius in grid cells for the queue frames (default 20)")
    parser.add_argument(
        "--restrict-neighborhood", action=argparse.BooleanOptionalAction, default=None,
        help="apply the radius to the queue frames (default); --no-restrict-neighborhood: the inference demo's variant",
    )


_QUIET_HELP = "only errors on stderr: no progress bars, load reports or warnings"


def _add_task_commands(sub) -> None:
    for command, (task, extensions) in _TASK_COMMANDS.items():
        formats = ", ".join(e or "DIR/ (PNG frames)" for e in extensions)
        parser = sub.add_parser(command, help=f"run the {task} pipeline on a video", description=(
            f"Run the {task} pipeline on VIDEO and write --output ({formats}). Coordinates are pixels, (x, y), "
            "(0, 0) the top-left corner; t is a frame index of the video."
        ))
        parser.add_argument(
            "video",
            help="input video: a file FFmpeg/PyAV decodes, a directory of frame images, or a quoted glob pattern such as 'frames/*.png'",
        )
        parser.add_argument("--model", required=True, help="catalog name (fourd-hub list), converted model directory or Hub repo id")
        parser.add_argument("--output", "-o", required=True, help=f"output file by extension: {formats}")
        parser.add_argument("--backbone", help="backbone for a standalone readout head (default: the catalog's base model)")
        if command == "point-tracking":
            parser.add_argument("--points", help="query points 't,x,y;t,x,y' (or 'x,y;...' in the first frame); write --points=... if it starts with '-'")
            parser.add_argument(
                "--grid", type=int, help=f"instead of --points: an N x N grid of points, 1 <= N <= {MAX_GRID_SIZE}"
            )
            parser.add_argument("--grid-frame", type=int, default=None, help="frame of the grid points (default: the first)")
        if command == "box-tracking":
            parser.add_argument("--boxes", help="query boxes 't,x1,y1,x2,y2;...' (or without t: first frame)")
        if command in ("point-tracking", "box-tracking"):
            parser.add_argument(
                "--backward-tracking", action=argparse.BooleanOptionalAction, default=True,
                help="also track the frames before a query's frame (default); --no-backward-tracking: forward only",
            )
        if command == "depth-estimation":
            parser.add_argument("--colorbar", action="store_true", help="add a colour bar with ticks in metres to the .mp4 / PNG output")
        if command in _PROPAGATION_COMMANDS:
            _add_propagation_arguments(parser, command)
        selection = parser.add_mutually_exclusive_group()
        selection.add_argument("--num-frames", type=int, help="process N frames evenly spaced over the video")
        selection.add_argument("--stride", type=int, help="process every k-th frame")
        selection.add_argument("--fps", type=float, help="process frames at this rate")
        parser.add_argument("--source-fps", type=float, help="frame rate of a directory or glob of frames (default 30)")
        parser.add_argument("--start", type=int, default=0, help="first frame (default 0)")
        parser.add_argument("--end", type=int, help="stop before this frame")
        if command not in _PROPAGATION_COMMANDS:  # those always stretch to --size with Lanczos, as the protocol
            parser.add_argument("--resize-mode", choices=["resize", "crop", "pad"], help="override the model's preprocessing")
        parser.add_argument("--device", help="cpu, cuda, cuda:1, mps ... (default: first GPU, else CPU); checked before loading")
        parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], help="run the model in this dtype")
        parser.add_argument("--batch-size", type=int, default=1, help="windows per model call where they are independent")
        parser.add_argument("--seed", type=int, default=0, help="seed of MooG's initial state")
        parser.add_argument(
            "--overwrite", action="store_true",
            help="replace an existing output file, or a directory holding only PNG frames (never a symbolic link)",
        )
        parser.add_argument("--quiet", action="store_true", help=_QUIET_HELP)
        parser.set_defaults(func=_cmd_task)


def build_parser() -> argparse.ArgumentParser:
    names = " and ".join(", ".join(spec.display_name for spec in families()).rsplit(", ", 1))
    parser = argparse.ArgumentParser(prog="fourd-hub", description=f"{names} video models for PyTorch / Hugging Face.")
    parser.add_argument("--version", action="version", version=f"fourd-hub {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    listing = sub.add_parser("list", help="print the catalog of named checkpoints")
    listing.add_argument("--family", choices=list(FAMILIES), help="only this model family")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=_cmd_list)

    convert = sub.add_parser(
        "convert",
        help="convert an original representations4d .npz into a Hugging Face model directory",
        description="Convert an original .npz checkpoint. The config is inferred from the tensor shapes "
        "and checked against the catalog entry (--name, or recognised from the file name), a 4DS size "
        "(--preset) or a config JSON (--config).",
    )
    convert.add_argument("source", help="original .npz file")
    convert.add_argument("output", help="output directory (created atomically)")
    group = convert.add_mutually_exclusive_group()
    group.add_argument("--name", help=f"catalog name, e.g. 4ds-b-dist-e (see 'fourd-hub list'); hub org {DEFAULT_HUB_ORG}")
    group.add_argument("--preset", help="a size preset of the file's family (4DS: S, B, L, H, G, e, j; MooG: ego4d, movi; RVM: S, B, L, H)")
    group.add_argument("--config", help="a JSON file of config fields; only the fields it names are claims, the shapes give the rest")
    convert.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    convert.add_argument(
        "--max-shard-size", default="2GB",
        help="safetensors shard size: bytes (1000000) or with a unit, B/KB/MB/GB or KiB/MiB/GiB (default 2GB)",
    )
    convert.add_argument(
        "--overwrite", action="store_true", help="replace an existing output directory (not a file or a symbolic link)"
    )
    verify = convert.add_mutually_exclusive_group()
    verify.add_argument("--verify", action="store_true", help="re-read and compare every written tensor (default: if < 4 GB)")
    verify.add_argument("--no-verify", action="store_true", help="skip the read-back check")
    convert.add_argument("--no-sha256", action="store_true", help="do not hash the source file for the model card")
    convert.add_argument("--quiet", action="store_true", help=_QUIET_HELP)
    convert.set_defaults(func=_cmd_convert)

    download = sub.add_parser(
        "download",
        help="put a catalog model into the Hugging Face cache (Hub copy, else the original file converted)",
        description="Resolve NAME as from_pretrained does and print the cached directory: the Hub repo "
        "<org>/NAME if it exists, else the original .npz downloaded (FOURD_HUB_ORIGINAL_URL overrides the URL "
        "base) and converted into the cache once. With --original, convert that local file instead (offline).",
    )
    download.add_argument("name", help="catalog name (fourd-hub list)")
    download.add_argument("--original", help="a local copy of the original .npz to convert (no download)")
    download.add_argument("--force", action="store_true", help="download and convert again")
    download.add_argument("--cache-dir", help="Hugging Face cache directory (default: HF_HUB_CACHE)")
    download.add_argument("--quiet", action="store_true", help=_QUIET_HELP)
    download.set_defaults(func=_cmd_download)

    push = sub.add_parser(
        "push",
        help="convert a catalog entry (or take a saved model directory) and push it to a Hub repo",
        description="Push MODEL (a catalog name, converted first if needed, or a save_pretrained directory) to "
        "REPO_ID with its weights, config, video processor config and the fourd_hub model card.",
    )
    push.add_argument("model", help="catalog name or model directory")
    push.add_argument("repo_id", help="target repo, 'org/name' (created if missing)")
    push.add_argument("--original", help="a local copy of the original .npz (catalog names; else it is downloaded)")
    push.add_argument("--private", action="store_true", help="create the repo private")
    push.add_argument("--token", help="Hub token (default: the logged-in one)")
    push.add_argument("--revision", help="branch to push to")
    push.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing")
    push.add_argument("--commit-message", help="commit message")
    push.add_argument("--quiet", action="store_true", help=_QUIET_HELP)
    push.set_defaults(func=_cmd_push)

    cards = sub.add_parser("model-cards", help="write one model card per catalog entry (or --check them)")
    cards.add_argument("directory", nargs="?", default="model_cards", help="output directory (default: model_cards)")
    cards.add_argument("--check", action="store_true", help="write nothing; fail if a card differs from the catalog")
    cards.set_defaults(func=_cmd_model_cards)
    _add_task_commands(sub)
    from .evaluation.cli import add_evaluate_command

    add_evaluate_command(sub)
    return parser


@contextlib.contextmanager
def quiet_libraries(enabled: bool = True) -> Iterator[None]:
    """Only errors on stderr while the block runs (``--quiet``); everything is restored afterwards.

    Silences transformers' logging below ERROR (its load reports, e.g. "... LOAD REPORT from: ...")
    and its progress bars ("Loading weights"), huggingface_hub's progress bars (downloads),
    fourd_hub's own loggers and Python warnings. Our own bars are off through each command's
    ``progress=False``. Restoring matters when :func:`main` runs inside a Python process.
    """
    if not enabled:
        yield
        return
    import logging

    from huggingface_hub import utils as hub_utils
    from transformers.utils import logging as transformers_logging

    ours = logging.getLogger("fourd_hub")
    saved = (
        transformers_logging.get_verbosity(),
        transformers_logging.is_progress_bar_enabled(),
        hub_utils.are_progress_bars_disabled(),
        ours.level,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        transformers_logging.set_verbosity_error()
        transformers_logging.disable_progress_bar()
        hub_utils.disable_progress_bars()
        ours.setLevel(logging.ERROR)
        try:
            yield
        finally:
            verbosity, bars, hub_bars_disabled, level = saved
            ours.setLevel(level)
            transformers_logging.set_verbosity(verbosity)
            if bars:
                transformers_logging.enable_progress_bar()
            if not hub_bars_disabled:
                hub_utils.enable_progress_bars()


# Commands that need neither torch nor transformers (nor --help and --version, answered by argparse).
_LIGHT_COMMANDS = {"list"}


def _load_package() -> None:
    """What ``import fourd_hub`` does for a library user: register our configs, models and pipelines
    with transformers. Called explicitly before the commands that load models, so that it holds
    however lazily the package ``__init__`` imports (idempotent; a fraction of a millisecond when
    it already ran), and a package missing from the environment is one line, not a traceback."""
    import fourd_hub

    fourd_hub.register_auto_classes()
    fourd_hub.register_pipelines()


def _missing_dependency(err: ImportError) -> str:
    """One line for an ImportError: the package to install, or what is broken."""
    name = getattr(err, "name", None) or ""
    if isinstance(err, ModuleNotFoundError) and name and name.split(".")[0] != "fourd_hub":
        top = name.split(".")[0]
        package = _PIP_NAMES.get(top, top)
        return f"this command needs the Python package {top!r}, which is not installed: pip install {package}"
    return f"{err} (an incomplete or mismatched installation: reinstall fourd_hub and its dependencies)"


def _discard_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null, so the interpreter's final flush cannot fail
    ("Exception ignored ... BrokenPipeError"); the Python documentation's recipe (signal module)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):  # no real stdout (captured in a test, closed)
        pass


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 environment, 2 input, 130 Ctrl-C, 141 broken pipe)."""
    try:
        return _run(argv)
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as Unix tools do
        _discard_stdout()
        return EXIT_BROKEN_PIPE


def _run(argv: list[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, --version, usage errors: argparse has printed its message
        sys.stdout.flush()
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else EXIT_USAGE)
    prefix = f"fourd-hub {args.command}"
    try:
        with quiet_libraries(getattr(args, "quiet", False)):
            if args.command not in _LIGHT_COMMANDS:
                _load_package()
            code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter shutdown
        return code
    except BrokenPipeError:
        raise
    except (ValueError, KeyError, TypeError, OSError) as err:  # OSError: missing files, downloads, disk space
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(f"{prefix}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except ImportError as err:  # a package missing from this environment (optional or not)
        print(f"{prefix}: error: {_missing_dependency(err)}", file=sys.stderr)
        return EXIT_ENVIRONMENT
    except RuntimeError as err:
        if type(err).__name__ != "OutOfMemoryError":  # torch.OutOfMemoryError, without importing torch
            raise
        text = str(err).strip().splitlines()[0] if str(err).strip() else ""
        what = ". ".join(text.split(". ")[:2]).rstrip(".")  # "CUDA out of memory. Tried to allocate 2.00 GiB"
        print(f"{prefix}: error: out of memory on the device ({what or 'no details'}); try a smaller --batch-size, "
              "--dtype bfloat16 or --device cpu", file=sys.stderr)
        return EXIT_ENVIRONMENT
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted; nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
