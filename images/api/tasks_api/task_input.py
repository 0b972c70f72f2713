"""The fields of a new task, checked against the columns they go into."""
from typing import Any, Optional

from .models import Task

TITLE_MAX = Task.__table__.c.title.type.length
DESCRIPTION_MAX = Task.__table__.c.description.type.length
FIELDS = ("title", "description")
# An error names at most this many unknown fields: a 64 KiB body can hold thousands.
NAMED_MAX = 5


def text_problem(name: str, value: str) -> Optional[str]:
    """Why PostgreSQL cannot store `value` as text, or None.

    JSON can carry both: "\\u0000" (PostgreSQL's text type has no NUL) and a lone UTF-16 surrogate such as
    "\\ud800" (not a Unicode scalar value, so it has no UTF-8 encoding).
    """
    at = value.find("\x00")
    if at >= 0:
        return f"'{name}' contains a NUL character (\\u0000) at position {at}; PostgreSQL text cannot store it"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        return (
            f"'{name}' contains a lone UTF-16 surrogate (\\u{ord(value[e.start]):04x}) at position {e.start}; "
            "only Unicode characters are allowed (a surrogate must be half of a pair)"
        )
    return None


def validate_task(body: dict[str, Any]) -> tuple[Optional[dict[str, Optional[str]]], Optional[str]]:
    """The fields of a new task, or the reason the JSON object is not one."""
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        named = ", ".join(unknown[:NAMED_MAX]) + (f" and {len(unknown) - NAMED_MAX} more" if len(unknown) > NAMED_MAX else "")
        return None, f"unknown field(s): {named}; allowed: {', '.join(FIELDS)}"
    title = body.get("title")
    if not isinstance(title, str) or not title.strip():
        return None, "'title' is required and must be a non-empty string"
    if len(title) > TITLE_MAX:
        return None, f"'title' is {len(title)} characters; at most {TITLE_MAX} allowed"
    description = body.get("description")
    if description is not None and not isinstance(description, str):
        return None, "'description' must be a string or null"
    if description is not None and len(description) > DESCRIPTION_MAX:
        return None, f"'description' is {len(description)} characters; at most {DESCRIPTION_MAX} allowed"
    for name, value in (("title", title), ("description", description)):
        problem = value is not None and text_problem(name, value)
        if problem:
            return None, problem
    return {"title": title, "description": description}, None
