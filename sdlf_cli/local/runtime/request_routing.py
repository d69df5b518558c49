"""moto's server finds the backend of every request once per host name, not once per request.

`DomainDispatcherApplication.get_backend_for_host` lists moto's package directory (an `isdir` system call
per service, ~170) and then tries every service's URL patterns in turn - for every request, under the
dispatcher's one global lock, so all the server's request threads queue behind it. Its answer depends
only on the host name (the directory and the patterns never change while the server runs), so one named
patch remembers it per host name.

Then every request lists the action methods of its response class (`method_names_from_class`, an
`inspect.getmembers` over the class and its bases, ~200 attributes) to check that the action is one of
them. A class's methods do not change while the server runs either: a second named patch lists them once
per class.
"""
from __future__ import annotations

from typing import Any, Callable

from sdlf_cli.local.runtime.bounded_memo import BoundedMemo

PATCH_NAME = "server: the backend serving a host name is looked up once per host name"
METHODS_PATCH = "server: a response class's action methods are listed once per class"
MAX_HOSTS = 1024  # host names are service endpoints and bucket names; a bound all the same

def _remembered(original: Callable) -> Callable:
    answers = BoundedMemo(MAX_HOSTS)

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        return answers.get(host, lambda: original(self, host))

    return get_backend_for_host


def _listed_once(original: Callable) -> Callable:
    listed: dict[Any, list[str]] = {}

    def method_names_from_class(clazz: Any) -> list[str]:
        names = listed.get(clazz)
        if names is None:
            names = listed[clazz] = original(clazz)
        return list(names)  # callers get their own list, as from moto

    return method_names_from_class


def install() -> None:
    from moto.core import responses
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    from sdlf_cli.local.cfn import _patching

    _patching.wrap(DomainDispatcherApplication, "get_backend_for_host", PATCH_NAME, _remembered)
    _patching.wrap(responses, "method_names_from_class", METHODS_PATCH, _listed_once)


def uninstall() -> None:
    from sdlf_cli.local.cfn import _patching

    _patching.uninstall(METHODS_PATCH)
    _patching.uninstall(PATCH_NAME)
