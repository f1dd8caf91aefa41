"""What one invocation may spend: its AWS calls share the time Lambda gives it."""

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar, cast

from aws_lambda_powertools.utilities.typing import LambdaContext

from app.sessions import deadline

P = ParamSpec("P")
R = TypeVar("R")


def within_remaining_time(handle: Callable[P, R]) -> Callable[P, R]:
    """Bound every AWS call of ``handle(event, context, ...)`` by what is left of the timeout."""

    @functools.wraps(handle)
    def bounded(*args: P.args, **kwargs: P.kwargs) -> R:
        context = cast(LambdaContext, args[1])
        deadline.start(context.get_remaining_time_in_millis() / 1000)
        try:
            return handle(*args, **kwargs)
        finally:
            deadline.clear()

    return bounded
