from django.db import models

from . import crypto


class EncryptedTextField(models.TextField):
    """A text column whose value is encrypted in the database and plain in Python.

    The empty string stays empty (an unset secret), so "is it set?" needs no decryption.
    Encrypted values cannot be filtered on; look rows up by another key.
    """

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return value
        return crypto.decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        return crypto.encrypt(value)
