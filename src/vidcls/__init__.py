"""vidcls: fine-tune, evaluate and run video classifiers on your own labelled videos.

The public names below load on first use, so ``vidcls check`` and friends start without importing torch.
"""

import importlib

from vidcls.errors import ConfigError, DatasetError, DecodeError, VidclsError

__version__ = "0.1.0"

# Public name -> module that defines it.
_LAZY = {
    "ClipSpec": "vidcls.config",
    "EvalViews": "vidcls.config",
    "DataArguments": "vidcls.engine.arguments",
    "ModelArguments": "vidcls.engine.arguments",
    "OutputArguments": "vidcls.engine.arguments",
    "RecipeArguments": "vidcls.engine.arguments",
    "guide_training_defaults": "vidcls.engine.arguments",
    "Predictor": "vidcls.engine.predict",
    "RayEngine": "vidcls.engine.ray_engine",
    "evaluate": "vidcls.engine.evaluate",
    "train": "vidcls.engine.train",
}
__all__ = [*_LAZY, "ConfigError", "DatasetError", "DecodeError", "VidclsError"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vidcls' has no attribute {name!r}")
