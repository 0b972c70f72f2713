"""Pages of `GET /tasks`: keyset pagination on the primary key, so every page costs one index range scan.

`?after=<id>` starts after that task (the last id of the previous page), `?limit=<n>` sets the page size. The next
page's address is in the body's `next` and in an RFC 8288 `Link: <…>; rel="next"` header, and only when there is
one: a table smaller than a page answers exactly `{"tasks": [...]}`, as before pagination.
"""
import re
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence
from urllib.parse import urlencode

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# task.id is an INTEGER (int4).
MAX_ID = 2**31 - 1
PARAMETERS = ("after", "limit")
# Strict: int() would also take " 7", "+7", "7_0" and other scripts' digits.
_DIGITS = re.compile(r"[0-9]{1,10}")
# Values echoed in an error are cut to this many characters.
_ECHO_MAX = 40


@dataclass(frozen=True)
class Page:
    after: int
    limit: int
    # Whether the request named a limit, so the next page's address keeps it.
    explicit_limit: bool

    def next_url(self, path: str, last_id: int) -> str:
        query = {"after": last_id, **({"limit": self.limit} if self.explicit_limit else {})}
        return f"{path}?{urlencode(query)}"


def echo(value: str) -> str:
    """`value` quoted for an error message, cut if long."""
    return repr(value if len(value) <= _ECHO_MAX else value[:_ECHO_MAX] + "…")


def integer(text: str, low: int, high: int) -> Optional[int]:
    """The integer `text` spells in plain decimal digits, if it is from low to high."""
    if not _DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if low <= value <= high else None


def parse_page(args: Mapping[str, Sequence[str]]) -> tuple[Optional[Page], Optional[str]]:
    """The page a query string asks for (`args`: each name's values, as Werkzeug's MultiDict.to_dict(flat=False)),
    or the reason it is not one."""
    unknown = sorted(set(args) - set(PARAMETERS))
    if unknown:
        return None, f"unknown query parameter(s): {', '.join(unknown)}; allowed: {', '.join(PARAMETERS)}"
    for name, values in args.items():
        if len(values) > 1:
            return None, f"'{name}' is given {len(values)} times; give it once"
    limit = integer(args["limit"][0], 1, MAX_LIMIT) if "limit" in args else DEFAULT_LIMIT
    if limit is None:
        return None, f"'limit' is {echo(args['limit'][0])}; allowed: an integer from 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})"
    after = integer(args["after"][0], 0, MAX_ID) if "after" in args else 0
    if after is None:
        return None, f"'after' is {echo(args['after'][0])}; allowed: an integer from 0 to {MAX_ID}, the last id of the previous page"
    return Page(after=after, limit=limit, explicit_limit="limit" in args), None


def parse_task_id(text: str) -> tuple[Optional[int], Optional[str]]:
    """The id in `/tasks/<id>`, or the reason it is not one."""
    task_id = integer(text, 1, MAX_ID)
    if task_id is None:
        return None, f"task id {echo(text)} is not valid; allowed: an integer from 1 to {MAX_ID}"
    return task_id, None
