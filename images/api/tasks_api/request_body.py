"""A request body read as strict JSON: bounded in size, UTF-8 only, no duplicate keys, no NaN, no deep nesting.

Each refusal says why, where Flask's `get_json()` answered one generic message (or a 500: nesting deeper than
Python's recursion limit) and accepted UTF-16, a byte-order mark and duplicate keys (the last one winning).
"""
import json
from typing import Any, NoReturn, Optional

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge

# A task is at most about 300 bytes of JSON (80 + 200 characters and the keys); 64 KiB leaves room for any
# client's formatting and refuses what is certainly not a task before reading it.
MAX_BODY_BYTES = 64 * 1024
EXAMPLE = '{"title": "New task", "description": "optional, up to 200 characters"}'
NEED = f"request body must be a JSON object with Content-Type: application/json, e.g. {EXAMPLE}"
# Python's int() refuses more than 4300 digits with a message about sys.set_int_max_str_digits; no field of a
# task is a number, so any number only needs to parse.
MAX_NUMBER_CHARS = 100


class BodyError(ValueError):
    """The body is not a JSON object; the message is the answer's `error`."""


def too_large_message(length: Optional[int]) -> str:
    size = f"{length} bytes" if length is not None else f"more than {MAX_BODY_BYTES} bytes (sent chunked)"
    return f"request body is {size}; at most {MAX_BODY_BYTES} bytes ({MAX_BODY_BYTES // 1024} KiB) allowed"


def _refuse(reason: str) -> NoReturn:
    raise BodyError(f"{NEED}; {reason}")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            _refuse(f"key {json.dumps(key)} appears more than once")
        obj[key] = value
    return obj


def _number(text: str, convert: type) -> Any:
    if len(text) > MAX_NUMBER_CHARS:
        _refuse(f"a number has {len(text)} characters; at most {MAX_NUMBER_CHARS} allowed")
    value = convert(text)
    if value in (float("inf"), float("-inf")):
        _refuse(f"the number {text} is out of range")
    return value


def _constant(name: str) -> NoReturn:
    _refuse(f"{name} is not JSON")


def parse(data: bytes) -> Any:
    """The JSON value of `data` (any type); BodyError when it is not strict UTF-8 JSON."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        _refuse(f"it is not UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start})")
    try:
        return json.loads(
            text,
            object_pairs_hook=_object,
            parse_int=lambda s: _number(s, int),
            parse_float=lambda s: _number(s, float),
            parse_constant=_constant,
        )
    except json.JSONDecodeError as e:
        _refuse(f"it is not valid JSON: {e}")
    except RecursionError:
        _refuse("it nests arrays or objects too deeply")


def read_object(request: Request) -> dict[str, Any]:
    """The request's JSON object; BodyError (400) or RequestEntityTooLarge (413) otherwise."""
    if not request.is_json:
        given = request.headers.get("Content-Type")
        _refuse(f"the request's Content-Type is {given!r}" if given else "the request has no Content-Type")
    charset = request.mimetype_params.get("charset")
    if charset is not None and charset.lower().replace("-", "") != "utf8":
        _refuse(f"the charset is {charset!r}; JSON is UTF-8")
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise RequestEntityTooLarge()
    # Chunked bodies have no Content-Length: read one byte past the limit to know. (Flask's MAX_CONTENT_LENGTH is
    # not set: Werkzeug 3 would cut such a body at the limit itself, so that the extra byte never comes.)
    data = request.stream.read(MAX_BODY_BYTES + 1)
    if len(data) > MAX_BODY_BYTES:
        raise RequestEntityTooLarge()
    if not data.strip():
        _refuse("the body is empty")
    value = parse(data)
    if not isinstance(value, dict):
        _refuse(f"it is {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "a number"
    return json.dumps(value)
