"""Tests for alerts.rules: the rules file, errors that name file and field, layering."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from alerts.layers import (
    ProductRow,
    StoredRules,
    product_rules,
    resolve,
    rule_layers,
    settings_rules,
)
from alerts.rules import (
    RuleSet,
    load_rules_file,
    parse_definition,
    rules_from_dict,
    rules_from_text,
)
from coldchain.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "rules" / "example.toml"
GTIN = "09521234543213"


def minimal(**overrides: Any) -> dict[str, Any]:
    """A minimal valid rules file plus overrides."""
    data: dict[str, Any] = {"products": {GTIN: {"temperature": {"high_c": 8.0}}}}
    data.update(overrides)
    return data


def test_the_example_file_is_valid() -> None:
    rules = load_rules_file(EXAMPLE)
    assert rules.products[GTIN].temperature is not None
    assert rules.shipments["SHP-0001"].temperature is not None
    assert rules.escalation is not None
    assert [t.name for t in rules.escalation.tiers] == [
        "Control tower",
        "QA on call",
        "Head of quality",
    ]


def test_a_typo_names_the_file_and_the_field_with_a_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(f'[products."{GTIN}"]\ntemperature = {{ hihg_c = 8 }}\n')
    with pytest.raises(ConfigError) as err:
        load_rules_file(path)
    message = str(err.value)
    assert str(path) in message
    assert f"products.{GTIN}.temperature" in message
    assert "unknown field 'hihg_c'; did you mean 'high_c'?" in message


@pytest.mark.parametrize(
    ("overrides", "field", "text"),
    [
        ({"defaults": {"budget": {"warning_share": 1.5}}}, "defaults.budget.warning_share", "1"),
        ({"defaults": {"tempreature": {}}}, "defaults", "did you mean 'temperature'"),
        ({"products": {"123": {}}}, "products", "GTIN"),
        (
            {"products": {GTIN: {"temperature": {"low_c": 9, "high_c": 8}}}},
            f"products.{GTIN}.temperature",
            "low_c (9.0) must be below high_c (8.0)",
        ),
        (
            {
                "escalation": {
                    "tiers": [
                        {"name": "a"},
                        {"name": "b", "after_min": 10},
                        {"name": "c", "after_min": 5},
                    ]
                }
            },
            "escalation.tiers",
            "must be greater",
        ),
        (
            {"escalation": {"tiers": [{"name": "a", "emails": ["nobody"]}]}},
            "escalation.tiers[0].emails[0]",
            "pattern",
        ),
        ({"defaults": {"forecast": {"model": "cubic"}}}, "defaults.forecast.model", "auto"),
    ],
)
def test_invalid_values_are_errors_naming_the_field(
    overrides: dict[str, Any], field: str, text: str
) -> None:
    with pytest.raises(ConfigError) as err:
        rules_from_dict(minimal(**overrides), source="rules.toml")
    message = str(err.value)
    assert f"rules.toml: {field}" in message, message
    assert text in message


@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
def test_infinity_and_nan_are_errors_naming_the_field(tmp_path: Path, value: str) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(f"[defaults]\ntemperature = {{ high_c = {value} }}\n")
    with pytest.raises(ConfigError) as err:
        load_rules_file(path)
    assert f"{path}: defaults.temperature.high_c: " in str(err.value)
    assert "finite number" in str(err.value)
    with pytest.raises(ConfigError, match=r"api: mkt\.limit_c: .*finite"):
        parse_definition({"mkt": {"limit_c": float(value)}}, source="api")


def test_yaml_and_toml_read_the_same(tmp_path: Path) -> None:
    yml = tmp_path / "rules.yaml"
    yml.write_text(f'products:\n  "{GTIN}":\n    temperature: {{high_c: 8.0}}\n')
    assert load_rules_file(yml) == rules_from_dict(minimal())
    with pytest.raises(ConfigError, match="not valid TOML"):
        rules_from_text("[products\n", source="bad.toml")


def test_gtin_keys_are_normalised() -> None:
    rules = rules_from_dict({"products": {"9521234543213": {}}})  # GTIN-13
    assert list(rules.products) == [GTIN]


def test_layers_merge_field_by_field() -> None:
    row = ProductRow(GTIN, "Vaccine", 2.0, 8.0, 0.0, 900, 72 * 3600, 83144.0, None, None, None)
    file = load_rules_file(EXAMPLE)
    rules = resolve(
        [
            (
                "settings",
                settings_rules(offline_factor=10, battery_threshold=0.2, clear_delay_s=300),
            ),
            ("defaults", file.defaults),
            ("row", product_rules(row)),
            ("file product", file.products[GTIN]),
            ("file shipment", file.shipments["SHP-0001"]),
        ]
    )
    assert rules.temperature is not None
    # The shipment changed only the delay; the range is the product's.
    assert (rules.temperature.low_c, rules.temperature.high_c) == (2.0, 8.0)
    assert rules.temperature.alarm_delay_min == 5
    assert rules.temperature.clear_delay_min == 10  # from the file's product section
    assert rules.budget is not None and rules.budget.hours == 72
    assert rules.offline is not None and rules.offline.factor == 10
    assert rules.battery is not None and rules.battery.below == 0.2
    snapshot = rules.snapshot("temperature", interval_s=60)
    assert snapshot["alarm_delay_min"] == 5 and snapshot["interval_s"] == 60
    assert snapshot["sources"] == ["settings", "defaults", "row", "file product", "file shipment"]


def test_product_row_defaults() -> None:
    row = ProductRow(GTIN, "CRT", 15.0, 25.0, None, 0, None, 83144.0, 25.0, 10.0, 70.0)
    rules = resolve([("row", product_rules(row))])
    assert rules.budget is None  # no stability budget on the row
    assert rules.mkt is not None and (rules.mkt.limit_c, rules.mkt.window_h) == (25.0, 720.0)
    assert rules.humidity is not None and (rules.humidity.min_rh, rules.humidity.max_rh) == (10, 70)
    # A freeze limit inside the range cannot be told from "low": the range wins.
    inside = ProductRow(GTIN, "odd", 2.0, 8.0, 3.0)
    assert resolve([("row", product_rules(inside))]).temperature.freeze_c is None  # type: ignore[union-attr]


def test_disabled_or_thresholdless_rules_are_off() -> None:
    rules = resolve(
        [
            ("a", RuleSet.model_validate({"temperature": {"high_c": 8}, "budget": {}})),
            ("b", RuleSet.model_validate({"temperature": {"enabled": False}})),
        ]
    )
    assert rules.temperature is None and rules.budget is None


def test_an_invalid_combination_names_the_layer_and_can_be_skipped() -> None:
    low = RuleSet.model_validate({"temperature": {"low_c": 2, "high_c": 8}})
    bad = RuleSet.model_validate({"temperature": {"low_c": 9}})
    with pytest.raises(ConfigError, match="shipment SHP-1"):
        resolve([("product", low), ("shipment SHP-1", bad)])
    skipped: list[str] = []
    rules = resolve(
        [("product", low), ("shipment SHP-1", bad)], on_error=lambda s, _e: skipped.append(s)
    )
    assert skipped == ["shipment SHP-1"] and rules.temperature.low_c == 2  # type: ignore[union-attr]


def test_api_definitions_are_validated_the_same_way() -> None:
    assert parse_definition({"battery": {"below": 0.3}}, source="api").battery is not None
    with pytest.raises(ConfigError, match=r"api product 1: battery\.belwo"):
        parse_definition({"battery": {"belwo": 0.3}}, source="api product 1")
    with pytest.raises(ConfigError, match="must be an object"):
        parse_definition([1], source="api")


def test_rule_layers_are_stacked_and_named_as_the_alerts_list_them() -> None:
    base = settings_rules(offline_factor=10, battery_threshold=0.2, clear_delay_s=300)
    file = load_rules_file(EXAMPLE)
    row = ProductRow(GTIN, "Vaccine", 2.0, 8.0, 0.0, 900, 72 * 3600, 83144.0, None, None, None)
    product_stored = StoredRules(3, {"temperature": {"alarm_delay_min": 20}})
    shipment_stored = StoredRules(2, {"temperature": {"alarm_delay_min": 5}})

    def stack(*, shipment: str | None = "SHP-0001") -> list[tuple[str, RuleSet | None]]:
        return rule_layers(
            base,
            file,
            "rules.toml",
            product=row,
            product_stored=product_stored,
            shipment=shipment,
            shipment_stored=shipment_stored,
        )

    layers = stack()
    assert [name for name, _ in layers] == [
        "settings",
        "rules.toml: defaults",
        f"product {GTIN} (row)",
        f"rules.toml: products.{GTIN}",
        f"stored product rules {GTIN} v3",
        "rules.toml: shipments.SHP-0001",
        "stored shipment rules SHP-0001 v2",
    ]
    assert layers[0][1] is base and layers[1][1] == file.defaults
    assert layers[2][1] == product_rules(row)
    assert layers[3][1] == file.products[GTIN] and layers[5][1] == file.shipments["SHP-0001"]
    assert layers[4][1] == parse_definition(product_stored.definition, source="x")
    assert layers[6][1] == parse_definition(shipment_stored.definition, source="x")
    # Later layers win: the stored shipment rules set the delay last.
    assert resolve(layers).temperature.alarm_delay_min == 5  # type: ignore[union-attr]

    # A product's own rules end with its stored layer; absent pieces are named, and None.
    assert [name for name, _ in stack(shipment=None)][-1] == f"stored product rules {GTIN} v3"
    bare = rule_layers(
        base,
        file,
        "rules file",
        product=None,
        product_stored=product_stored,  # without a product row: not stacked
        shipment="SHP-9",
        shipment_stored=None,
    )
    assert bare == [
        ("settings", base),
        ("rules file: defaults", file.defaults),
        ("rules file: shipments.SHP-9", None),
        ("stored shipment rules SHP-9", None),
    ]


def test_a_broken_stored_layer_is_reported_and_left_out_or_raises() -> None:
    base = settings_rules(offline_factor=10, battery_threshold=0.2, clear_delay_s=300)
    row = ProductRow(GTIN, "Vaccine", 2.0, 8.0)
    broken = StoredRules(4, {"temperature": {"hihg_c": 9}})
    errors: list[tuple[str, str]] = []
    layers = rule_layers(
        base,
        rules_from_dict({}),
        "rules.toml",
        product=row,
        product_stored=None,
        shipment="SHP-1",
        shipment_stored=broken,
        on_error=lambda source, exc: errors.append((source, str(exc))),
    )
    assert layers[-1] == ("stored shipment rules SHP-1 v4", None)
    assert [name for name, _ in layers][:5] == [
        "settings",
        "rules.toml: defaults",
        f"product {GTIN} (row)",
        f"rules.toml: products.{GTIN}",
        f"stored product rules {GTIN}",
    ]
    [(source, message)] = errors
    assert source == "stored shipment rules SHP-1 v4"
    assert "stored shipment rules SHP-1 v4: temperature.hihg_c: unknown field" in message
    rules = resolve(layers)
    assert rules.temperature is not None and rules.temperature.high_c == 8.0
    assert rules.sources == ("settings", "rules.toml: defaults", f"product {GTIN} (row)")

    with pytest.raises(ConfigError, match="stored shipment rules SHP-1 v4"):
        rule_layers(
            base,
            rules_from_dict({}),
            "rules.toml",
            product=row,
            product_stored=None,
            shipment="SHP-1",
            shipment_stored=broken,
        )


def test_a_broken_product_row_is_reported_with_its_layer_name() -> None:
    base = settings_rules(offline_factor=10, battery_threshold=0.2, clear_delay_s=300)
    backwards = ProductRow(GTIN, "odd", 8.0, 2.0)  # range upside down: not a valid rule
    errors: list[str] = []
    layers = rule_layers(
        base,
        rules_from_dict({}),
        "rules.toml",
        product=backwards,
        product_stored=None,
        shipment="SHP-1",
        shipment_stored=None,
        on_error=lambda source, _exc: errors.append(source),
    )
    assert (f"product {GTIN} (row)", None) in layers and errors == [f"product {GTIN} (row)"]
