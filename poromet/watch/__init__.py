"""The watch-folder service: measure SEM images as they arrive in a folder.

See :mod:`poromet.watch.service` (the service), :mod:`poromet.watch.journal`
(the SQLite journal) and :mod:`poromet.watch.stability` (when a file is
ready).  watchdog is imported only when the service starts.
"""

__all__ = ["WatchConfig", "WatchService", "Journal"]


def __getattr__(name: str):
    if name in ("WatchConfig", "WatchService"):
        from . import service

        return getattr(service, name)
    if name == "Journal":
        from .journal import Journal

        return Journal
    raise AttributeError(f"module 'poromet.watch' has no attribute {name!r}")
