"""Item and user ID schemes: random, sequential (leak-free), collaborative and semantic."""

from p5rec.ids.config import IdConfig
from p5rec.ids.index import ItemIndex, UserIndex, render_id
from p5rec.ids.semantic import item_texts

__all__ = ["IdConfig", "ItemIndex", "UserIndex", "item_texts", "render_id"]
