"""What the first ``from_pretrained(<catalog name>)`` costs: download + conversion into the HF cache.

What it does
------------
1. Writes a synthetic original-format 4DS checkpoint (``convert_memory.py``'s writer: exact keys
   and shapes of a Table 1 size, seeded float32 values) and serves it from a local HTTP server on
   127.0.0.1 that also answers 404 to Hub API calls, standing in for "no converted repo on the Hub".
2. Times, in fresh subprocesses (each with the same imports):
   - ``cold``: ``fourd_hub.from_pretrained(name)`` on an empty HF cache: the Hub lookup (404),
     the streamed download with sha256, the conversion, the commit into the cache, the model load;
   - ``warm``: the same call again (the cache is read; nothing is fetched or converted);
   - ``dir``: ``FourDSModel.from_pretrained(<the cached snapshot directory>)``, the plain-directory
     load that ``warm`` should match.
   Peak RSS of each child is its own ``ru_maxrss``.
3. Times ``download_file`` alone (into a scratch directory), to split the cold time.

How to run (from the repository root)
-------------------------------------
    python benchmarks/hub_first_use.py            # 4DS-B, ~350 MB
    python benchmarks/hub_first_use.py --size S   # ~90 MB

Loopback transfers are far faster than a real link: on a real first use the download dominates
(the 4DS-e file is 15 GB), and the conversion adds about the time reported here per GB.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from convert_memory import SIZES, checkpoint_arrays, write_synthetic_npz  # noqa: E402

NAME = "4ds-bench"

CHILD_CODE = r"""
import json, resource, sys, time
import torch
import fourd_hub
from fourd_hub import FourDSModel
from fourd_hub.catalog import CATALOG, CatalogEntry, InputSpec

args = json.loads(sys.argv[1])
spec = args["entry"]
spec["input_spec"] = InputSpec(**spec["input_spec"])
CATALOG[spec["name"]] = CatalogEntry(**spec)
start = time.perf_counter()
if args["mode"] == "dir":
    model = FourDSModel.from_pretrained(args["directory"])
else:
    model = fourd_hub.from_pretrained(spec["name"])
seconds = time.perf_counter() - start
directory = str(fourd_hub.hub.find_converted(CATALOG[spec["name"]]))
report = {"seconds": seconds, "class": type(model).__name__, "directory": directory,
          "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
print("BENCHMARK-RESULT " + json.dumps(report), flush=True)
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no per-request lines in the benchmark output
        pass


def serve(directory: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(16 * 2**20):
            digest.update(block)
    return digest.hexdigest()


def run_child(mode: str, entry: dict, env: dict, directory: str | None = None) -> dict:
    args = json.dumps({"mode": mode, "entry": entry, "directory": directory})
    result = subprocess.run([sys.executable, "-c", CHILD_CODE, args], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{mode} child failed:\n{result.stderr[-3000:]}")
    line = next(l for l in result.stdout.splitlines() if l.startswith("BENCHMARK-RESULT "))
    return json.loads(line.split(" ", 1)[1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="B", choices=sorted(SIZES))
    args = parser.parse_args(argv)
    from fourd_hub.hub.download import download_file

    size = SIZES[args.size]
    with tempfile.TemporaryDirectory(prefix="fourd-hub-bench-") as temp:
        root = Path(temp)
        (root / "served").mkdir()
        original = root / "served" / f"synthetic_{args.size}.npz"
        print(f"writing a synthetic 4DS-{args.size} original checkpoint ...", flush=True)
        write_synthetic_npz(original, checkpoint_arrays(size), seed=0)
        nbytes = original.stat().st_size
        entry = dict(
            name=NAME, family="fourds", architecture="FourDSModel", preset=args.size,
            description="benchmark entry", num_parameters=size.num_parameters,
            input_spec={"num_frames": 16, "image_size": [224, 224]},
            original_file=original.name, file_size=nbytes, sha256=sha256_file(original),
        )
        server, url = serve(root / "served")
        env = {
            **os.environ,
            "HF_HUB_CACHE": str(root / "cache"),
            "HF_ENDPOINT": url,  # the Hub: 404 for every repo
            "FOURD_HUB_ORIGINAL_URL": url + "/",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        }
        env.pop("HF_HUB_OFFLINE", None)
        try:
            start = time.perf_counter()
            download_file(url + "/" + original.name, root / "scratch" / original.name, expected_sha256=entry["sha256"], progress=False)
            download_s = time.perf_counter() - start
            cold = run_child("cold", entry, env)
            warm = run_child("warm", entry, env)
            plain = run_child("dir", entry, env, directory=cold["directory"])
        finally:
            server.shutdown()
    gb = nbytes / 1e9
    print(f"\n4DS-{args.size}: {size.num_parameters:,} parameters, original file {gb:.2f} GB, served over 127.0.0.1")
    print(f"{'step':<58} {'seconds':>8} {'peak RSS':>10}")
    print(f"{'download_file alone (stream + sha256 + atomic rename)':<58} {download_s:8.2f} {'':>10}   {gb / download_s:.2f} GB/s")
    for label, run in (
        ("cold from_pretrained(name): Hub 404 + download + convert", cold),
        ("warm from_pretrained(name): from the cache", warm),
        ("from_pretrained(snapshot directory)", plain),
    ):
        print(f"{label:<58} {run['seconds']:8.2f} {run['maxrss_kib'] / 1024:8.0f} MiB")
    convert = cold["seconds"] - download_s - plain["seconds"]
    print(f"\nconversion + commit into the cache (cold - download - load): {convert:.2f} s, {gb / max(convert, 1e-9):.2f} GB/s")
    print(f"first use costs {cold['seconds'] / warm['seconds']:.1f}x a cached load; "
          f"a cached load by name costs {warm['seconds'] / plain['seconds']:.2f}x a directory load")


if __name__ == "__main__":
    main()
