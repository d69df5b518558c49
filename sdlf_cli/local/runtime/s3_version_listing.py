"""moto's ListObjectVersions without copying every object's bytes.

moto 5.2.5 answers ListObjectVersions by deep-copying every version of every key in the bucket (to mark the
copies IsLatest), and a deep copy of an object writes its whole content into a new buffer (past moto's
buffer size, a file on disk). A listing of a bucket holding a 50 MB object copied 50 MB, and `sdlf audit`
lists the lake's buckets over and over: in the hostile-corpus suite these copies were ~15 % of the
emulator's process. The answer only reads the versions' metadata (key, version id, ETag, size, date, class).

Named patch (`sdlf_cli.local.cfn._patching`), same answers as moto's: while moto's list_object_versions
runs in a thread, a deep copy of an object version is a view of its metadata (its ETag worked out first,
under the object's lock) that shares the content instead of copying it; every other deep copy of an object
(CopyObject, a saved state, another thread) copies its bytes as before.
"""
from __future__ import annotations

import copy
import threading
from typing import Any

LISTING_PATCH = "s3: ListObjectVersions marks views of the versions as latest, not copies of their bytes"
VIEW_PATCH = "s3: an object version copied for ListObjectVersions is a view of its metadata"

_listing = threading.local()


def _listing_views(original: Any) -> Any:
    def list_object_versions(self: Any, *args: Any, **kwargs: Any) -> Any:
        _listing.active = True
        try:
            return original(self, *args, **kwargs)
        finally:
            _listing.active = False

    return list_object_versions


_views: dict[type, type] = {}


def _view_type(key_type: type) -> type:
    """A FakeKey whose content belongs to the version it views: letting it go never closes the shared buffer
    (moto closes a key's buffer when the key is garbage-collected)."""
    view_type = _views.get(key_type)
    if view_type is None:
        def dispose(self: Any, garbage: bool = False) -> None:
            self.disposed = True

        view_type = _views[key_type] = type(f"{key_type.__name__}View", (key_type,), {
            "dispose": dispose, "__del__": lambda self: None, "__module__": __name__})
    return view_type


def _view_while_listing(original: Any) -> Any:
    def __deepcopy__(self: Any, memo: dict) -> Any:
        if not getattr(_listing, "active", False):
            # What copy.deepcopy does for an object without __deepcopy__ (moto's FakeKey has none).
            return copy._reconstruct(self, memo, *self.__reduce_ex__(4))  # type: ignore[attr-defined]
        with self.lock:
            self.etag  # noqa: B018 - worked out from the content now, so the view never reads it
        view = object.__new__(_view_type(type(self)))
        view.__dict__.update(self.__dict__)
        memo[id(self)] = view
        return view

    return __deepcopy__


def install() -> None:
    from moto.s3.models import FakeKey, S3Backend

    from sdlf_cli.local.cfn import _patching

    _patching.wrap(FakeKey, "__deepcopy__", VIEW_PATCH, _view_while_listing)
    _patching.wrap(S3Backend, "list_object_versions", LISTING_PATCH, _listing_views)


def uninstall() -> None:
    from sdlf_cli.local.cfn import _patching

    _patching.uninstall(LISTING_PATCH)
    _patching.uninstall(VIEW_PATCH)
