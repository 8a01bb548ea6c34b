"""The API's JSON parser: orjson, which refuses what the database cannot store.

Python's json module accepts lone surrogates ("\\ud800"), which PostgreSQL
then refuses to encode (a 500 on any text field), and nests as deep as the
stack allows; orjson rejects both. Numbers beyond 64 bits (which orjson
reads as floats) are refused here too: no field takes one, and an integer
field would pass it on to overflow the database.
"""

from __future__ import annotations

from typing import Any

import orjson
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser


class JSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = orjson.loads(stream.read())
        except orjson.JSONDecodeError as e:
            raise ParseError(f"JSON parse error: {e}") from None
        _numbers_check(data)
        return data


_LIMIT = 2**63


def _numbers_check(data: Any) -> None:
    pending = [data]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, int | float) and not isinstance(value, bool) and not -_LIMIT < value < _LIMIT:
            raise ParseError("JSON parse error: a number is out of range (more than 64 bits).")
