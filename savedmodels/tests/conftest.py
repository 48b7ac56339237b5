"""Puts savedmodels/ on sys.path so the tests import atelier_train as the commands do."""

import os
import sys

SAVEDMODELS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if SAVEDMODELS not in sys.path:
    sys.path.insert(0, SAVEDMODELS)
