"""Training: pretraining with FSDP2 under torchrun, readouts with the HF Trainer, the papers' metrics.

* ``torchrun -m fourd_hub.training.pretrain`` (or :func:`fourd_hub.training.pretrain.pretrain`): 4DS masked
  auto-encoding, MooG next-frame prediction and RVM masked reconstruction from a
  :class:`PretrainingRecipe` (:data:`RECIPES`: ``debug``, ``debug-moog``, ``debug-rvm``, ``4ds-s`` ...
  ``4ds-j``, ``moog-movi``, ``rvm-s`` ... ``rvm-h``), with sharded checkpoints, exact resume
  and :func:`export_checkpoint` to a ``save_pretrained`` directory (:func:`verify_checkpoint` refuses
  a truncated checkpoint in one line).
* :class:`ReadoutTrainer` / :func:`readout_training_arguments`: the paper's readout protocol (A.2),
  frozen or fine-tuned, with :func:`make_compute_metrics`.
* Metrics: :func:`abs_rel`, :func:`average_jaccard`, :func:`mean_iou`, :func:`pose_end_point_error`,
  :func:`top1_accuracy`.
"""

from .checkpoint import export_checkpoint, latest_checkpoint, verify_checkpoint
from .metrics import abs_rel, average_jaccard, box_iou, make_compute_metrics, mean_iou, pose_end_point_error, top1_accuracy
# The module ``pretrain`` stays a module (``python -m fourd_hub.training.pretrain``); its function is
# ``fourd_hub.training.pretrain.pretrain``.
from .pretrain import PretrainingResult, learning_rate_at
from .readout import ReadoutTrainer, freeze_backbone, readout_training_arguments
from .recipes import RECIPES, PretrainingRecipe, get_recipe

__all__ = [
    "RECIPES",
    "PretrainingRecipe",
    "PretrainingResult",
    "ReadoutTrainer",
    "abs_rel",
    "average_jaccard",
    "box_iou",
    "export_checkpoint",
    "freeze_backbone",
    "get_recipe",
    "latest_checkpoint",
    "learning_rate_at",
    "make_compute_metrics",
    "mean_iou",
    "pose_end_point_error",
    "readout_training_arguments",
    "top1_accuracy",
    "verify_checkpoint",
]
