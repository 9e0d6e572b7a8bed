"""``torch.hub`` entry points: one per catalog name, plus ``create_model`` and ``list_models``.

```python
import torch
model = torch.hub.load("<this repo or its directory>", "4ds-b-dist-e", pretrained=True)
torch.hub.list("<this repo>")  # every catalog name
```

Each entry point is :func:`fourd_hub.create_model` of its name (``pretrained=False`` by default,
as timm; ``pretrained=True`` downloads and converts the released file once).
"""

from fourd_hub import create_model, list_models
from fourd_hub.catalog import CATALOG

dependencies = ["torch", "transformers", "huggingface_hub", "safetensors", "numpy"]


def _entry_point(name: str):
    def load(pretrained: bool = False, **kwargs):
        return create_model(name, pretrained=pretrained, **kwargs)

    load.__name__ = name
    load.__doc__ = f"{CATALOG[name].description}: fourd_hub.create_model({name!r}, pretrained=..., **kwargs)."
    return load


# Catalog names contain hyphens ("4ds-b-dist-e"): torch.hub looks entry points up with getattr,
# which any string serves, so they are set by name.
for _name in CATALOG:
    globals()[_name] = _entry_point(_name)

__all__ = ["create_model", "list_models", *CATALOG]
