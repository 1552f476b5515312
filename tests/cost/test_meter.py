"""The cost meter and price sheet: dollars from node time and API tokens."""

from __future__ import annotations

import pytest

from selbench.cost import CostMeter, load_price_sheet
from selbench.cost.prices import PriceSheet
from selbench.errors import InputError


def test_node_time_is_charged_at_the_study_rate():
    meter = CostMeter("score:length", device=("cuda", 8))
    meter.add_seconds(1800)  # half an hour of the 8xA6000 node at 8 USD/hour
    record = meter.stop()
    assert record.wall_seconds == pytest.approx(1800, abs=0.01)
    assert record.node_usd == pytest.approx(4.0, abs=1e-4)
    assert record.device_kind == "cuda" and record.device_count == 8


def test_api_tokens_are_priced_per_million_and_by_model_family():
    with CostMeter("score:alpagasus", device=("cpu", 1)) as meter:
        meter.add_api_tokens("gpt-4-turbo-2024-04-09", 1_000_000, 100_000)
        meter.add_api_tokens("unknown-local-judge", 5_000, 5)
        meter.add_tokens(42)
    record = meter.record
    assert record.api_input_tokens == 1_005_000 and record.api_output_tokens == 100_005
    assert record.api_usd == pytest.approx(10.0 + 3.0)
    assert record.usd == pytest.approx(record.api_usd + record.node_usd)
    assert record.tokens == 42


def test_price_sheet_yaml_overrides_defaults(tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text("node_usd_per_hour: {cpu: 0.5}\napi: {my-judge: {input_per_1m: 1, output_per_1m: 2}}\n")
    sheet = load_price_sheet(path)
    assert sheet.node_rate("cpu") == 0.5 and sheet.node_rate("cuda") == 8.0
    assert sheet.api_price("my-judge").output_per_1m == 2
    meter = CostMeter("x", prices=sheet, device=("cpu", 1))
    meter.add_seconds(3600)
    assert meter.stop().usd == pytest.approx(0.5, abs=1e-4)


@pytest.mark.parametrize(
    "text,field",
    [
        ("node_usd_per_hour: {cpu: -1}\n", "node_usd_per_hour.cpu"),
        ("api: {j: {input_per_1m: 1}}\n", "api.j"),
    ],
)
def test_bad_price_sheet_names_the_field(tmp_path, text, field):
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        load_price_sheet(path)
    assert err.value.field == field and str(path) in err.value.one_line()


def test_records_add_up():
    a = CostMeter("score", device=("cpu", 1))
    a.add_seconds(10)
    b = CostMeter("select", device=("cpu", 1))
    b.add_seconds(5)
    total = a.stop() + b.stop()
    assert total.wall_seconds == pytest.approx(15, abs=0.01)
    assert PriceSheet().node_rate("anything") == 8.0
