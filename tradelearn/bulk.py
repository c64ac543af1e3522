"""Leaner bulk writes for the hot paths (a replay's books, stored outcomes, aggregates).

Django's bulk_create prepares every value through each field's full conversion chain and
builds a fresh statement per batch; at tens of thousands of rows a minute that was most of
a replay's time. These write the same rows with values prepared one column at a time by a
converter chosen once: plain numbers and strings go to the driver as they are (what the ORM
ends up sending for them), the common cases of decimals, datetimes and JSON by a short cut
to the value the field itself would produce, anything else through the field. On PostgreSQL
many rows go in by COPY. They skip save() and signals, like bulk_create.
"""
import json
from array import array
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from itertools import chain
from operator import attrgetter

from django.conf import settings
from django.db import connection, models

_MAX_BATCH = 1000
# Field kinds whose values the ORM passes to the driver unchanged when they already have the right type.
_PLAIN = (models.CharField, models.TextField, models.IntegerField, models.FloatField, models.BooleanField)


def _converter(field: models.Field, db=connection) -> Callable | None:
    """How to prepare one column's value for the driver, as `field.get_db_prep_save` does; None when it goes as it is."""
    if field.is_relation or isinstance(field, _PLAIN):
        return None

    def prepared(value):
        return field.get_db_prep_save(value, db)

    if isinstance(field, models.JSONField) and field.encoder is None:
        # Django hands PostgreSQL a Jsonb of the value, which psycopg sends as this same text.
        return lambda value: _json_text(value) if value is not None else None
    if isinstance(field, models.DecimalField):
        # The field would copy a Decimal and neither backend adapts it further.
        return lambda value: value if value is None or type(value) is Decimal else prepared(value)
    if isinstance(field, models.DateTimeField) and db.vendor in ("sqlite", "postgresql") and settings.USE_TZ:
        if db.vendor == "postgresql":  # psycopg takes aware datetimes as they are
            return lambda value: value if type(value) is datetime and value.utcoffset() is not None else prepared(value)
        zone = db.timezone  # SQLite stores the naive time in the connection's zone, as text
        return lambda value: (
            str(value.astimezone(zone).replace(tzinfo=None))
            if type(value) is datetime and value.utcoffset() is not None
            else prepared(value)
        )
    return prepared


def _json_text(value) -> str:
    """`json.dumps(value)`, what a JSONField without an encoder stores.

    A flat dict of floats (a feature vector: a replay stores each with its decision, its trade
    and its training record) is encoded once, remembered by its names and the exact bits of
    its values, so -0.0 and 0.0 or 1 and 1.0 are never taken for each other.
    """
    if type(value) is dict and set(map(type, value.values())) == {float} and set(map(type, value)) == {str}:
        return _flat_json(tuple(value), array("d", value.values()).tobytes())
    return json.dumps(value)


@lru_cache(maxsize=4096)
def _flat_json(names: tuple[str, ...], bits: bytes) -> str:
    return json.dumps(dict(zip(names, array("d", bits))))


def _columns(model: type[models.Model], names: Sequence[str] | None = None) -> list[models.Field]:
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    return fields if names is None else [model._meta.get_field(name) for name in names]


def _values(objs: Sequence[models.Model], fields: list[models.Field]) -> list[list]:
    """Each column's values across `objs`, prepared for the driver."""
    columns = []
    for field in fields:
        values = list(map(attrgetter(field.attname), objs))
        convert = _converter(field)
        columns.append(values if convert is None else list(map(convert, values)))
    return columns


def bulk_insert(model: type[models.Model], objs: Sequence[models.Model]) -> None:
    """INSERT `objs` (unsaved instances), setting each one's primary key, like bulk_create."""
    if not objs:
        return
    fields = _columns(model)
    _take_related_keys(objs, [field for field in fields if field.is_relation])
    for field in fields:
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            for obj in objs:
                field.pre_save(obj, add=True)
    quote = connection.ops.quote_name
    table, pk, columns = quote(model._meta.db_table), quote(model._meta.pk.column), ", ".join(quote(f.column) for f in fields)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and len(objs) > 1:
            keys = _copy(cursor, model, f"{table} ({pk}, {columns})", _values(objs, fields), len(objs))
        else:
            keys = []
            batch = max(1, min(_MAX_BATCH, connection.ops.bulk_batch_size(fields, objs)))
            for start in range(0, len(objs), batch):
                chunk = objs[start : start + batch]
                keys.extend(_insert_values(cursor, f"{table} ({columns})", pk, _values(chunk, fields), len(chunk)))
    for obj, key in zip(objs, keys, strict=True):
        obj.pk = key
        obj._state.adding, obj._state.db = False, connection.alias


def _take_related_keys(objs: Sequence[models.Model], relations: list[models.Field]) -> None:
    """Give each object the key of a related object saved since it was assigned to it, as save() does.

    Django's own check walks every field of every object; this looks only at the keys still missing.
    """
    for field in relations:
        for obj in objs:
            if getattr(obj, field.attname) is None and (related := field.get_cached_value(obj, None)) is not None:
                if related.pk is None:  # still unsaved: Django's check refuses it, with its own message
                    obj._prepare_related_fields_for_save(operation_name="bulk_insert")
                setattr(obj, field.name, related)  # as Django's check does: the key, and the object stays cached


def _insert_values(cursor, target: str, pk: str, columns: list[list], count: int) -> list[int]:
    """One INSERT ... VALUES of `count` rows; returns their new primary keys.

    On SQLite the statement goes to the driver in its own "?" style: Django's cursor would
    search a statement of tens of thousands of "%s" to rewrite each.
    """
    sqlite = connection.vendor == "sqlite"
    row_marks = "(" + ", ".join(["?" if sqlite else "%s"] * len(columns)) + ")"
    sql = f"INSERT INTO {target} VALUES {', '.join([row_marks] * count)} RETURNING {pk}"
    params = list(chain.from_iterable(zip(*columns)))
    if sqlite:
        with connection.wrap_database_errors:
            return [row[0] for row in connection.connection.execute(sql, params)]
    cursor.execute(sql, params)
    return [row[0] for row in cursor.fetchall()]


def _copy(cursor, model: type[models.Model], target: str, columns: list[list], count: int) -> list[int]:
    """COPY rows into PostgreSQL, the cheapest way in for both ends; returns their new primary keys.

    COPY returns nothing, so the keys are drawn from the table's sequence first: the same keys
    an INSERT would have taken, in the same order.
    """
    cursor.execute(
        "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
        [connection.ops.quote_name(model._meta.db_table), model._meta.pk.column, count],
    )
    keys = sorted(row[0] for row in cursor.fetchall())  # ascending in the rows' order, as an INSERT numbers them
    with connection.wrap_database_errors, cursor.cursor.copy(f"COPY {target} FROM STDIN") as copy:
        for row in zip(keys, *columns, strict=True):
            copy.write_row(row)
    return keys


def bulk_update_rows(model: type[models.Model], objs: Iterable[models.Model], names: Sequence[str]) -> None:
    """UPDATE the named columns of saved instances: one prepared statement sent for all rows.

    bulk_update() builds a CASE expression per column per row, and compiling that cost more
    than the update itself.
    """
    objs = list(objs)
    if not objs:
        return
    fields = _columns(model, names)
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    sql = f"UPDATE {quote(model._meta.db_table)} SET {assignments} WHERE {quote(model._meta.pk.column)} = %s"
    with connection.cursor() as cursor:
        cursor.executemany(sql, list(zip(*_values(objs, fields), [obj.pk for obj in objs])))
