"""Log lines that say which request, tenant and job they belong to.

A context variable holds the fields of the work in hand: the request id and tenant id while
a web request is handled (config.request_context sets the request id; authentication adds
the tenant), the request id, tenant id and job id while a worker runs a message (see
config.runtime.worker). `ContextFilter`, attached to the handler, copies them onto every record,
and one of two formatters writes it:

- `JsonFormatter`: one JSON object per line (time in ISO-8601 UTC, level, logger, message,
  every `extra` field and the context fields), for log shippers;
- `PlainFormatter`: the classic text line with the same fields as `key=value` at the end.

PARLA_LOG_FORMAT picks one (json in production, plain elsewhere).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import inspect
import json
import logging
import re
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

# The message option that carries the request id from the web tier to the worker.
MESSAGE_REQUEST_ID_OPTION = "parla_request_id"

_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")

# Never changed in place: each change sets a new mapping.
_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "parla_log_context", default=MappingProxyType({})
)


# --- The context -------------------------------------------------------------------------


def log_context_get() -> dict[str, Any]:
    return dict(_context.get())


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add fields to every line logged inside the block (nested blocks add to outer ones)."""
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def log_context_bind(**fields: Any) -> None:
    """Add fields for the rest of the enclosing `log_context` block (e.g. the tenant, once
    authentication has found it). Outside any block they stay until `log_context_clear`."""
    _context.set({**_context.get(), **fields})


def log_context_clear() -> None:
    _context.set({})


def current_request_id() -> str | None:
    return _context.get().get("request_id")


def request_id_sane(value: str | None) -> bool:
    """An incoming X-Request-ID is kept only if it is short and plain (it ends up in logs)."""
    return bool(value) and _REQUEST_ID_RE.fullmatch(value) is not None


def request_id_new() -> str:
    return uuid.uuid4().hex


# --- Dramatiq messages -------------------------------------------------------------------

_actor_parameters: dict[str, inspect.Signature | None] = {}


def message_request_id_attach(message) -> None:
    """Stamp a message being enqueued with the request id in hand (kept on retries)."""
    request_id = current_request_id()
    if request_id and MESSAGE_REQUEST_ID_OPTION not in message.options:
        message.options[MESSAGE_REQUEST_ID_OPTION] = request_id


def message_log_fields(broker, message) -> dict[str, Any]:
    """The context of a message being processed: its request id, and the ids among the
    actor's arguments (tenant_id, job_id, batch_id, ...)."""
    fields: dict[str, Any] = {
        "request_id": message.options.get(MESSAGE_REQUEST_ID_OPTION),
        "tenant_id": None,
        "message_id": message.message_id,
        "actor": message.actor_name,
    }
    if message.actor_name not in _actor_parameters:
        try:
            actor = broker.get_actor(message.actor_name)
            _actor_parameters[message.actor_name] = inspect.signature(actor.fn)
        except Exception:  # noqa: BLE001  an unknown actor: the worker reports it itself
            _actor_parameters[message.actor_name] = None
    signature = _actor_parameters[message.actor_name]
    if signature is not None:
        try:
            arguments = signature.bind_partial(*message.args, **message.kwargs).arguments
        except TypeError:
            arguments = {}
        for name, value in arguments.items():
            if name.endswith("_id") and isinstance(value, int | str):
                fields[name] = value
    return fields


# --- Filter and formatters ---------------------------------------------------------------


class ContextFilter(logging.Filter):
    """Copy the context's fields onto each record (a field given in `extra` wins).

    Django logs a request's 4xx/5xx line after every middleware has returned, with the
    request on the record: those lines take the context the request left behind.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        fields = getattr(request, "parla_log_context", None) or _context.get()
        for key, value in fields.items():
            if key not in record.__dict__:
                setattr(record, key, value)
        return True


# Attributes every LogRecord has; anything else on a record came from `extra` or a filter.
_RECORD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None))
) | {"message", "asctime", "taskName"}


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in record.__dict__.items() if key not in _RECORD_ATTRIBUTES}


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then every other field."""

    def format(self, record: logging.LogRecord) -> str:
        created = dt.datetime.fromtimestamp(record.created, tz=dt.UTC)
        line: dict[str, Any] = {
            "time": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record_fields(record).items():
            line[key if key not in line else f"extra_{key}"] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        try:
            return json.dumps(line, default=_json_default, ensure_ascii=False)
        except (TypeError, ValueError):  # e.g. circular structures in an extra field
            return json.dumps({k: v if isinstance(v, str | int | float | bool | None) else repr(v)
                               for k, v in line.items()}, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    """`<time> <LEVEL> <logger> <message> key=value ...`: easy to read in a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = " ".join(
            f"{key}={value}" for key, value in record_fields(record).items() if value is not None
        )
        if not fields:
            return text
        first, newline, rest = text.partition("\n")  # keep a traceback below the line
        return f"{first} {fields}{newline}{rest}"


LOG_FORMATS = ("json", "plain")


def logging_config(*, log_format: str, level: str) -> dict[str, Any]:
    """The LOGGING setting: one handler on stdout with the context filter."""
    if log_format not in LOG_FORMATS:
        from django.core.exceptions import ImproperlyConfigured

        choices = ", ".join(LOG_FORMATS)
        raise ImproperlyConfigured(f"PARLA_LOG_FORMAT must be one of {choices}, not {log_format!r}.")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "config.logging.ContextFilter"}},
        "formatters": {
            "json": {"()": "config.logging.JsonFormatter"},
            "plain": {"()": "config.logging.PlainFormatter"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": log_format,
                "filters": ["context"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {"django.db.backends": {"level": "WARNING"}},
    }
