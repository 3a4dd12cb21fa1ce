"""Model registry: `MODELS.create(name, **kwargs)` builds a fresh, untrained nn.Module.

Importing this package registers every model module, so `MODELS.names()` is complete.
"""
from models.registry import MODELS, build_model  # noqa: F401
from models import mlp  # noqa: F401  (registers the tabular nets)
from models import vision  # noqa: F401  (registers the image nets)
from models import tabm  # noqa: F401  (registers TabM, the k-member ensemble MLP)
