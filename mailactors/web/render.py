"""jinja2 templates of the admin pages, autoescaped, loaded from the package."""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2

__all__ = ["render"]


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("mailactors.web", "templates"),
        # Every value is HTML-escaped unless a template says otherwise (none does).
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, values: dict[str, Any]) -> str:
    """The page `template` filled with `values`."""
    return _environment().get_template(template).render(values)
