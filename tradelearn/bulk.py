"""Leaner bulk writes for the hot paths (a replay's books, stored outcomes, aggregates).

Django's bulk_create prepares every value through each field's full conversion chain and
builds a fresh statement per batch; at tens of thousands of rows a minute that was most of
a replay's time. These do the same SQL with values prepared by one converter per column,
chosen once: plain numbers and strings go to the driver as they are (what the ORM ends up
sending for them), dates and decimals through the backend's adapters, anything else through
the field itself. They skip save() and signals, like bulk_create.
"""
from collections.abc import Callable, Iterable, Sequence

from django.db import connection, models

# Field kinds whose values the ORM passes to the driver unchanged when they already have the right type.
_MAX_BATCH = 1000
_PLAIN = (models.CharField, models.TextField, models.IntegerField, models.FloatField, models.BooleanField)


def _converter(field: models.Field) -> Callable | None:
    """How to prepare one column's value for the driver; None when it goes as it is."""
    if field.is_relation or isinstance(field, _PLAIN):
        return None
    ops = connection.ops
    if isinstance(field, models.DecimalField):
        return lambda value: None if value is None else ops.adapt_decimalfield_value(value, field.max_digits, field.decimal_places)
    if isinstance(field, models.DateTimeField):
        return ops.adapt_datetimefield_value
    return lambda value: field.get_db_prep_save(value, connection)


def _columns(model: type[models.Model], names: Sequence[str] | None = None) -> list[models.Field]:
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    return fields if names is None else [model._meta.get_field(name) for name in names]


def bulk_insert(model: type[models.Model], objs: Sequence[models.Model]) -> None:
    """INSERT `objs` (unsaved instances) in batches, setting each one's primary key, like bulk_create."""
    if not objs:
        return
    fields = _columns(model)
    stamped = [field for field in fields if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)]
    converters = [_converter(field) for field in fields]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    row_marks = "(" + ", ".join(["%s"] * len(fields)) + ")"
    batch = max(1, min(_MAX_BATCH, connection.ops.bulk_batch_size(fields, objs)))
    table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
    with connection.cursor() as cursor:
        for start in range(0, len(objs), batch):
            chunk = objs[start : start + batch]
            params = [_row(obj, fields, converters, stamped) for obj in chunk]
            if connection.vendor == "postgresql" and len(chunk) > 1:
                # One array per column, as Django's own bulk_create does there: the statement stays
                # short, however many rows, so psycopg and the planner see it once.
                unnest = ", ".join(f"(%s)::{field.db_type(connection).split('(')[0]}[]" for field in fields)
                cursor.execute(
                    f"INSERT INTO {table} ({columns}) SELECT * FROM UNNEST({unnest}) RETURNING {pk}",
                    [list(column) for column in zip(*params)],
                )
            else:
                sql = f"INSERT INTO {table} ({columns}) VALUES {', '.join([row_marks] * len(chunk))} RETURNING {pk}"
                cursor.execute(sql, [value for row in params for value in row])
            pks = [row[0] for row in cursor.fetchall()]
            for obj, key in zip(chunk, pks, strict=True):
                obj.pk = key
                obj._state.adding, obj._state.db = False, connection.alias


def _row(obj: models.Model, fields: list[models.Field], converters: list, stamped: list[models.Field]) -> list:
    obj._prepare_related_fields_for_save(operation_name="bulk_insert")
    for field in stamped:
        field.pre_save(obj, add=True)
    return [
        value if convert is None else convert(value)
        for value, convert in ((getattr(obj, field.attname), convert) for field, convert in zip(fields, converters))
    ]


def bulk_update_rows(model: type[models.Model], objs: Iterable[models.Model], names: Sequence[str]) -> None:
    """UPDATE the named columns of saved instances: one prepared statement sent for all rows.

    bulk_update() builds a CASE expression per column per row, and compiling that cost more
    than the update itself.
    """
    fields = _columns(model, names)
    converters = [_converter(field) for field in fields]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    sql = f"UPDATE {quote(model._meta.db_table)} SET {assignments} WHERE {quote(model._meta.pk.column)} = %s"
    params = [
        [
            value if convert is None else convert(value)
            for value, convert in ((getattr(obj, field.attname), convert) for field, convert in zip(fields, converters))
        ]
        + [obj.pk]
        for obj in objs
    ]
    if params:
        with connection.cursor() as cursor:
            cursor.executemany(sql, params)
