"""``fourd-hub evaluate davis|jhmdb|vip``: benchmark evaluation from the command line.

``--model M`` runs the ``video-object-segmentation`` / ``keypoint-tracking`` pipeline on every
video at the protocol's processing size and scores it; ``--predictions`` scores saved predictions
(DAVIS / VIP: a results directory of label PNGs; JHMDB: a ``.npz`` or ``.json`` file). The summary
is printed as a table (percent); ``--output FILE.json`` also writes the per-video results.

Everything that needs no model is checked first, in this order, so that a bad option or a broken
dataset fails in a second with one line and exit status 2, before a model is loaded: the output
paths (``--output``, ``--save-predictions``), the options, ``--device``, then the whole dataset
(every folder, list and file header, JHMDB's ``.mat`` files) and the saved predictions. Outputs are
written only when every video has been scored: the JSON atomically, the predictions directory
assembled in a hidden staging directory beside it and renamed into place. See ``docs/evaluation.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

#: Benchmark -> (display name, processing size (H, W)); the sizes are the runner's (kept equal by a test).
_BENCHMARKS = {"davis": ("DAVIS-2017", (480, 880)), "jhmdb": ("JHMDB", (320, 320)), "vip": ("VIP", (448, 880))}


def add_evaluate_command(sub) -> None:
    """Register ``fourd-hub evaluate {davis,jhmdb,vip}`` on the CLI's subparsers (imports nothing heavy)."""
    parser = sub.add_parser(
        "evaluate",
        help="score a model (or saved predictions) on a benchmark: DAVIS-2017 J&F, JHMDB PCK, VIP mIoU",
        description="Label propagation benchmarks of the RVM evaluation protocol: the first frame's masks or "
        "joints are propagated along the model's frame features and scored as the benchmarks' own code does.",
    )
    benchmarks = parser.add_subparsers(dest="benchmark", required=True, metavar="{davis,jhmdb,vip}")
    descriptions = {
        "davis": "DAVIS-2017 semi-supervised video object segmentation: J&F-Mean, J-Mean, F-Mean (davis2017-evaluation). "
        "--data is the DAVIS folder (JPEGImages/480p, Annotations/480p, ImageSets/2017/<split>.txt); --predictions a "
        "results folder <dir>/<video>/00000.png ... (palette PNGs).",
        "jhmdb": "JHMDB pose propagation: PCK@0.1 .. PCK@0.5 over split N's test videos. --data is the JHMDB folder "
        "(Rename_Images, joint_positions, splits/<class>_test_split<N>.txt); --predictions a .npz or .json file "
        "(docs/evaluation.md). Reading .mat files needs scipy: pip install \"fourd-hub[eval]\".",
        "vip": "VIP human part propagation: mIoU over 20 classes. --data is the VIP_Fine folder (Images, "
        "Annotations/Category_ids, lists/val_videos.txt); --predictions a folder <dir>/<video>/<frame>.png.",
    }
    for name, (display, size) in _BENCHMARKS.items():
        p = benchmarks.add_parser(name, help=f"evaluate on {display}", description=descriptions[name])
        p.add_argument("--data", metavar="DIR", required=name != "jhmdb", help=f"the {display} dataset folder")
        source = p.add_mutually_exclusive_group(required=True)
        source.add_argument("--model", metavar="M", help="catalog name, converted model directory or Hub repo id (RVM, 4DS)")
        if name == "jhmdb":
            source.add_argument("--predictions", metavar="FILE", help="saved keypoint predictions to score (.npz or .json)")
            p.add_argument("--split", type=int, default=1, choices=(1, 2, 3), help="JHMDB split whose test videos are scored (default 1)")
            p.add_argument(
                "--list", dest="list_file", metavar="FILE",
                help="a CRW-style video list (jhmdb_vallist.txt: '<frames dir> <joint_positions.mat>' per line) instead of "
                "the split files; relative paths are resolved against --data (default: the current directory)",
            )
        else:
            source.add_argument("--predictions", metavar="DIR", help="a folder of label PNGs to score: <dir>/<video>/<frame>.png")
        if name == "davis":
            p.add_argument("--split", default="val", metavar="NAME", help="the ImageSets/2017/<split>.txt list (default val)")
        p.add_argument("--videos", metavar="A,B", help="only these videos, comma-separated (JHMDB: <class>/<video>)")
        p.add_argument("--output", "-o", metavar="FILE.json", help="write the summary and per-video results to this .json file")
        p.add_argument(
            "--save-predictions", metavar="FILE.npz" if name == "jhmdb" else "DIR",
            help="with --model: also save the predictions, "
            + ("as a .npz file (re-scored with --predictions)" if name == "jhmdb" else "as a results folder of palette PNGs"),
        )
        p.add_argument("--overwrite", action="store_true", help="replace an existing --output / --save-predictions")
        p.add_argument(
            "--size", metavar="H,W",
            help=f"with --model: processing size H,W (default {size[0]},{size[1]}, the protocol's; other sizes are not the benchmark)",
        )
        p.add_argument("--device", help="with --model: cpu, cuda, cuda:1, mps ... (default: first GPU, else CPU)")
        p.add_argument("--quiet", action="store_true", help="only errors on stderr: no progress bar, load reports or warnings")
        p.set_defaults(func=_cmd_evaluate)


def _parse_size(text: str) -> tuple[int, int]:
    parts = text.replace("x", ",").split(",")
    try:
        height, width = (int(part) for part in parts)
    except ValueError:
        raise ValueError(f"--size {text!r} is not H,W (two integers, e.g. 480,880)") from None
    if height < 1 or width < 1:
        raise ValueError(f"--size {text!r}: both sides must be positive")
    return height, width


def _check_predictions_dir(path: Path, overwrite: bool) -> None:
    """A results folder to create: refused if it exists, unless --overwrite and it holds only <video>/*.png."""
    if path.is_symlink():
        raise FileExistsError(f"refusing to replace {path}: it is a symbolic link; pass the real path")
    if not path.exists():
        return
    if not path.is_dir():
        raise FileExistsError(f"--save-predictions {path} is an existing file; a folder of PNGs is written there")
    if not overwrite:
        raise FileExistsError(f"--save-predictions {path} exists; pass --overwrite to replace it")
    for entry in path.iterdir():
        if entry.is_symlink() or not entry.is_dir() or any(f.is_dir() or f.suffix.lower() != ".png" for f in entry.iterdir()):
            raise FileExistsError(
                f"refusing to replace {path}: {entry} is not a folder of PNG files, so it is not a predictions folder "
                "this command wrote; choose another path"
            )


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .._files import replacing_dir, write_text_atomic
    from .._version import __version__
    from ..results import check_output_path

    benchmark = args.benchmark
    display, default_size = _BENCHMARKS[benchmark]
    # 1. Outputs and options: nothing needs the dataset or a model.
    output = None
    if args.output is not None:
        output = Path(args.output)
        if output.suffix.lower() != ".json":
            raise ValueError(f"--output {output.name!r}: results are written as JSON; use a .json file name")
        check_output_path(output, overwrite=args.overwrite)
    save = None if args.save_predictions is None else Path(args.save_predictions)
    if args.predictions is not None:
        used = [flag for flag, value in (("--save-predictions", save), ("--size", args.size), ("--device", args.device)) if value is not None]
        if used:
            raise ValueError(f"{', '.join(used)} apply to --model; --predictions scores files that already exist")
    if save is not None:
        if benchmark == "jhmdb":
            if save.suffix.lower() != ".npz":
                raise ValueError(f"--save-predictions {save.name!r}: JHMDB predictions are saved as a .npz file")
            check_output_path(save, overwrite=args.overwrite)
        else:
            _check_predictions_dir(save, args.overwrite)
        if output is not None and (output.resolve() == save.resolve() or save.resolve() in output.resolve().parents):
            raise ValueError("--output must not be --save-predictions or inside it (that folder is replaced as a whole)")
    size = default_size if args.size is None else _parse_size(args.size)
    device = None
    if args.model is not None:
        from ..pipelines import resolve_device

        device = resolve_device(args.device)
    videos = None if args.videos is None else [v for v in args.videos.split(",") if v.strip()]
    if videos is not None and not videos:
        raise ValueError("--videos is empty")

    # 2. The dataset and saved predictions, checked as a whole (headers, lists, .mat files).
    from . import datasets, runner

    if benchmark == "davis":
        dataset = datasets.DavisDataset(args.data, split=args.split, videos=videos)
        settings = {"split": args.split}
    elif benchmark == "jhmdb":
        dataset = datasets.JhmdbDataset(args.data, split=args.split, videos=videos, list_file=args.list_file)
        settings = {"split": args.split, "list": args.list_file}
    else:
        dataset = datasets.VipDataset(args.data, videos=videos)
        settings = {}
    propagation = runner.VIP_PROPAGATION if benchmark == "vip" else runner.PROPAGATION
    settings = {
        "dataset": display, "data": None if args.data is None else str(args.data), **settings,
        "num_videos": len(dataset), "model": args.model, "predictions": args.predictions,
        "processing_size": list(size) if args.model is not None else None,
        "propagation": dict(propagation) if args.model is not None else None,
        "fourd_hub_version": __version__,
    }

    # 3. The model, then every video; outputs only at the end.
    predictor = None
    if args.model is not None:
        build = runner.keypoint_predictor if benchmark == "jhmdb" else runner.segmentation_predictor
        predictor = build(args.model, size=size, device=device, propagation=propagation)
    evaluate = {"davis": runner.evaluate_davis, "jhmdb": runner.evaluate_jhmdb, "vip": runner.evaluate_vip}[benchmark]
    staged = replacing_dir(save) if save is not None and benchmark != "jhmdb" else contextlib.nullcontext(None)
    with staged as staging:
        target = staging if benchmark != "jhmdb" else save
        source = {"predictor": predictor} if predictor is not None else {"predictions": args.predictions}
        result = evaluate(dataset, **source, save_predictions=target, progress=not args.quiet, settings=settings)
        if output is not None:
            write_text_atomic(output, result.to_json())
    split = {"davis": f" {getattr(args, 'split', '')}", "jhmdb": f" split {getattr(args, 'split', '')}"}.get(benchmark, "")
    scored = f"model {args.model}" if args.model is not None else f"predictions {args.predictions}"
    print(f"{display}{split}: {len(dataset)} video{'s' if len(dataset) != 1 else ''}, {scored}")
    print(result.table())
    for path, what in ((output, "results"), (save, "predictions")):
        if path is not None:
            print(f"wrote {what} to {path}")
    sys.stdout.flush()
    return 0

