"""Benchmark evaluation: metrics as the benchmarks' own code defines them (DAVIS-2017 J / F, JHMDB
PCK, VIP mIoU), readers for their layouts and the evaluation loops (``fourd-hub evaluate``).

The readers (:mod:`.datasets`) and loops (:mod:`.runner`) import scipy only for JHMDB's ``.mat``
files (``pip install "fourd-hub[eval]"``) and the pipelines only when a model is evaluated.
"""

__all__ = [
    "VIP_CLASSES",
    "ConfusionHistogram",
    "compute_human_boxes",
    "compute_pck",
    "davis_global_results",
    "davis_sequence_metrics",
    "davis_summary",
    "db_eval_boundary",
    "db_eval_iou",
    "db_statistics",
    "fast_hist",
    "jhmdb_distances",
    "jhmdb_pck",
    "seg2bmap",
    "vip_miou",
]


def __getattr__(name: str):
    # Lazy (PEP 562): the CLI imports ``fourd_hub.evaluation.cli`` to register ``evaluate``, and
    # ``fourd-hub --help`` must not pay for numpy (and what the metrics import) to do so.
    if name in __all__:
        from . import metrics

        return getattr(metrics, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
