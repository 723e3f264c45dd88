"""Declared parameters of the post ops: each param's type, range, choices, default and when it applies.

An op declares its params once (``register`` in ``pixelbuild.post``). Checking (``check``), default-filling
and canonical spelling (``complete``) and the JSON Schema (``pixelbuild.post.schema``) all read these
declarations, so they cannot disagree. What a schema cannot say (``min_cell < max_cell``) stays in an
op's own semantic check. Pure Python: reading declarations never imports numpy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from typing import Any

import msgspec

RGBA = tuple[int, int, int, int]

_HEX_COLOUR = re.compile(r"#([0-9a-fA-F]{6}|[0-9a-fA-F]{8})")
#: A colour already spelled canonically (what normalised params hold): checked without parsing.
_CANONICAL_COLOUR = re.compile(r"#[0-9a-f]{8}")
#: The schema's spelling of a hex colour (the same as ``_HEX_COLOUR``).
HEX_COLOUR_PATTERN = "^#([0-9a-fA-F]{6}|[0-9a-fA-F]{8})$"
#: Sizes an op may ask for, per side, unless its declaration says less.
MAX_SIZE = 8192


class _Missing:
    """The absence of a default (``None`` is a value a param could take)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def render(value: Any) -> str:
    """A value as a manifest writer would type it: 'text' quoted, true/false, numbers plain."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"'{value}'"
    return repr(value)


def _alternatives(values: Sequence[Any], word: str = "or") -> str:
    """``'a', 'b' or 'c'``."""
    rendered = [render(value) for value in values]
    return rendered[0] if len(rendered) == 1 else f"{', '.join(rendered[:-1])} {word} {rendered[-1]}"


# ----------------------------------------------------------------------------------- colours and sizes


def parse_color(value: Any) -> RGBA:
    """Read a colour param: ``"#rrggbb"``, ``"#rrggbbaa"`` or ``[r, g, b]`` / ``[r, g, b, a]``."""
    if isinstance(value, str):
        match = _HEX_COLOUR.fullmatch(value.strip())
        if match is None:
            raise ValueError(f"'{value}' is not a colour: write '#rrggbb' or '#rrggbbaa' (quoted in YAML)")
        digits = match.group(1)
        channels = [int(digits[i : i + 2], 16) for i in range(0, len(digits), 2)]
        if len(channels) == 3:
            channels.append(255)
        return channels[0], channels[1], channels[2], channels[3]
    if isinstance(value, Sequence) and len(value) in (3, 4):
        if not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in value):
            raise ValueError(f"{list(value)} is not a colour: [r, g, b(, a)] needs integers 0..255")
        channels = [int(c) for c in value]
        if len(channels) == 3:
            channels.append(255)
        return channels[0], channels[1], channels[2], channels[3]
    if value is None:
        raise ValueError("a colour is empty: in YAML quote hex colours ('#ff0000'), '#' starts a comment")
    raise ValueError(f"{value!r} is not a colour: write '#rrggbb', '#rrggbbaa' or [r, g, b(, a)]")


def format_color(color: RGBA) -> str:
    """The canonical spelling of a colour: lowercase ``#rrggbbaa``."""
    return "#" + "".join(f"{channel:02x}" for channel in color)


def canonical_color(value: Any) -> Any:
    """``value`` as canonical ``#rrggbbaa`` when it is a valid colour, else unchanged (for the check)."""
    if type(value) is str and _CANONICAL_COLOUR.fullmatch(value):
        return value
    try:
        return format_color(parse_color(value))
    except (ValueError, TypeError):
        return value


def size_pair(value: Any, what: str = "size") -> tuple[int, int]:
    """Read an int-or-``[w, h]`` param as (width, height); raise ``ValueError`` if it is neither."""
    kind = type(value)
    if kind is int:
        return value, value
    if kind is list and len(value) == 2 and type(value[0]) is int and type(value[1]) is int:
        return value[0], value[1]
    if isinstance(value, int) and not isinstance(value, bool):
        return value, value
    if (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        return int(value[0]), int(value[1])
    raise ValueError(f"{what} must be an integer or [width, height], got {value!r}")


def canonical_size(value: Any) -> Any:
    """A size param as ``[w, h]`` when it is valid (so ``32`` and ``[32, 32]`` hash alike)."""
    try:
        width, height = size_pair(value)
    except ValueError:
        return value
    return [width, height]


# ------------------------------------------------------------------------------------------ conditions


class When:
    """A condition on an earlier param of the same op: its value (defaults filled in) is one of
    ``values``, or with ``integer`` a whole number (not true/false); ``text`` says it in words."""

    __slots__ = ("_options", "integer", "param", "text", "values")

    def __init__(self, param: str, *values: Any, integer: bool = False, text: str | None = None) -> None:
        if bool(values) == integer:
            raise TypeError("a condition names either values or integer=True")
        self.param = param
        self.values = values
        self.integer = integer
        self.text = text
        # Looked up by (is it a bool, value), so that true/false stay apart from 1/0.
        self._options = frozenset((type(value) is bool, value) for value in values)

    def holds(self, params: Mapping[str, Any]) -> bool:
        """Whether the condition is met by ``params`` (an absent param meets none)."""
        value = params.get(self.param, MISSING)
        if value is MISSING:
            return False
        if self.integer:
            return isinstance(value, int) and not isinstance(value, bool)
        try:
            return (type(value) is bool, value) in self._options
        except TypeError:  # a list or a mapping: never one of the declared values
            return False

    def describe(self, params: Mapping[str, Any] | None = None) -> str:
        """The condition in words: ``'mode' is 'flood' or 'key'``; given ``params`` that meet it, only the
        value they hold (``'mode' is 'key'``)."""
        if self.text is not None:
            return self.text
        if self.integer:
            return f"'{self.param}' is a whole number"
        if params is not None and self.holds(params):
            return f"'{self.param}' is {render(params[self.param])}"
        return f"'{self.param}' is {_alternatives(self.values)}"

    def identity(self) -> tuple[Any, ...]:
        """What makes two conditions the same (they share one branch of the schema)."""
        return (self.param, self.integer, tuple((type(v).__name__, v) for v in self.values))


# -------------------------------------------------------------------------------------------- params


# The declarations are msgspec structs, not dataclasses: a class is made in C (~15 us, not ~0.5 ms of
# generated code per dataclass), and an edit build loads them all to check the changed file's post chains.
class _Named(msgspec.Struct, frozen=True):
    """A param's positional part, its name (``Param`` adds the keywords)."""

    name: str


class Param(_Named, frozen=True, kw_only=True):
    """One parameter of an op: its name, and (keywords) what it means, its default, whether it is
    required (always, or when a condition holds) and the conditions under which it applies at all.

    A param that does not apply must be absent, and its default is filled in only when it applies.
    """

    description: str = ""
    default: Any = MISSING
    required: bool | When = False
    when: When | tuple[When, ...] = ()

    @property
    def conditions(self) -> tuple[When, ...]:
        """The conditions under which the param applies (all must hold)."""
        return self.when if isinstance(self.when, tuple) else (self.when,)

    def check(self, value: Any) -> None:
        """Raise ``ValueError`` naming the param when ``value`` is not one it takes."""

    def canonical(self, value: Any) -> Any:
        """One spelling of equivalent values (so they hash alike); invalid values unchanged."""
        return value

    def hint(self) -> str:
        """What a value looks like, for 'needs' messages."""
        return ""

    def value_schema(self) -> dict[str, Any]:
        """The JSON Schema of the param's value."""
        return {}

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of the param: its value's, with description and default."""
        schema: dict[str, Any] = {}
        if self.description:
            schema["description"] = self.description
        schema.update(self.value_schema())
        if self.default is not MISSING:
            schema["default"] = self.default
        return schema


class Int(Param, frozen=True):
    """A whole number in ``low..high``."""

    low: int
    high: int

    def check(self, value: Any) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"'{self.name}' must be an integer, got {value!r}")
        if value < self.low:
            raise ValueError(f"'{self.name}' must be at least {self.low}, got {value}")
        if value > self.high:
            raise ValueError(f"'{self.name}' must be at most {self.high}, got {value}")

    def hint(self) -> str:
        return f"a whole number from {self.low} to {self.high}"

    def value_schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.low, "maximum": self.high}


class Number(Param, frozen=True):
    """A number (whole or not) in ``low..high``."""

    low: float
    high: float

    def check(self, value: Any) -> None:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ValueError(f"'{self.name}' must be a number, got {value!r}")
        if not self.low <= value <= self.high:
            raise ValueError(f"'{self.name}' must be between {self.low:g} and {self.high:g}, got {value}")

    def hint(self) -> str:
        return f"a number from {self.low:g} to {self.high:g}"

    def value_schema(self) -> dict[str, Any]:
        return {"type": "number", "minimum": self.low, "maximum": self.high}


class Bool(Param, frozen=True):
    """true or false."""

    def check(self, value: Any) -> None:
        if not isinstance(value, bool):
            raise ValueError(f"'{self.name}' must be true or false, got {value!r}")

    def hint(self) -> str:
        return "true or false"

    def value_schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


class Choice(Param, frozen=True, dict=True):
    """One of a fixed set of values (names such as 'box', or numbers such as 90)."""

    options: tuple[Any, ...]

    @cached_property
    def _keys(self) -> frozenset[tuple[bool, Any]]:
        # Looked up by (is it a bool, value), so that true/false stay apart from 1/0.
        return frozenset((type(option) is bool, option) for option in self.options)

    def _known(self, value: Any) -> bool:
        try:
            return (type(value) is bool, value) in self._keys
        except TypeError:  # a list or a mapping
            return False

    def check(self, value: Any) -> None:
        if isinstance(value, bool) or not self._known(value):
            listed = ", ".join(repr(option) if not isinstance(option, str) else option for option in self.options)
            raise ValueError(f"'{self.name}' must be one of {listed}, got {value!r}")

    def hint(self) -> str:
        return f"{_alternatives(self.options)}"

    def value_schema(self) -> dict[str, Any]:
        return {"enum": list(self.options)}


class Color(Param, frozen=True):
    """A colour: '#rrggbb', '#rrggbbaa', [r, g, b] or [r, g, b, a]; canonical '#rrggbbaa'."""

    def check(self, value: Any) -> None:
        if type(value) is not str or not _CANONICAL_COLOUR.fullmatch(value):
            parse_color(value)

    def canonical(self, value: Any) -> Any:
        return canonical_color(value)

    def hint(self) -> str:
        return "a colour such as '#ff0000'"

    def value_schema(self) -> dict[str, Any]:
        return {"$ref": "#/$defs/color"}


class PixelSize(Param, frozen=True):
    """A size in pixels: an integer (a square) or [width, height], each side ``1..high``; canonical [w, h]."""

    high: int = MAX_SIZE

    def check(self, value: Any) -> None:
        width, height = size_pair(value, f"'{self.name}'")
        if not (1 <= width <= self.high and 1 <= height <= self.high):
            raise ValueError(f"'{self.name}' must be 1..{self.high} pixels per side, got {width}x{height}")

    def canonical(self, value: Any) -> Any:
        return canonical_size(value)

    def hint(self) -> str:
        return "an integer or [width, height]"

    def value_schema(self) -> dict[str, Any]:
        if self.high == MAX_SIZE:
            return {"$ref": "#/$defs/size"}
        return size_schema(self.high)


class File(Param, frozen=True):
    """A project file (its content enters the post key), relative to the manifest file naming it."""

    def check(self, value: Any) -> None:
        if not isinstance(value, str) or not value:
            raise ValueError(f"'{self.name}' must be the path of a file, got {value!r}")

    def hint(self) -> str:
        return "the path of a file"

    def value_schema(self) -> dict[str, Any]:
        return {"type": "string", "minLength": 1}


class CountOrColors(Param, frozen=True):
    """A number of colours (``low..high``) or a list of 1..``high`` colours (each spelled canonically)."""

    low: int
    high: int

    def check(self, value: Any) -> None:
        if isinstance(value, int) and not isinstance(value, bool):
            Int(self.name, self.low, self.high).check(value)
        elif isinstance(value, list):
            if not 1 <= len(value) <= self.high:
                raise ValueError(f"'{self.name}' lists 1 to {self.high} colours, got {len(value)}")
            for item in value:
                parse_color(item)
        else:
            raise ValueError(f"'{self.name}' must be a number of colours or a list of colours, got {value!r}")

    def canonical(self, value: Any) -> Any:
        return [canonical_color(item) for item in value] if isinstance(value, list) else value

    def hint(self) -> str:
        return "a number of colours or a list of colours"

    def value_schema(self) -> dict[str, Any]:
        return {
            "oneOf": [
                {"type": "integer", "minimum": self.low, "maximum": self.high},
                {"type": "array", "items": {"$ref": "#/$defs/color"}, "minItems": 1, "maxItems": self.high},
            ]
        }


def size_schema(high: int) -> dict[str, Any]:
    """The JSON Schema of a size with sides ``1..high``."""
    side = {"type": "integer", "minimum": 1, "maximum": high}
    return {
        "oneOf": [
            dict(side),
            {"type": "array", "prefixItems": [dict(side), dict(side)], "minItems": 2, "maxItems": 2},
        ]
    }


# ---------------------------------------------------------------------------------------- signatures


class Signature(msgspec.Struct, frozen=True, dict=True):
    """All params of one op, in order, with the rules that tie several together.

    ``exactly_one``: groups of params of which exactly one must be given (palette's colors, preset,
    file); ``at_most_one``: groups of which at most one may be. A condition may only name a param
    declared before it, so defaults fill in one pass.
    """

    op: str
    params: tuple[Param, ...]
    exactly_one: tuple[tuple[str, ...], ...] = ()
    at_most_one: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for param in self.params:
            named = [condition.param for condition in param.conditions]
            if isinstance(param.required, When):
                named.append(param.required.param)
            for name in named:
                if name not in seen:
                    raise ValueError(f"op '{self.op}': '{param.name}' depends on '{name}', declared after it")
            if param.name in seen:
                raise ValueError(f"op '{self.op}' declares '{param.name}' twice")
            seen.add(param.name)
        for group in (*self.exactly_one, *self.at_most_one):
            if not set(group) <= seen:
                raise ValueError(f"op '{self.op}': group {group} names an undeclared param")
        for param in self.params:
            if param.default is not MISSING and any(param.name in group for group in self.exactly_one):
                raise ValueError(
                    f"op '{self.op}': '{param.name}' cannot have a default: exactly one of its group is given"
                )

    @cached_property
    def names(self) -> frozenset[str]:
        """The names of the declared params."""
        return frozenset(param.name for param in self.params)

    @cached_property
    def _order(self) -> tuple[tuple[str, Any, tuple[When, ...]], ...]:
        return tuple((p.name, p.default, p.conditions) for p in self.params)

    @cached_property
    def _canonical(self) -> tuple[Param, ...]:
        # Only types with a canonical spelling: the others would return their value unchanged.
        return tuple(p for p in self.params if type(p).canonical is not Param.canonical)

    @cached_property
    def _rules(self) -> tuple[tuple[Param, str, tuple[When, ...], bool | When], ...]:
        return tuple((p, p.name, p.conditions, p.required) for p in self.params)

    def complete(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` with the defaults of the params that apply filled in, and values spelled canonically.

        The result lists the declared params in declaration order (then any unknown key, for the check),
        so an op reads the same however its params were written.
        """
        given = {str(key): value for key, value in params.items()}
        complete: dict[str, Any] = {}
        for name, default, conditions in self._order:
            if name in given:
                complete[name] = given.pop(name)
            elif default is not MISSING and (not conditions or all(c.holds(complete) for c in conditions)):
                complete[name] = default
        if given:
            complete.update(given)
        for param in self._canonical:
            name = param.name
            if name in complete:
                complete[name] = param.canonical(complete[name])
        return complete

    def check(self, params: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` (one sentence naming the param) unless completed ``params`` fit the declarations."""
        if not self.names.issuperset(params):
            unknown = sorted(set(params) - self.names)
            takes = ", ".join(sorted(self.names))
            raise ValueError(f"op '{self.op}' has no parameter '{unknown[0]}' (it takes: {takes})")
        for group in self.exactly_one:
            given = [name for name in group if name in params]
            if len(given) != 1:
                raise ValueError(
                    f"op '{self.op}' needs exactly one of {_names(group)}, got {', '.join(given) if given else 'none'}"
                )
        for param, name, conditions, required in self._rules:
            value = params.get(name, MISSING)
            if value is not MISSING:
                for condition in conditions:
                    if not condition.holds(params):
                        here = params.get(condition.param, MISSING)
                        now = "" if here is MISSING else f", not {render(here)}"
                        raise ValueError(f"'{name}' only applies to {self.op} when {condition.describe()}{now}")
                param.check(value)
            elif required is True or (required is not False and required.holds(params)):
                hint = f" ({param.hint()})" if param.hint() else ""
                because = f" when {required.describe(params)}" if isinstance(required, When) else ""
                raise ValueError(f"op '{self.op}' needs '{name}'{hint}{because}")
        for group in self.at_most_one:
            given = [name for name in group if name in params]
            if len(given) > 1:
                which = "both" if len(group) == 2 else "more than one of them"
                raise ValueError(f"op '{self.op}' takes {_names(group)}, not {which}")

    def file_params(self) -> tuple[str, ...]:
        """The params that name project files."""
        return tuple(param.name for param in self.params if isinstance(param, File))


def _names(group: Iterable[str]) -> str:
    return _alternatives(list(group))
