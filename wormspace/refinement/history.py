"""Compatibility alias: the history recorder and format live in ``wormspace.history`` (runtime code records
histories without importing the checkers). New code imports from there."""

from wormspace.history import *  # noqa: F403
from wormspace.history import __all__  # noqa: F401
