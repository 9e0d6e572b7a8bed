"""Benchmark metrics as the benchmarks' own code defines them (DAVIS-2017 J / F, JHMDB PCK)."""

from .metrics import (
    compute_human_boxes,
    compute_pck,
    davis_sequence_metrics,
    davis_summary,
    db_eval_boundary,
    db_eval_iou,
    jhmdb_distances,
    jhmdb_pck,
    seg2bmap,
)

__all__ = [
    "compute_human_boxes",
    "compute_pck",
    "davis_sequence_metrics",
    "davis_summary",
    "db_eval_boundary",
    "db_eval_iou",
    "jhmdb_distances",
    "jhmdb_pck",
    "seg2bmap",
]
