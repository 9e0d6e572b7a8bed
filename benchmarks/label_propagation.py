"""Label propagation frames/s and peak memory at the DAVIS size (480x880, a 30x55 grid), printed as a table.

What it does
------------
Each measurement runs in a fresh subprocess (so that its peak memory is its own):

* ``propagation (before)``: the previous implementation, kept here as ``REFERENCE``: per frame the
  affinities of chunks of query positions against all ``n_context + 1`` context frames at once
  (``(q, 21, 1650)``, the context stacked every frame) and one ``torch.topk`` over the 34,650
  candidates of each row: the reference's layout.
* ``propagation (now)``: :class:`fourd_hub.label_propagation.LabelPropagator` stepped over the
  frames: per context entry a ``(q, 1650)`` affinity block and its top-k, then the top-k of the
  ``21 x topk`` survivors (the global top-k is inside the union of the per-entry top-k's); the
  initial copies of the first frame share one block; queue entries only for grid rows within the
  radius (at 30x55 with radius 20 that is every row: no saving there).
  Both on the same random L2-normalised features, ``(T, 30, 55, 384)`` (RVM-S's width), with the
  protocol's parameters (n_context 20, temperature 0.7, topk 7, radius 20); the child checks
  nothing, the parent compares the two outputs (max |difference| and label argmax agreement).
* ``end to end``: ``pipeline("video-object-segmentation")`` on a synthetic 480x880 uint8 video
  of T frames with a two-object first mask, ``size=(480, 880)``, with RVM-S (random weights from
  the catalog preset ``RVMConfig.from_preset("S")``, no decoder: nothing is downloaded). The time
  spent inside ``LabelPropagator.step`` is reported separately, the rest being decoding, Lanczos
  resizing, the backbone and the post-processing to label maps.

How it is measured
------------------
frames/s: wall time of the loop only (model and input construction excluded). Peak memory: the
child's ``ru_maxrss`` from ``os.wait4`` (the kernel's high-water mark), printed absolute and
minus the child's own ``ru_maxrss`` just before the loop (imports, the model, the input video or
features: "added by the loop"). On a 2-core machine shared with other work use ``--threads 1``
(torch's OpenMP threads wait for each other when another process holds a core); the load
average is printed at the start and the end.

Run (from the repository root):
    python benchmarks/label_propagation.py --threads 1              # T = 50 frames (~10 min on 2 CPU cores)
    python benchmarks/label_propagation.py --threads 1 --frames 12  # quick (~3 min)
    python benchmarks/label_propagation.py --skip-before --skip-end-to-end
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys

# The previous implementation of label_propagation (rvm.md 6.2 in the reference's layout), for "before".
REFERENCE = r"""
def reference_propagation(feats, heatmap, n_context=20, temperature=0.7, topk=7, radius=20, max_chunk_bytes=256 * 2**20):
    from collections import deque
    import time
    import torch
    T, h, w, C = feats.shape
    L = heatmap.shape[2]
    n = h * w
    n_keys = (n_context + 1) * n
    chunk_size = max(1, min(int(max_chunk_bytes) // (n_keys * 4 * 3), n))
    ii, jj = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    coords = torch.stack([ii.reshape(-1), jj.reshape(-1)], -1).to(torch.float32)
    first_f, first_l = feats[0].reshape(n, C), heatmap.reshape(n, L)
    queue = deque([(first_f, first_l)] * n_context, maxlen=n_context)
    out = torch.empty((T, n, L))
    for t in range(T):
        tick = time.perf_counter()
        ctx_f = torch.stack([first_f] + [f for f, _ in queue])
        ctx_l = torch.cat([first_l] + [l for _, l in queue])
        query = feats[t].reshape(n, C)
        for start in range(0, n, chunk_size):
            stop = min(start + chunk_size, n)
            aff = torch.einsum("qc,tnc->qtn", query[start:stop], ctx_f) / temperature
            dist = torch.sqrt(((coords[start:stop, None, :] - coords[None, :, :]) ** 2).sum(-1))
            aff[:, 1:] += torch.where(dist < radius, 0.0, -1e10).to(torch.float32)[:, None, :]
            weights, idx = torch.topk(aff.reshape(stop - start, -1), topk, dim=-1)
            out[t, start:stop] = (torch.softmax(weights, -1)[..., None] * ctx_l[idx]).sum(-2)
        queue.append((query, out[t]))
        FRAME_SECONDS.append(time.perf_counter() - tick)
    return out.reshape(T, h, w, L)
"""

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
maxrss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
result = {}
T, (h, w), C = args["frames"], args["grid"], args["channels"]
if args["mode"] in ("before", "now"):
    g = torch.Generator().manual_seed(0)
    feats = torch.nn.functional.normalize(torch.randn(T, h, w, C, generator=g), dim=-1).to(args["device"])
    heatmap = torch.softmax(4 * torch.randn(h, w, 3, generator=g), -1).to(args["device"])
    FRAME_SECONDS = []
    if args["mode"] == "before":
        exec(args["reference"])
    else:
        from fourd_hub.label_propagation import LabelPropagator
    result["rss_before_loop"] = maxrss()
    with torch.inference_mode():
        start = time.perf_counter()
        if args["mode"] == "before":
            out = reference_propagation(feats, heatmap)
        else:
            propagator = LabelPropagator(feats[0], heatmap)
            steps = []
            for f in feats:
                tick = time.perf_counter()
                steps.append(propagator.step(f))
                FRAME_SECONDS.append(time.perf_counter() - tick)
            out = torch.stack(steps)
        if out.is_cuda:
            torch.cuda.synchronize()
        result["seconds"] = time.perf_counter() - start
    result["frame_seconds"] = FRAME_SECONDS
    np.save(args["output"], out.cpu().numpy())
elif args["mode"] == "end-to-end":
    from fourd_hub import RVMConfig, RVMModel, pipeline
    from fourd_hub import label_propagation as lp
    torch.manual_seed(0)
    model = RVMModel(RVMConfig.from_preset("S"), add_decoder=False).eval()
    H, W = args["size"]
    yy, xx = np.mgrid[:H, :W].astype(np.float32)
    frames = np.empty((T, H, W, 3), np.uint8)
    for t in range(T):  # smooth moving patterns: a synthetic video, not noise
        frames[t, ..., 0] = 127 + 120 * np.sin((xx + 6 * t) / 40.0)
        frames[t, ..., 1] = 127 + 120 * np.cos((yy - 3 * t) / 30.0)
        frames[t, ..., 2] = 255 * (((xx - 200 - 5 * t) ** 2 + (yy - 240) ** 2) < 90 ** 2)
    mask = np.zeros((H, W), np.uint8)
    mask[150:330, 110:290] = 1
    mask[60:200, 500:800] = 2
    spent = [0.0]
    step = lp.LabelPropagator.step
    def timed(self, features):
        start = time.perf_counter()
        out = step(self, features)
        spent[0] += time.perf_counter() - start
        return out
    lp.LabelPropagator.step = timed
    seg = pipeline("video-object-segmentation", model=model, progress=False, device=args["device"])
    result["rss_before_loop"] = maxrss()
    start = time.perf_counter()
    masks = seg(frames, mask=mask, size=(H, W)).masks
    result["seconds"] = time.perf_counter() - start
    result["propagation_seconds"] = spent[0]
    result["labels_found"] = sorted(int(v) for v in np.unique(masks))
if torch.cuda.is_available():
    result["cuda_peak"] = torch.cuda.max_memory_allocated()
print(json.dumps(result))
"""


def run_child(args: dict) -> dict:
    process = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(args)], stdout=subprocess.PIPE, text=True)
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"child {args['mode']} failed with status {status}")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_rss"] = usage.ru_maxrss * 1024
    return result


def mib(value: float) -> str:
    return f"{value / 2**20:,.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=50, help="video length T (default 50)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads per child (default: every core)")
    parser.add_argument("--channels", type=int, default=384, help="feature width C for the random features (RVM-S: 384)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda: where the features and the propagation run")
    parser.add_argument("--skip-before", action="store_true", help="do not time the previous implementation")
    parser.add_argument("--skip-end-to-end", action="store_true", help="do not run the RVM-S pipeline")
    options = parser.parse_args()
    import tempfile

    import numpy as np

    size, grid = (480, 880), (30, 55)
    print(f"label propagation at {size[0]}x{size[1]} (grid {grid[0]}x{grid[1]}), T={options.frames}, C={options.channels}, "
          f"{options.threads} thread(s), device {options.device}; {platform.processor() or platform.machine()}, "
          f"load average {os.getloadavg()}")
    common = dict(frames=options.frames, grid=grid, channels=options.channels, threads=options.threads, size=size, device=options.device)
    rows, outputs, phases = [], {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("now",) + (() if options.skip_before else ("before",)):
            path = os.path.join(tmp, f"{mode}.npy")
            result = run_child(dict(common, mode=mode, output=path, reference=REFERENCE))
            outputs[mode] = np.load(path, allow_pickle=False)
            rows.append((f"propagation ({mode}), random features", options.frames / result["seconds"], result["seconds"] / options.frames,
                         result["peak_rss"], result["rss_before_loop"], None))
            phases[mode] = result["frame_seconds"]
            if "cuda_peak" in result:
                print(f"{mode}: CUDA peak allocated {mib(result['cuda_peak'])}")
        if not options.skip_end_to_end:
            result = run_child(dict(common, mode="end-to-end"))
            rows.append(("end to end, RVM-S pipeline", options.frames / result["seconds"], result["seconds"] / options.frames,
                         result["peak_rss"], result["rss_before_loop"], result["propagation_seconds"] / options.frames))
            if "cuda_peak" in result:
                print(f"end to end: CUDA peak allocated {mib(result['cuda_peak'])}")
            labels = result["labels_found"]
    print()
    header = ("run", "frames/s", "s/frame", "of which propagation s/frame", "peak RSS", "added by the loop")
    table = [header] + [
        (name, f"{fps:.3f}", f"{spf:.2f}", "-" if prop is None else f"{prop:.2f}", mib(peak), mib(peak - before))
        for name, fps, spf, peak, before, prop in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))
    if "before" in outputs:
        now, before = outputs["now"], outputs["before"]
        agree = float((now.argmax(-1) == before.argmax(-1)).mean())
        print(f"now vs before: max |difference| {np.abs(now - before).max():.2e}, label argmax equal at {100 * agree:.3f}% of positions")
        rates = {name.split(",")[0]: fps for name, fps, *_ in rows}
        print(f"speed-up of the propagation: {rates['propagation (now)'] / rates['propagation (before)']:.2f}x")
    # Frames 0 .. n_context - 1 still have copies of frame 0 in the queue (shared by "now"); later ones do not.
    for mode, seconds in phases.items():
        early, late = seconds[:20], seconds[20:]
        text = f"propagation ({mode}): frames 0-{len(early) - 1} (queue holds copies of frame 0) {np.mean(early):.2f} s/frame"
        print(text + (f", frames 20-{len(seconds) - 1} (queue full) {np.mean(late):.2f} s/frame" if late else ""))
    if not options.skip_end_to_end:
        print(f"end to end: labels in the propagated masks {labels}")
    print(f"load average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
