"""Decode the API server's JSON so that a deeply nested object cannot end the operator.

The API server stores objects nested thousands of levels deep (a Workflow's `args` are
free-form, and a CRD schema cannot bound their depth). Python's C JSON decoder gives up on
them with RecursionError; inside kopf's watch that error ends the watcher, the operator
exits, and it fails again on the same object after every restart. Objects a few hundred
levels deep decode, but kopf's deep copy of them fails and kopf retries them forever.
`install` makes kopf's decoders use `shoal.core.jsonbounds.loads`, which cuts nesting
past MAX_DECODE_DEPTH, so the event arrives and validation puts just that Workflow into
phase Error.
"""

from __future__ import annotations

import types
from typing import Any

import aiohttp
from kopf._cogs.clients import api as kopf_api

from shoal.core import jsonbounds


def install() -> None:
    """Route kopf's watch-line decoder and aiohttp's response decoder through `loads`.

    kopf decodes watch lines with `json.loads` of its own module and list/patch responses
    with aiohttp's `ClientResponse.json`, whose default decoder is bound at import time;
    both are replaced here (idempotent). Decoding stays the C decoder's; the depth cut
    is one iterative pass over the result.
    """
    original = getattr(kopf_api, "json")  # noqa: B009 - kopf does not export it
    shim = types.SimpleNamespace(dumps=original.dumps, dump=original.dump)
    shim.loads = jsonbounds.loads
    setattr(kopf_api, "json", shim)  # noqa: B010
    defaults: dict[str, Any] | None = aiohttp.ClientResponse.json.__kwdefaults__
    if defaults is not None and "loads" in defaults:
        defaults["loads"] = jsonbounds.loads


def installed() -> bool:
    """Whether `install` is in effect (for the operator's self-check and tests)."""
    defaults = aiohttp.ClientResponse.json.__kwdefaults__ or {}
    decoder = getattr(getattr(kopf_api, "json"), "loads", None)  # noqa: B009
    return decoder is jsonbounds.loads and defaults.get("loads") is jsonbounds.loads
