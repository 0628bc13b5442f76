"""API errors: Django's ValidationError from a service becomes a 400 with a message per field,
under the API's own field names (the view's serializer says which model field each names)."""

import re

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler


def camel_case(name: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name)


def _api_names(view) -> dict[str, str]:
    """Model field -> API field name, from the view's serializer (`id` for `public_id`)."""
    serializer_class = getattr(view, "serializer_class", None)
    if serializer_class is None:
        return {}
    return {field.source: name for name, field in serializer_class().fields.items()}


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            names = _api_names(context.get("view"))
            detail = {
                (
                    "nonFieldErrors"
                    if field == "__all__"
                    else names.get(field) or camel_case(field)
                ): messages
                for field, messages in exc.message_dict.items()
            }
        else:
            detail = {"nonFieldErrors": exc.messages}
        exc = exceptions.ValidationError(detail)
    return drf_exception_handler(exc, context)
