"""Pydantic validation errors as messages a person can act on: file, field path, what is wrong.

The rules file (:mod:`alerts.rules`) and the scenario file (:mod:`simulator.scenario`) are both
validated with ``extra="forbid"``; both report problems through :func:`format_validation_error`,
one line per problem, with a did-you-mean for a misspelt field::

    invalid rules rules.yaml:
      rules.yaml: defaults.temp_high.delay_minute: unknown field 'delay_minute'; did you mean 'delay_minutes'?
"""

from __future__ import annotations

import difflib
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

# Names pydantic puts into an error's location for its own steps, not for a field.
_STEP_NAMES = frozenset({"function-after", "function-before", "function-wrap", "tagged-union"})


def format_validation_error(
    exc: ValidationError, source: str, root: type[BaseModel], *, what: str
) -> str:
    """One line per problem: ``source: field.path: what is wrong`` (with a did-you-mean).

    ``what`` names the kind of file in the first line (``invalid rules rules.yaml:``). A problem
    with no field path (a check across fields) is written one line per line of its message.
    """
    lines = [f"invalid {what} {source}:"]
    for err in exc.errors():
        loc = error_path(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            name = str(err["loc"][-1])
            known = fields_at(root, err["loc"][:-1])
            close = difflib.get_close_matches(name, known, n=1)
            hint = (
                f"; did you mean {close[0]!r}?" if close else f"; known fields: {', '.join(known)}"
            )
            msg = f"unknown field {name!r}{hint}"
        if not loc:
            # Cross-field checks name their own fields, one problem per line.
            lines.extend(f"  {source}: {line}" for line in msg.splitlines())
            continue
        lines.append(f"  {source}: {loc}: {msg}")
    return "\n".join(lines)


def error_path(loc: tuple[int | str, ...]) -> str:
    """``loc`` as ``a.b[2].c``, without pydantic's internal step names."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _STEP_NAMES or "[" in part:
            continue
        else:
            out += f".{part}" if out else part
    return out


def fields_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """Field names (by alias) of the model reached by walking ``loc`` from ``model``.

    List indexes, the key after a ``dict[str, Model]`` field (a GTIN, a reference: it could
    spell a field name) and pydantic's step names leave the walk on the element's model.
    """
    current: type[BaseModel] | None = model
    skip_key = False
    for part in loc:
        if skip_key or isinstance(part, int):
            skip_key = False
            continue
        fld = _fields(current).get(part)
        if fld is None:
            continue
        skip_key = get_origin(fld.annotation) is dict
        current = _inner_model(fld.annotation)
    return list(_fields(current))


def _fields(model: type[BaseModel] | None) -> dict[str, Any]:
    return {} if model is None else {f.alias or n: f for n, f in model.model_fields.items()}


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    """The model in ``M``, ``list[M]``, ``dict[str, M]`` or ``M | None``; None if there is none."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        inner = _inner_model(arg)
        if inner is not None:
            return inner
    return None
