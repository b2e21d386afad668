"""vidcls: fine-tune, evaluate and run video classifiers on your own labelled videos."""

from vidcls.config import ClipSpec
from vidcls.engine.evaluate import evaluate
from vidcls.engine.predict import Predictor
from vidcls.engine.train import DataArguments, ModelArguments, train
from vidcls.errors import ConfigError, DatasetError, DecodeError, VidclsError

__version__ = "0.1.0"
__all__ = [
    "ClipSpec",
    "ConfigError",
    "DataArguments",
    "DatasetError",
    "DecodeError",
    "ModelArguments",
    "Predictor",
    "VidclsError",
    "evaluate",
    "train",
]
