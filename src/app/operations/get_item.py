"""Read one item, whoever asked: a missing item is the caller's answer, not ``None``."""

from typing import TYPE_CHECKING

from app.operations.errors import ItemNotFoundError

# Types only: app.operations imports this module at once, for every function's init.
if TYPE_CHECKING:
    from app.services import Item, ItemsTable


def get_item(item_id: str, *, items: "ItemsTable") -> "Item":
    """The item ``item_id`` (already validated), read with the function's own session."""
    item = items.get(item_id)
    if item is None:
        raise ItemNotFoundError(item_id)
    return item
