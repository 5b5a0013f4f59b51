"""Lost updates: a master-data resource's ``version`` as its ETag, and the ``If-Match`` that a
change must send (RFC 9110 §13.1.1, RFC 6585 §3).

GET answers ``ETag: "<version>"``; PATCH and retire need ``If-Match: "<version>"``: without it,
428 Precondition Required (a client that never read the record must not overwrite it blindly);
with one that is not the current version, 412 Precondition Failed (the service's
VersionConflictError), and nothing changed. :func:`patch_model` makes a PATCH body from the
model a record is created with.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Optional

from fastapi import Header, HTTPException, Response
from pydantic import BaseModel, ConfigDict, Field, create_model

from api.schemas import ErrorOut

_ETAG = re.compile(r'^\s*(?:W/)?"?([0-9]{1,9})"?\s*$')

#: The answers of a route that takes If-Match, for its ``responses=``.
PRECONDITION_RESPONSES: dict[int | str, dict[str, Any]] = {
    412: {"model": ErrorOut, "description": "If-Match is not the current version: re-read"},
    428: {"model": ErrorOut, "description": "If-Match is required: send the ETag you read"},
}


def etag(version: int) -> str:
    """The ETag of a version: ``"3"``."""
    return f'"{version}"'


def set_etag(response: Response, row: dict[str, Any]) -> None:
    """Put the row's version on the response as its ETag."""
    response.headers["ETag"] = etag(int(row["version"]))


def expected_version(
    if_match: Annotated[
        str | None,
        Header(description='the ETag of the version you read, e.g. "3"'),
    ] = None,
) -> int:
    """The version the caller read, from If-Match; 428 without one, 412 if it is no version."""
    if if_match is None or not if_match.strip():
        raise HTTPException(
            status_code=428,
            detail='If-Match is required: send the ETag of the version you read (e.g. "3")',
        )
    m = _ETAG.match(if_match)
    if m is None:
        raise HTTPException(
            status_code=412, detail=f"If-Match {if_match!r} is not a version of this resource"
        )
    return int(m.group(1))


def patch_model(model: type[BaseModel], *, exclude: tuple[str, ...]) -> type[BaseModel]:
    """The body of a PATCH of ``model``'s records: every field optional (absent: unchanged;
    null: cleared), none of ``exclude`` (the identity). The service validates the merged record
    with ``model`` itself, so a bad value is refused with its field named either way."""
    fields: dict[str, Any] = {
        # Optional[...] of a type known at run time only (mypy cannot check X | None of it).
        name: (Optional[field.annotation], Field(default=None, description=field.description))  # noqa: UP045
        for name, field in model.model_fields.items()
        if name not in exclude
    }
    return create_model(
        f"{model.__name__.removesuffix('In')}Patch",
        __config__=ConfigDict(extra="forbid"),
        __doc__=f"A change of some fields of a {model.__name__.removesuffix('In').lower()}.",
        **fields,
    )
