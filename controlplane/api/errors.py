from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Services raise Django's ValidationError; the API answers 400 with its messages."""
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        exc = exceptions.ValidationError(detail=detail)
    elif isinstance(exc, OverflowError | DataError):
        # A number past what the column holds (SQLite raises OverflowError,
        # PostgreSQL DataError): the request's fault, not the server's.
        exc = exceptions.ValidationError(detail={"detail": ["A value is out of range."]})
    return drf_exception_handler(exc, context)
