"""The ``fourd-hub`` command line: ``list`` the catalog, ``convert`` an original checkpoint.

Errors about the user's input (missing or corrupt files, wrong checkpoint, bad options) are
printed as one clear line on stderr with exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .catalog import CATALOG, DEFAULT_HUB_ORG


def _cmd_list(args: argparse.Namespace) -> int:
    rows = []
    for entry in CATALOG.values():
        if args.family and entry.family != args.family:
            continue
        rows.append(
            (
                entry.name,
                entry.architecture,
                f"{entry.num_parameters / 1e6:,.1f}M",
                f"{entry.input_spec.num_frames}x{entry.input_spec.image_size[0]}x{entry.input_spec.image_size[1]}",
                entry.original_file or "(config only)",
            )
        )
    if args.json:
        print(json.dumps([dict(zip(("name", "class", "params", "input", "original_file"), row)) for row in rows], indent=2))
        return 0
    header = ("name", "class", "params", "input TxHxW", "original file")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
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
    )
    print(f"wrote {result.model_class} ({result.num_parameters:,} parameters) to {result.output_dir}")
    print(f"layout: {result.layout}")
    if result.source_sha256:
        print(f"source sha256: {result.source_sha256}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fourd-hub", description="4DS and MooG video models for PyTorch / Hugging Face.")
    sub = parser.add_subparsers(dest="command", required=True)

    listing = sub.add_parser("list", help="print the catalog of named checkpoints")
    listing.add_argument("--family", choices=["fourds", "moog"], help="only this model family")
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
    group.add_argument("--preset", help="a 4DS size of Table 1: S, B, L, H, G, e, j")
    group.add_argument("--config", help="a JSON file of FourDSConfig fields")
    convert.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    convert.add_argument("--max-shard-size", default="2GB", help="safetensors shard size (default 2GB)")
    convert.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    verify = convert.add_mutually_exclusive_group()
    verify.add_argument("--verify", action="store_true", help="re-read and compare every written tensor (default: if < 4 GB)")
    verify.add_argument("--no-verify", action="store_true", help="skip the read-back check")
    convert.add_argument("--no-sha256", action="store_true", help="do not hash the source file for the model card")
    convert.add_argument("--quiet", action="store_true", help="no progress bars")
    convert.set_defaults(func=_cmd_convert)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, KeyError, TypeError, FileExistsError, FileNotFoundError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(f"fourd-hub {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fourd-hub {args.command}: interrupted; nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
