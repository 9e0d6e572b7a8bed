"""Registration of every family's configs and models with transformers' Auto classes (run at import).

Driven by the registry and the task table: a family's base model goes to ``AutoModel``, each task
model to the Auto class its task names (:attr:`fourd_hub.tasks.TaskSpec.auto_class`), and the
family's ``auto_classes`` (e.g. ``AutoModelForPreTraining``) likewise.
"""

from __future__ import annotations

import transformers
from transformers import AutoConfig

from .registry import families, import_object
from .tasks import get_task


def register_auto_classes() -> None:
    """Make ``Auto*.from_pretrained`` resolve our model types (no ``trust_remote_code``). Idempotent.

    Point, box and camera-pose models have no transformers Auto class: load them with their class
    or :func:`fourd_hub.from_pretrained`, which picks the class a checkpoint was saved as.
    """
    for family in families():
        config_class = family.load("config_class")
        try:
            AutoConfig.register(config_class.model_type, config_class)
        except ValueError:  # already registered by an earlier import (e.g. importlib.reload)
            pass
        registrations = [("AutoModel", family.base_model)]
        registrations += [(get_task(task).auto_class, path) for task, path in family.task_models.items()]
        registrations += list(family.auto_classes.items())
        for auto_name, path in registrations:
            if auto_name is None:
                continue
            try:
                getattr(transformers, auto_name).register(config_class, import_object(path))
            except ValueError:
                pass
