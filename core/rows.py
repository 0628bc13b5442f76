"""Model instances from SQL written once, without `Model.objects.raw`'s work on every query.

A `RawQuerySet` works out, each time it runs, which column is which field, the order to build
the instance in and each column's converters; on the statements that run for every delivery
that cost more than the query. `instances` does the same once per statement shape (model,
columns, database) and keeps it. The instances are what `raw()` gives: every field set from
its column through the same converters (`from_db_value`, the backend's), and any other
column (a computed one, e.g. `... RETURNING *, x AS busy`) set as an attribute.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from django.db import DatabaseError, connections, transaction
from django.db.models import Model

M = TypeVar("M", bound=Model)

_builders: dict[tuple, Callable[[Sequence[Any]], Model]] = {}


def instances(
    model: type[M], sql: str, params: Sequence[Any], *, using: str = "default"
) -> list[M]:
    """The rows of `sql` as instances of `model` (its table's columns by name, as `raw()`)."""
    connection = connections[using]
    adapt = connection.ops.adapt_unknown_value  # as raw() does (SQLite: datetimes as text)
    with connection.cursor() as cursor:
        cursor.execute(sql, [adapt(param) for param in params])
        columns = tuple(column[0] for column in cursor.description)
        rows = cursor.fetchall()
    if not rows:
        return []
    key = (model, columns, using, connection.vendor)
    build = _builders.get(key)
    if build is None:
        build = _builders[key] = _builder(model, columns, using)
    return [build(row) for row in rows]


def _builder(model: type[Model], columns: tuple[str, ...], using: str) -> Callable:
    connection = connections[using]
    by_column = {field.column: field for field in model._meta.concrete_fields}
    fields = model._meta.concrete_fields
    missing = [f.column for f in fields if f.column not in columns]
    if missing:
        raise ValueError(f"{model.__name__}: the SQL returns no {', '.join(missing)}")
    at: dict[str, int] = {}
    for i, name in enumerate(columns):
        at.setdefault(name, i)  # a name given twice: its first column, as raw()
    order = [at[field.column] for field in fields]  # the model's field order
    attnames = [field.attname for field in fields]
    extras = [(i, name) for i, name in enumerate(columns) if name not in by_column]
    converters = []
    for i, field in zip(order, fields, strict=True):
        expression = field.get_col(model._meta.db_table)
        found = connection.ops.get_db_converters(expression) + field.get_db_converters(connection)
        if found:
            converters.append((i, expression, found))

    def build(row: Sequence[Any]) -> Model:
        if converters:
            row = list(row)
            for i, expression, functions in converters:
                value = row[i]
                for convert in functions:
                    value = convert(value, expression, connection)
                row[i] = value
        instance = model.from_db(using, attnames, [row[i] for i in order])
        for i, name in extras:
            setattr(instance, name, row[i])
        return instance

    return build


_updates: dict[tuple, tuple[str, list]] = {}


def save_fields(instance: Model, *names: str, using: str = "default") -> None:
    """`instance.save(update_fields=names)` with the `UPDATE` written once per (model, fields,
    database): the same values (each field's `pre_save`, e.g. `auto_now`, then its
    `get_db_prep_save`), the same error when no row was updated. Sends no signals: for
    models none listens to."""
    model = type(instance)
    connection = connections[using]
    key = (model, names, using, connection.vendor)
    found = _updates.get(key)
    if found is None:
        fields = [model._meta.get_field(name) for name in names]
        assignments = ", ".join(f"{connection.ops.quote_name(f.column)} = %s" for f in fields)
        table = connection.ops.quote_name(model._meta.db_table)
        pk = connection.ops.quote_name(model._meta.pk.column)
        sql = f"UPDATE {table} SET {assignments} WHERE {pk} = %s"  # noqa: S608
        found = _updates[key] = (sql, fields)
    sql, fields = found
    values = [f.get_db_prep_save(f.pre_save(instance, False), connection) for f in fields]
    # As save(): an error inside an atomic block marks it for rollback.
    with transaction.mark_for_rollback_on_error(using), connection.cursor() as cursor:
        cursor.execute(sql, [*values, instance.pk])
        updated = cursor.rowcount
    if not updated:
        raise DatabaseError("Save with update_fields did not affect any rows.")
