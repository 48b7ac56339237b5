"""Training progress that reads well both in a terminal and in a CI log."""

import sys
import time

import keras


def verbosity():
    """Keras verbosity: a live progress bar on a terminal, one line per epoch otherwise."""
    return 1 if sys.stdout.isatty() else 2


class EpochLog(keras.callbacks.Callback):
    """Prints one line per epoch with elapsed time and an estimate of the time left."""

    def __init__(self, name, epochs):
        super().__init__()
        self.name, self.epochs, self.start = name, epochs, time.time()

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        spent = time.time() - self.start
        left = spent / done * (self.epochs - done)
        metrics = " ".join(f"{k}={v:.4f}" for k, v in sorted((logs or {}).items())
                           if isinstance(v, (int, float)))
        print(f"[{self.name}] epoch {done}/{self.epochs} {metrics} "
              f"elapsed {spent:.0f}s eta {left:.0f}s", flush=True)
