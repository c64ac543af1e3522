"""Console output of management commands: each result printed once, by the command that reports it."""
import logging
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def results_printed_by_command(*logger_names: str, verbosity: int = 1) -> Iterator[None]:
    """Keep the named services' info lines off the console while a command prints the same results itself.

    A service logs what it did for the worker's log (a Celery task prints nothing); a command
    prints its own summary, so both at once would show every result twice. Warnings and errors
    still show; `--verbosity 2` shows everything.
    """
    if verbosity >= 2:
        yield
        return
    loggers = [logging.getLogger(name) for name in logger_names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logging.WARNING, logger.getEffectiveLevel()))
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
