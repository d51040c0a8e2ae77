"""AlphaZero training: batched self-play, the device replay buffer, the learner, the compiled
phases (`trainer`) and the resumable loop over iterations (`loop.run`).

    stats = loop.run(config)       # trains, resuming from the run directory
"""

from cartridge_jax.training import learner, loop, replay, selfplay, trainer
from cartridge_jax.training.loop import TrainingError, run
from cartridge_jax.training.trainer import RunState, Trainer, selfplay_phase, train_phase

__all__ = ["RunState", "Trainer", "TrainingError", "learner", "loop", "replay", "run",
           "selfplay", "selfplay_phase", "train_phase", "trainer"]
