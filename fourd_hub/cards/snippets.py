"""Usage snippets: a Python script that loads the model and runs it, and the ``fourd-hub`` command of its task.

What the snippets call and print follows the task table (:data:`fourd_hub.tasks.TASKS`): the
query arguments of the tracking tasks, each task's output fields, the pipeline and the CLI
command. What depends on the family comes from its card module: the outputs of its base model
(``base_model_prints``), the features its pipeline returns (``feature_print``); and from its
registry entry: a recurrent family's initial state is drawn at random, so its snippet passes a
seeded generator.
"""

from __future__ import annotations

from typing import Any

from ..registry import FamilySpec
from .family import CardTask, family_card

__all__ = ["cli_line", "usage_python"]

# The forward pass's output fields per task (the base model's come from the family's card module).
_FORWARD_PRINTS = {
    "depth-estimation": "print(outputs.predicted_depth.shape)  # (1, {num_frames}, {height}, {width}): depth in metres",
    "point-tracking": "print(outputs.tracks.shape, outputs.visible.shape)  # (1, {num_frames}, 2, 2) pixel (x, y), (1, {num_frames}, 2)",
    "box-tracking": "print(outputs.boxes.shape)  # (1, {num_frames}, 1, 4): pixel (x1, y1, x2, y2)",
    "camera-pose-estimation": "print(outputs.pose.shape)  # (1, 4, 4): the last frame's camera relative to the first's",
    "video-classification": "print(outputs.logits.shape)  # (1, number of classes)",
    "video-reconstruction": (
        "print(outputs.predicted_frames.shape)  # (1, {num_frames}, 3, {height}, {width}): each frame predicted from the ones before"
    ),
}

# The method a task's snippet calls instead of forward: the protocol every family's model of the
# task has (MooG's next-frame prediction and RVM's masked reconstruction take other forward inputs).
_FORWARD_METHODS = {"video-reconstruction": "reconstruct_video"}

# What each pipeline returns (the features' layout comes from the family's card module).
_PIPELINE_PRINTS = {
    "depth-estimation": "print(result.depth.shape)  # (T, H, W): metres, at the video's resolution",
    "point-tracking": "print(result.tracks.shape, result.visible.shape)  # (T, 1, 2) pixel (x, y), (T, 1)",
    "box-tracking": "print(result.boxes.shape)  # (T, 1, 4): pixel (x1, y1, x2, y2)",
    "camera-pose-estimation": "print(result.poses.shape)  # (K, 4, 4): camera poses at key frames",
    "video-reconstruction": "print(result.frames.shape)  # (T, H, W, 3): each frame predicted from the ones before",
}

# The queries of the tracking pipelines (one track, in a 64x64 corner of clip.mp4).
_PIPELINE_QUERIES = {
    "point-tracking": ", points=[(0, 32.0, 32.0)]",
    "box-tracking": ", boxes=[(0, 16.0, 16.0, 48.0, 48.0)]",
}

# Per task: the command's query option and the output file it writes.
_CLI_ARGUMENTS = {
    "video-feature-extraction": ("", "features.npz"),
    "depth-estimation": ("", "depth.mp4"),
    "point-tracking": (' --points "0,32,32"', "tracks.mp4"),
    "box-tracking": (' --boxes "0,16,16,48,48"', "boxes.json"),
    "camera-pose-estimation": ("", "poses.json"),
    "video-reconstruction": ("", "reconstruction.mp4"),
}


def _fmt(value: float) -> str:
    return f"{float(value):.1f}"


def _queries(task: str, height: int, width: int) -> tuple[list[str], list[str]]:
    """The lines building a tracking task's queries, and the forward-pass arguments passing them."""
    if task == "point-tracking":
        points = f"[[[{_fmt(width / 4)}, {_fmt(height / 4)}], [{_fmt(3 * width / 4)}, {_fmt(height / 2)}]]]"
        return [f"queries = torch.tensor({points})  # (B, Q, 2): pixel (x, y) in the first frame"], ["query_points=queries"]
    if task == "box-tracking":
        box = f"[[[{_fmt(width / 4)}, {_fmt(height / 4)}, {_fmt(3 * width / 4)}, {_fmt(3 * height / 4)}]]]"
        return [f"queries = torch.tensor({box})  # (B, Q, 4): pixel (x1, y1, x2, y2) in the first frame"], ["query_boxes=queries"]
    return [], []


def _forward_prints(spec: FamilySpec, task: str, config: Any, num_frames: int, height: int, width: int) -> list[str]:
    """``print`` lines reading the output field(s) of a ``task`` model, with the shapes they show."""
    if task == "video-feature-extraction":
        return family_card(spec).base_model_prints(config, num_frames, height, width)
    return [_FORWARD_PRINTS[task].format(num_frames=num_frames, height=height, width=width)]


def _pipeline_print(spec: FamilySpec, task: str) -> str:
    if task == "video-feature-extraction":
        return family_card(spec).feature_print
    return _PIPELINE_PRINTS[task]


def usage_python(
    spec: FamilySpec,
    task: CardTask,
    architecture: str,
    model_id: str,
    num_frames: int,
    image_size: Any,
    config: Any,
    backbone: str | None = None,
) -> str:
    """A script that loads the model, runs it on a random clip, then runs its pipeline on clip.mp4.

    Args:
        spec: the model's family.
        task: the model's task (:func:`~fourd_hub.cards.family.card_task`).
        architecture: the class that loads it.
        model_id: what the script loads (a catalog name, a repo id or a path).
        num_frames: the example clip's length.
        image_size: the example clip's (height, width).
        config: the model's configuration.
        backbone: for a standalone head whose config names no backbone: the backbone to pass.

    Returns:
        The script's text.
    """
    height, width = (int(s) for s in image_size)
    names = [architecture] + (["pipeline"] if task.pipeline else [])
    backbone_argument = f', backbone="{backbone}"' if backbone else ""
    lines = ["import torch", f"from fourd_hub import {', '.join(names)}", ""]
    lines.append(f'model = {architecture}.from_pretrained("{model_id}"{backbone_argument}).eval()')
    lines.append(f"video = torch.rand(1, {num_frames}, 3, {height}, {width})  # (B, T, C, H, W), RGB in [0, 1]")
    query_lines, query_arguments = _queries(task.task.name, height, width)
    lines += query_lines
    arguments = ["pixel_values_videos=video", *query_arguments]
    if spec.recurrent:
        # A recurrent model draws its initial state at random: a seeded generator makes the run repeatable.
        arguments.append("generator=torch.Generator().manual_seed(0)")
    method = f".{_FORWARD_METHODS[task.task.name]}" if task.task.name in _FORWARD_METHODS else ""
    lines += ["with torch.no_grad():", f"    outputs = model{method}({', '.join(arguments)})"]
    lines += _forward_prints(spec, task.task.name, config, num_frames, height, width)
    if task.pipeline:
        call = f'"clip.mp4"{_PIPELINE_QUERIES.get(task.pipeline, "")}'
        lines += ["", f'result = pipeline("{task.pipeline}", model="{model_id}"{backbone_argument})({call})']
        lines.append(_pipeline_print(spec, task.pipeline))
    return "\n".join(lines)


def cli_line(task: CardTask, model_id: str, backbone: str | None = None) -> str | None:
    """The ``fourd-hub`` command running the model's pipeline on clip.mp4 (``None``: the task has no command)."""
    if task.cli is None:
        return None
    extra, output = _CLI_ARGUMENTS[task.shown.name]
    backbone_option = f" --backbone {backbone}" if backbone else ""
    return f"fourd-hub {task.cli} clip.mp4 --model {model_id}{backbone_option}{extra} --output {output}"
