"""What the operations refuse: the caller's mistakes, which no retry fixes.

AWS's own failures are the services' (:mod:`app.services.errors`); these are the operations'.
"""


class InvalidRequestError(ValueError):
    """The caller sent something this service will never accept; retrying cannot help."""


class ItemNotFoundError(Exception):
    """No item has this id. A plain exception, not a frozen dataclass: Python itself assigns
    ``__traceback__`` (and ``__context__``...) on exceptions, and ``contextlib`` does so on the way
    out of a ``with`` block, which a frozen dataclass refuses."""

    def __init__(self, item_id: str) -> None:
        super().__init__(f"item {item_id!r} not found")
        self.item_id = item_id


class UnidentifiedCallerError(Exception):
    """A verified token that names neither a subject nor a client: no one to answer for."""

    def __init__(self) -> None:
        super().__init__("the token names neither a subject (sub) nor a client (client_id, azp)")
