"""Tests of the density CLI commands (click command objects)."""

import csv
import json

import pytest
from click.testing import CliRunner

from poromet.cli_density import density, filling_rate

SHEET = ("sample,step,mass_mg,area_cm2,thickness_um,true_density_g_cm3\n"
         "A1,coated,36,2,100,4.70\n"
         "A1,densifying,54,2,80,4.70\n"
         "B1,,27,1,80,4.70\n")

PIPE = """name = "t"
[density]
rate_of_decrease_min = 0.77
rate_step = "densifying"
[spec]
relative_density_min = 0.7
"""


@pytest.fixture
def sheet(tmp_path):
    p = tmp_path / "sheet.csv"
    p.write_text(SHEET, encoding="utf-8")
    return p


@pytest.fixture
def pipeline(tmp_path):
    p = tmp_path / "t.toml"
    p.write_text(PIPE, encoding="utf-8")
    return p


def read_csv(path):
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def run(cmd, args):
    return CliRunner().invoke(cmd, [str(a) for a in args])


def test_density_json_has_every_value(sheet, pipeline):
    r = run(density, [sheet, "--pipeline", pipeline, "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    groups = {g["sample"]: g["steps"] for g in doc["samples"]}
    coated, dens = groups["A1"]
    # coated: 18 mg/cm² at 100 µm = 1.8 g/cm³ -> 38.30 % filling, 61.70 % porosity
    assert coated["apparent_density_g_cm3"] == pytest.approx(1.8)
    assert coated["porosity_pct"] == pytest.approx(100 - 180 / 4.7, abs=1e-9)
    # densifying: 3.375 g/cm³ -> 71.81 %, porosity 28.19 %
    assert dens["filling_rate_pct"] == pytest.approx(71.8085, abs=1e-4)
    rate = (61.7021 - 28.1915) / 61.7021 * 100  # 54.31 %
    assert dens["rate_of_decrease_pct"] == pytest.approx(rate, abs=1e-3)
    assert dens["rate_verdict"] == "fail"  # below 77 %
    assert dens["relative_density_verdict"] == "pass"  # 0.718 >= 0.7
    assert doc["pipeline"]["name"] == "t" and doc["errors"] == []


def test_density_table_output(sheet):
    r = run(density, [sheet])
    assert r.exit_code == 0, r.output
    assert "71.81" in r.stdout and "28.19" in r.stdout and "densifying" in r.stdout


def test_density_out_dir(sheet, tmp_path):
    out = tmp_path / "res"
    r = run(density, [sheet, "-o", out])
    assert r.exit_code == 0, r.output
    rows = read_csv(out / "density.csv")
    assert [row["sample"] for row in rows] == ["A1", "A1", "B1"]
    assert json.loads((out / "density.json").read_text(encoding="utf-8"))["samples"]


@pytest.mark.parametrize("row, column, text", [
    ("C1,,-5,1,80,4.7", "mass_mg", "got '-5'"),
    ("C1,,5,1,,4.7", "thickness_um", "empty"),
    ("C1,,5,1,80,abc", "true_density_g_cm3", "allowed: a number"),
])
def test_bad_row_exits_1_names_row_and_column_keeps_others(tmp_path, row, column, text):
    p = tmp_path / "s.csv"
    p.write_text(SHEET + row + "\n", encoding="utf-8")
    r = run(density, [p, "--json", "-o", tmp_path / "o"])
    assert r.exit_code == 1
    assert f"row 4 (line 5, sample 'C1'), column {column}" in r.stderr and text in r.stderr
    doc = json.loads(r.stdout)
    assert [g["sample"] for g in doc["samples"]] == ["A1", "B1", "C1"]
    assert doc["errors"][0]["row"] == 4
    rows = read_csv(tmp_path / "o" / "density.csv")
    assert [row["status"] for row in rows] == ["ok", "ok", "ok", "error"]


def test_unknown_material_exits_1(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("sample,mass_mg,area_cm2,thickness_um,composition\nM1,54,2,80,NCM622:80;FOO:20\n",
                 encoding="utf-8")
    r = run(density, [p])
    assert r.exit_code == 1
    assert "row 1 (line 2, sample 'M1'), column composition: unknown material 'FOO'" in r.stderr


def test_missing_column_exits_1(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("sample,mass_mg,area_cm2,true_density_g_cm3\nA,1,1,1\n", encoding="utf-8")
    r = run(density, [p])
    assert r.exit_code == 1 and "missing column 'thickness_um'" in r.stderr


def test_usage_errors_exit_2(sheet, tmp_path):
    assert run(density, [tmp_path / "nope.csv"]).exit_code == 2
    r = run(density, [sheet, "--pipeline", "no-such-pipeline"])
    assert r.exit_code == 2 and "no-such-pipeline" in r.output


def test_filling_rate_single_calculation():
    r = run(filling_rate, ["--mass-mg", 54, "--area-cm2", 2, "--thickness-um", 80,
                           "--true-density", 4.70, "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["apparent_density_g_cm3"] == pytest.approx(3.375)
    assert d["filling_rate_pct"] == pytest.approx(71.8085, abs=1e-4)
    assert d["porosity_pct"] + d["filling_rate_pct"] == pytest.approx(100)
    r = run(filling_rate, ["--coating-weight-mg-cm2", 27, "--thickness-um", 80, "--true-density", 4.7])
    assert r.exit_code == 0 and "71.81 %" in r.stdout


def test_filling_rate_composition(tmp_path):
    m = tmp_path / "m.toml"
    m.write_text("[materials.A]\ntrue_density_g_cm3 = 2.0\n[materials.B]\ntrue_density_g_cm3 = 4.0\n",
                 encoding="utf-8")
    r = run(filling_rate, ["--mass-mg", 2500, "--volume-cm3", 1, "--composition", "A:1;B:1",
                           "--materials", m, "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["true_density_g_cm3"] == pytest.approx(1 / 0.375)
    assert d["filling_rate_pct"] == pytest.approx(2.5 * 0.375 * 100)


@pytest.mark.parametrize("args, text", [
    (["--mass-mg", -54, "--area-cm2", 2, "--thickness-um", 80, "--true-density", 4.7], "--mass-mg: got -54"),
    (["--mass-mg", 54, "--thickness-um", 80, "--true-density", 4.7], "none of the option sets"),
    (["--mass-mg", 54, "--area-cm2", 2, "--thickness-um", 80], "--true-density or --composition"),
    (["--mass-mg", 54, "--area-cm2", 2, "--thickness-um", 80, "--composition", "XYZ:1"], "unknown material"),
])
def test_filling_rate_bad_input_exit_2(args, text):
    r = run(filling_rate, args)
    assert r.exit_code == 2 and text in r.output
