"""Errors that reach users as one clear line instead of a traceback."""
from __future__ import annotations

import difflib


class SSLKitError(Exception):
    """A user-facing error: the CLI prints its message and exits with ``exit_code``."""

    exit_code = 1


class ConfigError(SSLKitError):
    """A recipe, override or file is wrong; ``path`` names the place (e.g. ``objectives[1].weight``)."""

    exit_code = 2

    def __init__(self, path: str, message: str):
        self.path = path
        self.message = message
        # one line on the terminal, whatever a recipe's keys or a library's message hold
        shown = repr(path) if path and not str(path).isprintable() else path
        text = f"{shown}: {message}" if path else message
        super().__init__(" ".join(line.strip() for line in text.splitlines() if line.strip()) if "\n" in text else text)


class TrainingError(SSLKitError):
    """Training cannot continue (e.g. a non-finite loss); the last good checkpoint is kept."""


class Interrupted(SSLKitError):
    """The run was stopped by a signal after writing a checkpoint; the exit code is the shell's
    ``128 + signal number`` (130 for SIGINT, 143 for SIGTERM)."""

    exit_code = 130

    def __init__(self, message: str, signum: int = 2):
        super().__init__(message)
        self.exit_code = 128 + int(signum)


def did_you_mean(word: str, choices) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest choice, or ``""``."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
