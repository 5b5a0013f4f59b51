"""Call a Dash callback of the live app as the browser's renderer does, by what it reads and
writes, with a person's session: the callback is found in the app's own ``/_dash-dependencies``
(so its output spec, ``allow_duplicate`` suffixes included, is the app's, not a copy)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.fixtures.web import LiveServer

COOKIE = "coldchain_session"


def _split(spec: str) -> list[tuple[str, str]]:
    """``..a.b...c.d@x..`` (several outputs) or ``a.b`` (one) as ``[(id, property), …]``."""
    parts = spec[2:-2].split("...") if spec.startswith("..") else [spec]
    return [tuple(p.split(".", 1)) for p in parts]  # type: ignore[misc]


def call(
    server: LiveServer,
    cookie: str,
    *,
    trigger: str,
    output: str,
    values: dict[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """Fire the callback that writes ``output`` ("id.property") when ``trigger`` ("id.property")
    changes; every input and state it reads takes its value from ``values`` ("id.property"),
    else None (``trigger`` 1 unless given). Its outputs by component id, then property."""
    values = {trigger: 1, **(values or {})}
    with httpx.Client(base_url=server.url, timeout=30) as http:
        http.cookies.set(COOKIE, cookie)
        deps = http.get("/_dash-dependencies")
        assert deps.status_code == 200, deps.text
        matches = [
            d
            for d in deps.json()
            if any(f"{i}.{p}".split("@")[0] == output for i, p in _split(d["output"]))
            and any(f"{i['id']}.{i['property']}" == trigger for i in d["inputs"])
        ]
        assert len(matches) == 1, f"{len(matches)} callbacks write {output} on {trigger}"
        dep = matches[0]
        outputs = [{"id": i, "property": p} for i, p in _split(dep["output"])]

        def read(items: list[dict[str, str]]) -> list[dict[str, Any]]:
            return [
                {**i, "value": values.get(f"{i['id']}.{i['property']}")} for i in items if "id" in i
            ]

        payload = {
            "output": dep["output"],
            "outputs": outputs if len(outputs) > 1 else outputs[0],
            "inputs": read(dep["inputs"]),
            "state": read(dep["state"]),
            "changedPropIds": [trigger],
        }
        r = http.post("/_dash-update-component", json=payload)
    if r.status_code == 204:  # PreventUpdate
        return {}
    assert r.status_code == 200, r.text
    response: dict[str, dict[str, Any]] = r.json()["response"]
    # Drop the allow_duplicate suffix: {"products-editing": {"data": …}}.
    return {
        cid: {prop.split("@")[0]: v for prop, v in props.items()} for cid, props in response.items()
    }
