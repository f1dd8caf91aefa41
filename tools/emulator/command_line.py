"""How the emulator's commands talk and end: one line per message, a status, no stray traceback.

Every command (``make invoke``, ``make aws``, ``make sam-local``, ...) reports a wrong input as one
line and status 2, Ctrl-C as 130, and anything else as one ``internal error`` line and status 1
unless ``--debug`` asks for the traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from tools.emulator.invoke_inputs import InputError


def say(program: str, message: str) -> None:
    print(f"{program}: {message}", file=sys.stderr, flush=True)


def run_command(program: str, command: Callable[[], int], *, debug: bool = False) -> int:
    try:
        return command()
    except InputError as error:
        say(program, str(error))
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        if debug:
            raise
        say(
            program,
            f"internal error: {type(error).__name__}: {error} (--debug shows the traceback)",
        )
        return 1
