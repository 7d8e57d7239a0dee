"""The portal's two languages: German and English, one message catalog
(``templates/portal/messages.toml``, a table per language with the same keys).

The language is the one the partner chose with the switch (a cookie), else the first of the
browser's Accept-Language that we speak, else German.
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib import resources
from typing import Callable

LANGUAGES = ("de", "en")
DEFAULT = "de"


@lru_cache(maxsize=1)
def catalog() -> dict[str, dict[str, str]]:
    """Every message per language, read once from the templates root."""
    text = resources.files("templates.portal").joinpath("messages.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def negotiate(chosen: str | None, accept_language: str | None) -> str:
    """The language to answer in: ``chosen`` (the switch's cookie) when we speak it, else the
    best of ``accept_language`` by its q-values, else German."""
    if chosen in LANGUAGES:
        return chosen
    ranked = []
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        ranked.append((-q, i, tag.strip().lower().split("-")[0]))
    for negative_q, _, lang in sorted(ranked):
        if negative_q < 0 and lang in LANGUAGES:
            return lang
    return DEFAULT


def translator(lang: str) -> Callable[..., str]:
    """``t(key, **values)``: the message ``key`` in ``lang`` with ``{values}`` filled in; an
    unknown key comes back as itself (tests/integration/test_portal_auth.py checks the catalog)."""
    messages = catalog()[lang]

    def t(key: str, **values) -> str:
        text = messages.get(key, key)
        return text.format(**values) if values else text

    return t
