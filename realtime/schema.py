"""Declarative validation of message `data` fields: JSON type errors are INVALID_MESSAGE, bad values BAD_REQUEST."""

import abc
import functools
import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

from .protocol import ErrorCode, ProtocolError

__all__ = [
    "Field", "Str", "Int", "Number", "Bool", "Id", "StrList", "Obj", "Money", "Symbol", "Symbols", "validate",
    "snake_case",
]

MAX_ABS_NUMBER = 1e15
_MISSING = object()


@dataclass(frozen=True, kw_only=True)
class Field(abc.ABC):
    """One expected field of a message's data: its JSON type, whether it must be there, and its bounds.

    Each kind of field (Str, Int, Money, ...) says how it converts a value and what JSON Schema that accepts."""

    required: bool = False
    default: Any = None
    choices: tuple | None = None
    min: float | None = None
    max: float | None = None
    max_len: int = 256
    upper: bool = False  # normalise strings (symbols, enums) to upper case
    nullable: bool = False  # an explicit null means None ("clear it"); only a missing field gets `default`

    @abc.abstractmethod
    def convert(self, name: str, value: Any) -> Any:
        """The value as the handler gets it; ProtocolError (INVALID_MESSAGE or BAD_REQUEST) when it will not do."""

    def json_schema(self) -> dict:
        """What `convert` accepts, as a JSON Schema fragment: docs/asyncapi.yaml is checked against it.

        Values are given in their canonical form: `convert` also trims strings and upper-cases them when `upper`.
        """
        schema = self._json_schema()
        if self.nullable:
            schema["type"] = [*_as_list(schema["type"]), "null"]
        if self.default is not None and self.default is not ...:
            schema["default"] = self.default
        return schema

    @abc.abstractmethod
    def _json_schema(self) -> dict:
        """The JSON Schema of the values `convert` accepts, before nullability and the default."""

    def _bounds(self, schema: dict) -> dict:
        if self.min is not None:
            schema["minimum"] = self.min
        if self.max is not None:
            schema["maximum"] = self.max
        return schema

    def _choices(self, schema: dict) -> dict:
        if self.choices is not None:  # the allowed values say all there is to say about their length
            schema.pop("minLength", None)
            schema.pop("maxLength", None)
            schema["enum"] = [str(choice) if isinstance(choice, str) else choice for choice in self.choices]
        return schema

    def check_range(self, name: str, value) -> None:
        if self.min is not None and value < self.min:
            raise _bad(f"{name} must be at least {self.min:g}")
        if self.max is not None and value > self.max:
            raise _bad(f"{name} must be at most {self.max:g}")

    def check_choice(self, name: str, value) -> None:
        if self.choices is not None and value not in self.choices:
            raise _bad(f"{name} must be one of {', '.join(map(str, self.choices))}")


def _as_list(json_type: str | list) -> list:
    return [json_type] if isinstance(json_type, str) else list(json_type)


def _wrong_type(name: str, expected: str) -> ProtocolError:
    return ProtocolError(ErrorCode.INVALID_MESSAGE, f"{name} must be {expected}")


def _bad(message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_REQUEST, message)


def _finite_number(name: str, value) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _wrong_type(name, "a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise _bad(f"{name} must be a finite number")
    if abs(value) > MAX_ABS_NUMBER:
        raise _bad(f"{name} is out of range")
    return value


@dataclass(frozen=True, kw_only=True)
class Str(Field):
    strip: bool = True  # False for what is compared as typed (a password)

    def _json_schema(self):
        return self._choices({"type": "string", "maxLength": self.max_len})

    def convert(self, name, value):
        if not isinstance(value, str):
            raise _wrong_type(name, "a string")
        if self.strip:
            value = value.strip()
        if len(value) > self.max_len:
            raise _bad(f"{name} is longer than {self.max_len} characters")
        if "\x00" in value:  # nothing means one; PostgreSQL's text cannot hold it, and a rejected order is stored
            raise _bad(f"{name} cannot hold a NUL character")
        if self.upper:
            value = value.upper()
        self.check_choice(name, value)
        return value


@dataclass(frozen=True, kw_only=True)
class Int(Field):

    def _json_schema(self):
        return self._choices(self._bounds({"type": "integer"}))

    def convert(self, name, value):
        value = _finite_number(name, value)
        if isinstance(value, float):
            if not value.is_integer():
                raise _bad(f"{name} must be a whole number")
            value = int(value)
        self.check_range(name, value)
        self.check_choice(name, value)
        return value


@dataclass(frozen=True, kw_only=True)
class Number(Field):

    def _json_schema(self):
        return self._bounds({"type": "number"})

    def convert(self, name, value):
        value = _finite_number(name, value)
        self.check_range(name, value)
        return value


@dataclass(frozen=True, kw_only=True)
class Money(Field):
    """A price or amount as Decimal; accepts a JSON number or a decimal string ("101.25")."""


    def _json_schema(self):
        return self._bounds({"type": ["number", "string"]})

    def convert(self, name, value):
        if isinstance(value, str):
            if len(value) > 40:
                raise _bad(f"{name} is out of range")
            try:
                amount = Decimal(value.strip())
            except InvalidOperation:
                raise _bad(f"{name} must be a decimal number") from None
        else:
            amount = Decimal(str(_finite_number(name, value)))
        if not amount.is_finite() or amount.adjusted() >= 15:
            raise _bad(f"{name} is out of range")
        if self.min is not None and amount < Decimal(str(self.min)):
            raise _bad(f"{name} must be at least {self.min}")
        if self.max is not None and amount > Decimal(str(self.max)):
            raise _bad(f"{name} must be at most {self.max}")
        return amount


@dataclass(frozen=True, kw_only=True)
class Bool(Field):

    def _json_schema(self):
        return {"type": "boolean"}

    def convert(self, name, value):
        if not isinstance(value, bool):
            raise _wrong_type(name, "true or false")
        return value


_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")


@dataclass(frozen=True, kw_only=True)
class Id(Field):
    """An opaque id: a string, or a number read as the string of that number (PROTOCOL.md)."""


    def _json_schema(self):
        return {"type": ["string", "integer"], "pattern": f"^{_ID.pattern}$"}

    def convert(self, name, value):
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise _wrong_type(name, "a string id")
        value = str(value)
        if not _ID.fullmatch(value):
            raise _bad(f"{name} is not a valid id")
        return value


@dataclass(frozen=True, kw_only=True)
class StrList(Field):
    """A list of strings (or one string, taken as a list of one); upper-cased when `upper`."""

    max_items: int = 200

    def _json_schema(self):
        item = self._choices({"type": "string", "minLength": 1, "maxLength": self.max_len})
        return {"oneOf": [item, {"type": "array", "items": item, "maxItems": self.max_items}]}

    def convert(self, name, value):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise _wrong_type(name, "a list of strings")
        if len(value) > self.max_items:
            raise _bad(f"{name} has more than {self.max_items} items")
        items = [item.strip().upper() if self.upper else item.strip() for item in value]
        if any(not item or len(item) > self.max_len for item in items):
            raise _bad(f"{name} contains an empty or over-long item")
        if self.choices is not None:
            for item in items:
                self.check_choice(name, item)
        return list(dict.fromkeys(items))


@dataclass(frozen=True, kw_only=True)
class Symbol(Str):
    """A ticker symbol as every endpoint reads it: trimmed and upper-cased, at most 12 characters."""

    upper: bool = True
    max_len: int = 12


@dataclass(frozen=True, kw_only=True)
class Symbols(StrList):
    """A list of ticker symbols (or one), each read as `Symbol` reads one."""

    upper: bool = True
    max_len: int = 12


@dataclass(frozen=True, kw_only=True)
class Obj(Field):
    """A nested object validated by its own field map."""

    fields: dict | None = None

    def _json_schema(self):
        if self.fields is None:
            return {"type": "object"}
        schema = {"type": "object", "properties": {name: spec.json_schema() for name, spec in self.fields.items()}}
        required = [name for name, spec in self.fields.items() if spec.required]
        if required:
            schema["required"] = required
        return schema

    def convert(self, name, value):
        if not isinstance(value, dict):
            raise _wrong_type(name, "an object")
        if self.fields is None:
            return value
        return validate(value, self.fields, prefix=f"{name}.")


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


@functools.cache  # only the schemas' own field names come here: a few dozen
def snake_case(name: str) -> str:
    """updateInterval -> update_interval."""
    return _CAMEL.sub("_", name).lower()


def validate(data: dict, fields: dict[str, Field], prefix: str = "",
             rename: Callable[[str], str] = snake_case) -> dict:
    """Check `data` against `fields` (wire names) and return snake_case keyword arguments.

    Unknown fields are ignored (clients may send more); absent optional fields get their default.
    """
    values = {}
    for wire_name, spec in fields.items():
        raw = data.get(wire_name, _MISSING)
        if raw is None and spec.nullable:
            values[rename(wire_name)] = None
            continue
        if raw is _MISSING or raw is None:
            if spec.required:
                raise _bad(f"{prefix}{wire_name} is required")
            values[rename(wire_name)] = spec.default
            continue
        values[rename(wire_name)] = spec.convert(prefix + wire_name, raw)
    return values
