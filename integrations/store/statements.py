"""The token store's frequent statements, as SQL written once per database.

A background refresh runs the same few statements for every token: lock the association's
row, merge the new tokens into extra_data, update its CredentialState index, append the
history entry. Built through the ORM, each cost 0.4 to 0.7 ms of CPU here (cloning the
queryset, resolving lookups, compiling, instantiating the model) against 0.15 ms for the
statement itself, which made the ORM the largest part of a refresh's CPU. So these statements
are fixed strings: tables and columns come from the models' ``_meta``, quoted by the
connection, and each string is made once per database alias (so S608 is silenced where they
are assembled: nothing from outside reaches the SQL text; values are always parameters).
What they do is what the ORM did; the ORM stays everywhere else.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Any

from django.db import NotSupportedError, connections
from django.db.models import Model
from social_django.models import UserSocialAuth

from integrations.models import CredentialEvent, CredentialState

# Loaded when an association is locked for a refresh; any other field loads when first read.
# In the model's field order, the order Model.from_db expects.
LOCKED_FIELDS = tuple(
    field.attname
    for field in UserSocialAuth._meta.concrete_fields
    if field.attname in {"id", "user_id", "provider", "uid", "extra_data"}
)


def _names(model: type[Model], alias: str) -> tuple[str, dict[str, str]]:
    """The model's quoted table name and its columns by attname."""
    quote = connections[alias].ops.quote_name
    columns = {field.attname: quote(str(field.column)) for field in model._meta.concrete_fields}
    return quote(model._meta.db_table), columns


def _select_locked_fields(alias: str) -> tuple[str, dict[str, str]]:
    """``SELECT <LOCKED_FIELDS> FROM <association table>``, and the table's columns."""
    table, column = _names(UserSocialAuth, alias)
    return f"SELECT {', '.join(column[name] for name in LOCKED_FIELDS)} FROM {table}", column  # noqa: S608


def _association(row: tuple[Any, ...], using: str) -> UserSocialAuth:
    """The association a row of _select_locked_fields holds (extra_data decoded)."""
    values = list(row)
    at = LOCKED_FIELDS.index("extra_data")
    extra_data = UserSocialAuth._meta.get_field("extra_data")
    values[at] = extra_data.from_db_value(values[at], None, connections[using])  # type: ignore[arg-type]
    return UserSocialAuth.from_db(using, list(LOCKED_FIELDS), values)


@cache
def _lock_sql(alias: str) -> str:
    select, column = _select_locked_fields(alias)
    sql = f"{select} WHERE {column['id']} = %s"
    # SQLite has no row locks: the refresh's transaction is IMMEDIATE, which holds the
    # database's write lock from its first statement (settings.DATABASES).
    return sql + " FOR UPDATE" if connections[alias].features.has_select_for_update else sql


def lock_association(pk: int, *, using: str = "default") -> UserSocialAuth | None:
    """Return the association, its row locked until the caller's transaction ends (None when
    it is gone). Only LOCKED_FIELDS are loaded."""
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(_lock_sql(using), [pk])
        row = cursor.fetchone()
    return None if row is None else _association(row, using)


@cache
def _merge_sql(alias: str, state: tuple[str, ...]) -> str:
    """UPDATE of extra_data (and `modified`); on PostgreSQL, with the CredentialState columns
    named in `state` in the same statement (one round trip fewer per refresh)."""
    table, column = _names(UserSocialAuth, alias)
    data, vendor = column["extra_data"], connections[alias].vendor
    if vendor == "postgresql":
        # Removed keys first, then the patch: RFC 7396 with None meaning "remove".
        merged = f"((COALESCE({data}, '{{}}'::jsonb) - %s::text[]) || %s::jsonb)"
    elif vendor == "sqlite":
        merged = f"json_patch(COALESCE({data}, '{{}}'), %s)"
    else:
        raise NotSupportedError(f"merging extra_data is not implemented for {vendor}")
    update = (
        f"UPDATE {table} SET {data} = {merged}, {column['modified']} = %s "  # noqa: S608
        f"WHERE {column['id']} = %s"
    )
    if vendor != "postgresql" or not state:
        return update
    state_table, state_column = _names(CredentialState, alias)
    assignments = ", ".join(f"{state_column[name]} = %s" for name in state)
    return (
        f"WITH merged AS ({update} RETURNING {column['id']}) "  # noqa: S608
        f"UPDATE {state_table} SET {assignments} "
        f"WHERE {state_column['association_id']} IN (SELECT {column['id']} FROM merged)"
    )


def merge_extra_data(
    pk: int,
    patch: Mapping[str, Any],
    *,
    modified: Any,
    state: Mapping[str, Any],
    using: str = "default",
) -> int:
    """Merge `patch` into the association's extra_data inside the database (None removes a
    key), so a concurrent writer of other keys is never overwritten; set its CredentialState
    columns `state` (by name) too. Return how many index rows were set (0: it has none yet,
    or `state` is empty). The caller holds the transaction."""
    connection = connections[using]
    names = tuple(sorted(state))
    if connection.vendor == "postgresql":
        removed = [key for key, value in patch.items() if value is None]
        kept = {key: value for key, value in patch.items() if value is not None}
        params: list[Any] = [removed, json.dumps(kept)]
    else:
        params = [json.dumps(dict(patch))]
    params += [connection.ops.adapt_datetimefield_value(modified), pk]
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql" or not names:
            cursor.execute(_merge_sql(using, ()), params)
            return update_state(pk, state, using=using) if names else 0
        cursor.execute(
            _merge_sql(using, names), [*params, *(_adapt(connection, state[n]) for n in names)]
        )
        return cursor.rowcount


@cache
def _state_sql(alias: str, names: tuple[str, ...]) -> str:
    table, column = _names(CredentialState, alias)
    assignments = ", ".join(f"{column[name]} = %s" for name in names)
    return f"UPDATE {table} SET {assignments} WHERE {column['association_id']} = %s"  # noqa: S608


def update_state(pk: int, values: Mapping[str, Any], *, using: str = "default") -> int:
    """Set CredentialState columns (by name: datetimes or strings) of one association;
    return how many rows changed (0: it has no index row yet)."""
    connection = connections[using]
    names = tuple(sorted(values))
    params = [_adapt(connection, values[name]) for name in names]
    with connection.cursor() as cursor:
        cursor.execute(_state_sql(using, names), [*params, pk])
        return cursor.rowcount


EVENT_FIELDS = (
    "association_id",
    "user_id",
    "provider",
    "uid",
    "kind",
    "created",
    "actor_id",
    "detail",
)


@cache
def _event_sql(alias: str) -> str:
    table, column = _names(CredentialEvent, alias)
    returning = ""
    if connections[alias].features.can_return_columns_from_insert:
        returning = f" RETURNING {column['id']}"
    return (
        f"INSERT INTO {table} ({', '.join(column[name] for name in EVENT_FIELDS)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(EVENT_FIELDS))}){returning}"
    )


def insert_event(event: CredentialEvent, *, using: str = "default") -> int:
    """Insert one history entry (its fields set, `created` included); return its id."""
    connection = connections[using]
    params = [_adapt(connection, getattr(event, name)) for name in EVENT_FIELDS]
    with connection.cursor() as cursor:
        cursor.execute(_event_sql(using), params)
        if connection.features.can_return_columns_from_insert:
            return cursor.fetchone()[0]
        return connection.ops.last_insert_id(cursor, CredentialEvent._meta.db_table, "id")


def _adapt(connection: Any, value: Any) -> Any:
    """A parameter as the ORM would send it (datetimes as the database stores them)."""
    if hasattr(value, "tzinfo"):
        return connection.ops.adapt_datetimefield_value(value)
    return value


# A background sweep works on chunks of associations: one statement locks a chunk, one writes
# all its refreshed tokens (with their index), one appends all their history entries. PostgreSQL
# only: SQLite has no row locks (a refresh holds its write lock, so refreshes are serial there).


@cache
def _lock_many_sql(alias: str) -> str:
    select, column = _select_locked_fields(alias)
    return f"{select} WHERE {column['id']} = ANY(%s) ORDER BY {column['id']} FOR UPDATE SKIP LOCKED"


def lock_associations(ids: list[int], *, using: str = "default") -> list[UserSocialAuth]:
    """Lock the rows of these associations that nobody else holds, until the caller's
    transaction ends, and return them (LOCKED_FIELDS loaded). A row held by someone else (a
    request refreshing it right now) or gone is left out: the caller deals with it alone."""
    connection = connections[using]
    if not connection.features.has_select_for_update_skip_locked:
        raise NotSupportedError(f"locking a chunk of rows needs SKIP LOCKED ({connection.vendor})")
    with connection.cursor() as cursor:
        cursor.execute(_lock_many_sql(using), [list(ids)])
        return [_association(row, using) for row in cursor.fetchall()]


@cache
def _merge_many_sql(alias: str, state: tuple[str, ...]) -> str:
    """One statement of the same text (and so parsed once by the driver) for any number of
    rows: their values come as one array per column, unnested into rows."""
    table, column = _names(UserSocialAuth, alias)
    state_table, state_column = _names(CredentialState, alias)
    data = column["extra_data"]
    arrays = ", ".join(
        ["%s::bigint[]", "%s::jsonb[]", "%s::jsonb[]"]
        + [f"%s::{'text' if name == 'status' else 'timestamptz'}[]" for name in state]
    )
    names = ", ".join(["id", "removed", "kept", *(f"s{i}" for i in range(len(state)))])
    patches = f"patches AS (SELECT * FROM unnest({arrays}) AS patches({names}))"  # noqa: S608
    update = (
        f"UPDATE {table} SET {data} = ((COALESCE({data}, '{{}}'::jsonb) - "  # noqa: S608
        f"ARRAY(SELECT jsonb_array_elements_text(patches.removed))) || patches.kept), "
        f"{column['modified']} = %s FROM patches "
        f"WHERE {table}.{column['id']} = patches.id RETURNING {table}.{column['id']} AS id"
    )
    if not state:
        return f"WITH {patches}, merged AS ({update}) SELECT id FROM merged"  # noqa: S608
    assignments = ", ".join(f"{state_column[name]} = patches.s{i}" for i, name in enumerate(state))
    return (
        f"WITH {patches}, merged AS ({update}), indexed AS ("  # noqa: S608
        f"UPDATE {state_table} SET {assignments} FROM patches WHERE "
        f"{state_table}.{state_column['association_id']} = patches.id AND patches.id IN "
        f"(SELECT id FROM merged) RETURNING {state_table}.{state_column['association_id']} AS id"
        f") SELECT id FROM indexed"
    )


def merge_many(
    patches: Mapping[int, Mapping[str, Any]],
    *,
    modified: Any,
    state: Mapping[int, Mapping[str, Any]],
    using: str = "default",
) -> set[int]:
    """merge_extra_data for many associations in one statement (PostgreSQL): `patches` by
    association id, each with its CredentialState columns in `state` (every one naming the same
    columns). Return the ids whose index row was set (the others have none yet; without
    `state`, the ids whose row was written)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        raise NotSupportedError(f"merging many rows is not implemented for {connection.vendor}")
    names = tuple(sorted(next(iter(state.values()), {})))
    ids = list(patches)
    params: list[Any] = [
        ids,
        [json.dumps([key for key, value in patches[pk].items() if value is None]) for pk in ids],
        [
            json.dumps({key: value for key, value in patches[pk].items() if value is not None})
            for pk in ids
        ],
    ]
    params += [[_adapt(connection, state[pk].get(name)) for pk in ids] for name in names]
    params.append(connection.ops.adapt_datetimefield_value(modified))
    with connection.cursor() as cursor:
        cursor.execute(_merge_many_sql(using, names), params)
        return {row[0] for row in cursor.fetchall()}


@cache
def _events_sql(alias: str) -> str:
    table, column = _names(CredentialEvent, alias)
    types = {"association_id": "bigint", "user_id": "bigint", "actor_id": "bigint"}
    types["created"] = "timestamptz"
    arrays = ", ".join(f"%s::{types.get(name, 'text')}[]" for name in EVENT_FIELDS)
    return (
        f"INSERT INTO {table} ({', '.join(column[name] for name in EVENT_FIELDS)}) "  # noqa: S608
        f"SELECT * FROM unnest({arrays})"
    )


def insert_events(events: list[CredentialEvent], *, using: str = "default") -> None:
    """Insert these history entries (their fields set, `created` included) in one statement
    (PostgreSQL)."""
    if not events:
        return
    connection = connections[using]
    params = [
        [_adapt(connection, getattr(event, name)) for event in events] for name in EVENT_FIELDS
    ]
    with connection.cursor() as cursor:
        cursor.execute(_events_sql(using), params)
