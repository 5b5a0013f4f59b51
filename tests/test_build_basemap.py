"""scripts/build_basemap.py: TopoJSON in, the basemap's GeoJSON out (a tiny hand-made topology:
two unit squares side by side, sharing one edge, quantised as world-atlas quantises)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

# scripts/ is a folder of commands, not a package: load the script from its file.
_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "build_basemap.py"
_spec = importlib.util.spec_from_file_location("build_basemap", _SCRIPT)
assert _spec is not None and _spec.loader is not None
build_basemap = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_basemap)
borders, decode_arcs, land, main = (
    build_basemap.borders,
    build_basemap.decode_arcs,
    build_basemap.land,
    build_basemap.main,
)

# Arcs in quantised, delta-encoded form (scale 1, translate (10, 40)):
#   0: the shared edge (1,0)→(1,1);  1: the left square's outer path (1,1)→(0,1)→(0,0)→(1,0);
#   2: the right square's outer path (1,0)→(2,0)→(2,1)→(1,1).
TOPOLOGY: dict[str, Any] = {
    "type": "Topology",
    "transform": {"scale": [1, 1], "translate": [10, 40]},
    "arcs": [
        [[1, 0], [0, 1]],
        [[1, 1], [-1, 0], [0, -1], [1, 0]],
        [[1, 0], [1, 0], [0, 1], [-1, 0]],
    ],
    "objects": {
        "countries": {
            "type": "GeometryCollection",
            "geometries": [
                {"type": "Polygon", "arcs": [[0, 1]]},
                {"type": "Polygon", "arcs": [[2, -1]]},
            ],
        },
        "land": {
            "type": "GeometryCollection",
            "geometries": [{"type": "MultiPolygon", "arcs": [[[1, 2]]]}],
        },
    },
}


def test_arcs_are_delta_decoded_and_placed() -> None:
    arcs = decode_arcs(TOPOLOGY)
    assert arcs[0] == [[11.0, 40.0], [11.0, 41.0]]
    assert arcs[2] == [[11.0, 40.0], [12.0, 40.0], [12.0, 41.0], [11.0, 41.0]]


def test_land_is_one_closed_ring_and_borders_only_the_shared_edge() -> None:
    arcs = decode_arcs(TOPOLOGY)
    (mass,) = land(TOPOLOGY, arcs)["features"]
    (ring,) = mass["geometry"]["coordinates"]
    assert ring[0] == ring[-1] and len(ring) == 7  # the outline of both squares, closed
    assert {tuple(p) for p in ring} == {(10, 40), (11, 40), (12, 40), (12, 41), (11, 41), (10, 41)}
    (lines,) = borders(TOPOLOGY, arcs)["features"]
    assert lines["geometry"]["coordinates"] == [[[11.0, 40.0], [11.0, 41.0]]]


def test_the_script_writes_both_files_and_refuses_other_json(tmp_path: Path) -> None:
    source = tmp_path / "countries.json"
    source.write_text(json.dumps(TOPOLOGY), encoding="utf-8")
    assert main([str(source), str(tmp_path / "out")]) == 0
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert written == {"land.geojson", "borders.geojson"}
    other = tmp_path / "other.json"
    other.write_text('{"type": "FeatureCollection"}', encoding="utf-8")
    assert main([str(other), str(tmp_path / "out2")]) == 2
