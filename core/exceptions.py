"""API errors: Django's ValidationError from a service becomes a 400 with a message per field."""

import re

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler


def camel_case(name: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name)


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            detail = {
                ("nonFieldErrors" if field == "__all__" else camel_case(field)): messages
                for field, messages in exc.message_dict.items()
            }
        else:
            detail = {"nonFieldErrors": exc.messages}
        exc = exceptions.ValidationError(detail)
    return drf_exception_handler(exc, context)
