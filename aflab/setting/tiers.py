"""The two contexts of the setting: the free tier (told it is trained on) and the paid tier.

Defined here, at the bottom of the setting, so records and prompts both name tiers without
importing each other.
"""

from __future__ import annotations

from typing import Literal

Tier = Literal["free", "paid"]
TIERS: tuple[Tier, Tier] = ("free", "paid")
