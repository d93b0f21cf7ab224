"""A small named registry shared by algorithms and verifiers.

Entries come from decorators in this process and from installed entry points
(group given at construction), loaded lazily on first lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from rlvr.errors import unknown

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, entry_point_group: str) -> None:
        self.kind = kind
        self.group = entry_point_group
        self._items: dict[str, T] = {}
        self._plugins_loaded = False

    def register(self, name: str, item: T, *, override: bool = False) -> T:
        if name in self._items and not override and self._items[name] is not item:
            raise ValueError(f"{self.kind} '{name}' is already registered; pass override=True to replace it")
        self._items[name] = item
        return item

    def decorator(self, name: str, **kw: bool) -> Callable[[T], T]:
        def wrap(item: T) -> T:
            return self.register(name, item, **kw)

        return wrap

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in entry_points(group=self.group):
            if ep.name not in self._items:
                # Loading the module registers it through its decorator; a bare object is registered here.
                obj = ep.load()
                if ep.name not in self._items:
                    self._items[ep.name] = obj

    def get(self, name: str) -> T:
        if name not in self._items:
            self._load_plugins()
        if name not in self._items:
            raise unknown(self.kind, name, self._items)
        return self._items[name]

    def available(self) -> list[str]:
        self._load_plugins()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.available())
