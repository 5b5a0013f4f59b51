"""Build the offline basemap (dashboard/assets/basemap/) from the npm package ``world-atlas``.

The maps draw their own land, coastlines and country borders from two GeoJSON files the app
serves itself, so they work with no internet (dashboard/maps.py). They come from Natural Earth
(public domain) as redistributed in TopoJSON by ``world-atlas`` (ISC licence); this script turns
that TopoJSON into GeoJSON once, and the result is committed with its provenance
(dashboard/assets/basemap/PROVENANCE.md). Run it again only to change the source or the scale::

    npm pack world-atlas@2.0.2 && tar xzf world-atlas-2.0.2.tgz
    python scripts/build_basemap.py package/countries-50m.json dashboard/assets/basemap

It writes ``land.geojson`` (the land as polygons: filled, and outlined as the coastline) and
``borders.geojson`` (the land borders between countries: the arcs two countries share, as
TopoJSON's ``mesh(a !== b)``). Coordinates are rounded to 3 decimals (about 100 m, finer than
the 1:50m data) to keep the files small. Plain Python, no dependency: decoding TopoJSON is
delta-decoding quantised arcs and stitching them into rings.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

Point = list[float]
DECIMALS = 3


def decode_arcs(topology: dict[str, Any]) -> list[list[Point]]:
    """The topology's arcs as absolute longitude/latitude points (quantised and delta-encoded
    when the topology has a ``transform``)."""
    transform = topology.get("transform")
    arcs: list[list[Point]] = []
    for arc in topology["arcs"]:
        if transform is None:
            arcs.append([[float(x), float(y)] for x, y, *_ in arc])
            continue
        (sx, sy), (tx, ty) = transform["scale"], transform["translate"]
        x = y = 0
        points: list[Point] = []
        for dx, dy, *_ in arc:
            x, y = x + dx, y + dy
            points.append([x * sx + tx, y * sy + ty])
        arcs.append(points)
    return arcs


def _arc(arcs: list[list[Point]], index: int) -> list[Point]:
    # A negative index is the reversed arc ~index (TopoJSON's one's complement).
    return arcs[index] if index >= 0 else arcs[~index][::-1]


def ring(arcs: list[list[Point]], indexes: list[int]) -> list[Point]:
    """One closed ring stitched from arcs: each arc starts where the previous one ended."""
    points: list[Point] = []
    for index in indexes:
        part = _arc(arcs, index)
        points.extend(part if not points else part[1:])
    return [[round(x, DECIMALS), round(y, DECIMALS)] for x, y in points]


def _geometries(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if obj["type"] == "GeometryCollection":
        for child in obj["geometries"]:
            yield from _geometries(child)
    else:
        yield obj


def land(topology: dict[str, Any], arcs: list[list[Point]]) -> dict[str, Any]:
    """The ``land`` object as one feature per land mass (polygons with their holes)."""
    features = []
    for geometry in _geometries(topology["objects"]["land"]):
        if geometry["type"] == "Polygon":
            polygons = [geometry["arcs"]]
        elif geometry["type"] == "MultiPolygon":
            polygons = geometry["arcs"]
        else:
            continue
        for polygon in polygons:
            features.append(
                {
                    "type": "Feature",
                    "properties": {},
                    "geometry": {
                        "type": "Polygon",
                        "coordinates": [ring(arcs, r) for r in polygon],
                    },
                }
            )
    return {"type": "FeatureCollection", "features": features}


def borders(topology: dict[str, Any], arcs: list[list[Point]]) -> dict[str, Any]:
    """The arcs two different countries share: the land borders, without the coastlines."""
    owners: dict[int, set[int]] = {}
    for n, geometry in enumerate(_geometries(topology["objects"]["countries"])):
        rings = (
            [r for polygon in geometry["arcs"] for r in polygon]
            if geometry["type"] == "MultiPolygon"
            else geometry.get("arcs", [])
        )
        for r in rings:
            for index in r:
                owners.setdefault(index if index >= 0 else ~index, set()).add(n)
    lines = [
        [[round(x, DECIMALS), round(y, DECIMALS)] for x, y in arcs[i]]
        for i in sorted(owners)
        if len(owners[i]) > 1
    ]
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {},
                "geometry": {"type": "MultiLineString", "coordinates": lines},
            }
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("topojson", type=Path, help="world-atlas countries-50m.json")
    parser.add_argument("out_dir", type=Path, help="where land.geojson and borders.geojson go")
    args = parser.parse_args(argv)
    topology = json.loads(args.topojson.read_text(encoding="utf-8"))
    if topology.get("type") != "Topology" or not {"land", "countries"} <= set(
        topology.get("objects", {})
    ):
        print(f"{args.topojson}: not a world-atlas countries topology", file=sys.stderr)
        return 2
    arcs = decode_arcs(topology)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    written = Counter[str]()
    for name, collection in (("land", land(topology, arcs)), ("borders", borders(topology, arcs))):
        path = args.out_dir / f"{name}.geojson"
        path.write_text(json.dumps(collection, separators=(",", ":")), encoding="utf-8")
        written[name] = path.stat().st_size
    for name, size in written.items():
        print(f"{name}.geojson: {size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
