"""Base of the wire enums: exact vendor spellings out; any letter case, .NET numbers in."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import TypeVar

_E = TypeVar("_E", bound="WireEnum")

# The .NET value of each numbered enum's first member (contract §2: Pending=1, Ok=1).
_DOTNET_FIRST: dict[type[WireEnum], int] = {}


def numbered_from(first: int) -> Callable[[type[_E]], type[_E]]:
    """Let an enum also accept the .NET integer form, counting its members from ``first``."""

    def register(cls: type[_E]) -> type[_E]:
        _DOTNET_FIRST[cls] = first
        return cls

    return register


class WireEnum(StrEnum):
    """A string enum read case-insensitively, since the service is ASP.NET (contract §2)."""

    @classmethod
    def _missing_(cls, value: object) -> WireEnum | None:
        if isinstance(value, str):
            folded = value.strip().casefold()
            for member in cls:
                if member.value.casefold() == folded:
                    return member
            if folded.isdigit():
                value = int(folded)
        first = _DOTNET_FIRST.get(cls)
        if first is not None and isinstance(value, int) and not isinstance(value, bool):
            members = list(cls)
            if 0 <= value - first < len(members):
                return members[value - first]
        return None
