"""Training: the paper's three stages (optics, decoder, end to end) as a resumable event generator."""

from .config import DataConfig, StageConfig, TrainConfig
from .events import TrainEvent
from .presets import PRESETS, get_preset, train_config
from .trainer import Trainer, TrainingError

__all__ = ["DataConfig", "PRESETS", "StageConfig", "TrainConfig", "TrainEvent", "Trainer", "TrainingError",
           "get_preset", "train_config"]
