from django.apps import apps
from django.db import connection, models, transaction

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


@transaction.atomic
def reencrypt_all() -> dict[str, int]:
    """Re-encrypt every stored encrypted value with the first key of FIELD_ENCRYPTION_KEYS.

    Values already under the first key are left alone, so a second run changes nothing.
    All or nothing: a value no key can read raises ValueError and nothing is changed.
    Each row is rewritten only if it still holds the value read (a concurrent save wins).
    """
    counts = {"reencrypted": 0, "current": 0}
    quote = connection.ops.quote_name
    for model in apps.get_models():
        columns = [
            f.column for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)
        ]
        if not columns:
            continue
        table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
        with connection.cursor() as cursor:
            # Identifiers come from the model's metadata; values are bound parameters.
            cursor.execute(f"SELECT {pk}, {', '.join(map(quote, columns))} FROM {table}")  # noqa: S608
            rows = cursor.fetchall()
        for row_id, *values in rows:
            for column, stored in zip(columns, values, strict=True):
                if not stored:
                    continue
                if crypto.is_current(stored):
                    counts["current"] += 1
                    continue
                with connection.cursor() as cursor:
                    cursor.execute(
                        f"UPDATE {table} SET {quote(column)} = %s"  # noqa: S608
                        f" WHERE {pk} = %s AND {quote(column)} = %s",
                        [crypto.reencrypt(stored), row_id, stored],
                    )
                counts["reencrypted"] += 1
    return counts
