"""Tests of poromet.sheet: samples sheets, materials, steps, the join."""

import csv
import dataclasses
import json
import math
from dataclasses import dataclass

import pytest

from poromet.errors import DensityError
from poromet.pipeline import pipeline_from_dict
from poromet.sheet import (
    DENSITY_COLUMNS,
    JOIN_KEYS,
    compute_sheet,
    density_columns,
    join_density,
    parse_composition,
    read_materials,
    write_density,
)

MATERIALS = """
[materials.A]
true_density_g_cm3 = 2.0
aliases = ["alpha"]
source = "test"

[materials.B]
true_density_g_cm3 = 4.0
"""

PLAIN = "sample,mass_mg,area_cm2,thickness_um,true_density_g_cm3\nA1,54,2,80,4.70\nA2,27,1,100,4.70\n"


def write(tmp_path, name, text, encoding="utf-8"):
    p = tmp_path / name
    p.write_text(text, encoding=encoding)
    return p


@pytest.fixture
def mats(tmp_path):
    return write(tmp_path, "mats.toml", MATERIALS)


def pipe(**density):
    spec = density.pop("spec", {})
    return pipeline_from_dict({"density": density, "spec": spec})


# -- materials and compositions -------------------------------------------------------


def test_shipped_materials_file_reads_and_has_sources():
    m = read_materials()
    for name in ("ncm622", "se", "cb", "sbr"):  # the seed's cathode mixture
        assert name in m
        assert 0.5 < m[name].true_density_g_cm3 < 10
        assert m[name].source
    assert m["nmc622"] is m["ncm622"]  # alias


def test_materials_errors(tmp_path):
    bad = write(tmp_path, "m.toml", "[materials.X]\ntrue_density_g_cm3 = -1\n")
    with pytest.raises(DensityError, match=r"m.toml: materials.X.true_density_g_cm3: got -1"):
        read_materials(bad)
    bad = write(tmp_path, "m2.toml", "[materials.X]\ndensity = 2\n")
    with pytest.raises(DensityError, match=r"materials.X.density: unknown key"):
        read_materials(bad)
    bad = write(tmp_path, "m3.toml", "[materials.X]\ntrue_density_g_cm3 = 2\n"
                "[materials.Y]\ntrue_density_g_cm3 = 3\naliases = ['x']\n")
    with pytest.raises(DensityError, match="'x' is also used by 'X'"):
        read_materials(bad)
    with pytest.raises(DensityError, match="not found"):
        read_materials(tmp_path / "nope.toml")


def test_parse_composition():
    assert parse_composition("NCM622:80;SE:17;CB:2;SBR:1") == {
        "NCM622": 80.0, "SE": 17.0, "CB": 2.0, "SBR": 1.0}
    assert parse_composition("carbon black = 2 | A:3") == {"carbon black": 2.0, "A": 3.0}
    assert parse_composition("A:80,5;B:19,5", decimal_comma=True) == {"A": 80.5, "B": 19.5}
    with pytest.raises(DensityError, match="parts of 'A' are 'x'"):
        parse_composition("A:x;B:1")
    with pytest.raises(DensityError, match="twice"):
        parse_composition("A:1;A:2")


# -- plain sheets -------------------------------------------------------------------


def test_brief_columns_work_as_they_are(tmp_path):
    r = compute_sheet(write(tmp_path, "s.csv", PLAIN), pipeline=pipe())
    assert r.ok and len(r.steps) == 2
    a1, a2 = r.steps
    assert a1.apparent_density_g_cm3 == pytest.approx(3.375)
    assert a1.filling_rate_pct == pytest.approx(71.8085, abs=1e-4)
    assert a1.porosity_pct == pytest.approx(100 - a1.filling_rate_pct)
    assert a2.apparent_density_g_cm3 == pytest.approx(2.7)  # 27 mg/cm² at 100 µm
    assert a1.selected and a1.rate_of_decrease_pct is None


def test_semicolon_decimal_comma_and_bom(tmp_path):
    text = "Sample;Mass_mg;area_cm2;thickness_um;true_density_g_cm3\nA1;54,0;2;80;4,70\n"
    p = write(tmp_path, "eu.csv", text, encoding="utf-8-sig")
    r = compute_sheet(p, pipeline=pipe())
    assert r.ok
    assert r.steps[0].filling_rate_pct == pytest.approx(71.8085, abs=1e-4)


def test_decimal_comma_refused_in_comma_sheet(tmp_path):
    text = 'sample,mass_mg,area_cm2,thickness_um,true_density_g_cm3\nA1,"54,5",2,80,4.70\nA2,54,2,80,4.7\n'
    r = compute_sheet(write(tmp_path, "s.csv", text), pipeline=pipe())
    assert [s.sample for s in r.steps] == ["A2"]
    (e,) = r.errors
    assert e.row == 1 and e.column == "mass_mg"
    assert "row 1 (line 2, sample 'A1'), column mass_mg" in e.message


def test_all_bad_rows_reported_good_rows_kept(tmp_path, mats):
    text = ("sample,mass_mg,area_cm2,thickness_um,composition\n"
            "G1,54,2,80,A:1;B:1\n"
            "N1,-5,2,80,A:1\n"
            "U1,54,2,80,A:1;XX:1\n"
            "E1,54,,80,A:1\n"
            ",54,2,80,A:1\n"
            "G2,27,1,80,alpha\n")
    r = compute_sheet(write(tmp_path, "s.csv", text), materials=mats, pipeline=pipe())
    assert [s.sample for s in r.steps] == ["G1", "G2"]
    by_row = {e.row: e for e in r.errors}
    assert set(by_row) == {2, 3, 4, 5}
    assert by_row[2].column == "mass_mg" and "got '-5'" in by_row[2].message
    assert by_row[3].column == "composition" and "unknown material 'XX'" in by_row[3].message
    assert by_row[4].column == "area_cm2" and "sample 'E1'" in by_row[4].message
    assert by_row[5].column == "sample"
    # G1: 1/rho = 0.5/2 + 0.5/4 -> 2.6667; G2 pure A (alias) -> 2.0
    assert r.steps[0].true_density_g_cm3 == pytest.approx(1 / 0.375)
    assert r.steps[1].true_density_g_cm3 == pytest.approx(2.0)
    assert r.steps[1].filling_rate_pct == pytest.approx(3.375 / 2.0 * 100)


def test_several_bad_cells_in_one_row_all_named(tmp_path, mats):
    text = "sample,mass_mg,area_cm2,thickness_um,composition\nX,-1,2,80,A:1;Q:1\n"
    r = compute_sheet(write(tmp_path, "s.csv", text), materials=mats, pipeline=pipe())
    (e,) = r.errors
    assert e.column == "mass_mg, composition"
    assert "column mass_mg" in e.message and "column composition" in e.message


@pytest.mark.parametrize("header, missing", [
    ("mass_mg,area_cm2,thickness_um,true_density_g_cm3", "sample"),
    ("sample,mass_mg,area_cm2,true_density_g_cm3", "thickness_um"),
    ("sample,mass_mg,area_cm2,thickness_um", "true_density_g_cm3"),
])
def test_missing_column_refuses_sheet(tmp_path, header, missing):
    p = write(tmp_path, "s.csv", header + "\n" + ",".join(["1"] * len(header.split(","))) + "\n")
    with pytest.raises(DensityError, match=f"s.csv: missing column '{missing}'"):
        compute_sheet(p, pipeline=pipe())


def test_geometry_sets_must_agree(tmp_path):
    # 54 mg / 2 cm² and 27 mg/cm² agree; 30 mg/cm² does not
    text = ("sample,mass_mg,area_cm2,thickness_um,coating_weight_mg_cm2,true_density_g_cm3\n"
            "OK,54,2,80,27,4.7\nBAD,54,2,80,30,4.7\n")
    r = compute_sheet(write(tmp_path, "s.csv", text), pipeline=pipe())
    assert [s.sample for s in r.steps] == ["OK"]
    assert any("agree" in n for n in r.steps[0].notes)
    assert r.errors[0].column == "thickness_um" and "give" in r.errors[0].message


def test_pellet_and_volume_and_direct(tmp_path):
    text = ("sample,mass_mg,diameter_mm,thickness_um,volume_cm3,apparent_density_g_cm3,true_density_g_cm3\n"
            "P,100,10,500,,,5\nV,2500,,,1,,5\nD,,,,,4,5\n")
    r = compute_sheet(write(tmp_path, "s.csv", text), pipeline=pipe())
    assert r.ok
    rho = {s.sample: s.apparent_density_g_cm3 for s in r.steps}
    assert rho == pytest.approx({"P": 2.546479, "V": 2.5, "D": 4.0}, abs=1e-6)
    assert r.steps[2].relative_density == pytest.approx(0.8)


def test_unused_columns_are_warned_not_fatal(tmp_path):
    r = compute_sheet(write(tmp_path, "s.csv", PLAIN.replace("true_density_g_cm3\n", "true_density_g_cm3,operator\n")
                            .replace("4.70\n", "4.70,kim\n")), pipeline=pipe())
    assert r.ok and any("operator" in w for w in r.warnings)


def test_toml_sheet_with_materials_and_inline_composition(tmp_path):
    text = """
[materials.Z]
true_density_g_cm3 = 3.0

[[sample]]
sample = "T1"
coating_weight_mg_cm2 = 27.0
thickness_um = 80.0
true_density_g_cm3 = 4.70

[[sample]]
sample = "T2"
mass_mg = 2500
volume_cm3 = 1
composition = {Z = 1}

[[sample]]
sample = "T3"
mass_mg = -3
volume_cm3 = 1
true_density_g_cm3 = 3.0
"""
    r = compute_sheet(write(tmp_path, "s.toml", text), pipeline=pipe())
    assert [s.sample for s in r.steps] == ["T1", "T2"]
    assert r.steps[0].filling_rate_pct == pytest.approx(71.8085, abs=1e-4)
    assert r.steps[1].filling_rate_pct == pytest.approx(2.5 / 3.0 * 100)
    assert "row 3 (sample 'T3'), column mass_mg" in r.errors[0].message


# -- process steps -------------------------------------------------------------------

# Porosities of the seed's Table 3 (Example 1 / Comparative Example 3), written as
# apparent densities against a true density of 1.0 (porosity = 100 - 100 * rho_a).
STEPS = """sample,layer,step,apparent_density_g_cm3,true_density_g_cm3
EX1,cathode,coated,0.55,1.0
EX1,cathode,densifying,0.98,1.0
EX1,electrolyte,coated,0.60,1.0
EX1,electrolyte,densifying,0.98,1.0
CE3,cathode,coated,0.55,1.0
CE3,cathode,first joining,0.60,1.0
CE3,cathode,densifying,0.91,1.0
"""


def test_rates_between_steps_and_limits(tmp_path):
    p = write(tmp_path, "steps.csv", STEPS)
    r = compute_sheet(p, pipeline=pipe(rate_of_decrease_min=0.85, rate_step="densifying", layer="cathode"))
    assert r.ok
    s = {(x.sample, x.layer, x.step): x for x in r.steps}
    ex1 = s["EX1", "cathode", "densifying"]
    assert ex1.porosity_pct == pytest.approx(2.0)
    assert ex1.rate_of_decrease_pct == pytest.approx(95.56, abs=0.005)
    assert ex1.rate_verdict == "pass" and ex1.previous_step == "coated"
    ce3 = s["CE3", "cathode", "densifying"]
    assert ce3.rate_of_decrease_pct == pytest.approx((40 - 9) / 40 * 100)  # from first joining
    assert ce3.cumulative_rate_of_decrease_pct == pytest.approx(80.0)
    assert ce3.rate_verdict == "fail"  # 77.5 % < 85 %
    assert s["CE3", "cathode", "first joining"].rate_verdict is None  # not the judged step
    assert s["EX1", "electrolyte", "densifying"].rate_verdict is None  # other layer
    assert s["EX1", "electrolyte", "densifying"].rate_of_decrease_pct == pytest.approx(95.0)
    assert [x.selected for x in r.steps if x.sample == "CE3"] == [False, False, True]


def test_rate_max_limit_and_all_transitions(tmp_path):
    r = compute_sheet(write(tmp_path, "steps.csv", STEPS),
                      pipeline=pipe(rate_of_decrease_min=0.05, rate_of_decrease_max=0.30, rate_step="*"))
    v = {(x.sample, x.layer, x.step): x.rate_verdict for x in r.steps}
    assert v["CE3", "cathode", "first joining"] == "pass"   # 11.1 %
    assert v["CE3", "cathode", "densifying"] == "fail"      # 77.5 %
    assert v["EX1", "cathode", "coated"] is None


def test_min_above_max_refused(tmp_path):
    with pytest.raises(DensityError, match="rate_of_decrease_min"):
        compute_sheet(write(tmp_path, "s.csv", STEPS),
                      pipeline=pipe(rate_of_decrease_min=0.9, rate_of_decrease_max=0.3))


def test_bad_previous_step_gives_no_rate(tmp_path):
    text = STEPS.replace("CE3,cathode,first joining,0.60", "CE3,cathode,first joining,-0.60")
    r = compute_sheet(write(tmp_path, "s.csv", text), pipeline=pipe())
    ce3 = [x for x in r.steps if x.sample == "CE3" and x.step == "densifying"][0]
    assert ce3.rate_of_decrease_pct is None
    assert any("'first joining' (row 6) has an error" in n for n in ce3.notes)
    assert ce3.cumulative_rate_of_decrease_pct == pytest.approx(80.0)


def test_duplicate_steps_refused(tmp_path):
    r = compute_sheet(write(tmp_path, "s.csv", PLAIN + "A1,54,2,80,4.7\n"), pipeline=pipe())
    (e,) = r.errors
    assert e.row == 3 and e.column == "step" and "already on row 1" in e.message


def test_selected_step_and_relative_density_verdict(tmp_path):
    r = compute_sheet(write(tmp_path, "s.csv", STEPS),
                      pipeline=pipe(step="coated", spec={"relative_density_min": 0.58}))
    sel = [x for x in r.steps if x.selected]
    assert {x.step for x in sel} == {"coated"}
    verdicts = {(x.sample, x.layer): x.relative_density_verdict for x in sel}
    assert verdicts == {("EX1", "cathode"): "fail", ("EX1", "electrolyte"): "pass",
                        ("CE3", "cathode"): "fail"}
    assert all(x.relative_density_verdict is None for x in r.steps if not x.selected)


def test_filling_rate_above_100_noted(tmp_path):
    text = "sample,step,apparent_density_g_cm3,true_density_g_cm3\nS,a,0.5,1\nS,b,1.02,1\n"
    r = compute_sheet(write(tmp_path, "s.csv", text), pipeline=pipe())
    b = r.steps[1]
    assert b.porosity_pct == pytest.approx(-2.0)
    assert b.rate_of_decrease_pct is None
    assert any("above 100 %" in n for n in b.notes)


# -- output --------------------------------------------------------------------------


def test_write_density_keeps_bad_rows(tmp_path):
    text = STEPS + "BAD,cathode,coated,-1,1.0\n"
    r = compute_sheet(write(tmp_path, "s.csv", text), pipeline=pipe())
    csv_path, json_path = write_density(r, tmp_path / "out")
    with csv_path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == DENSITY_COLUMNS
    assert len(rows) == 8 and rows[-1]["status"] == "error" and rows[-1]["sample"] == "BAD"
    doc = json.loads(json_path.read_text(encoding="utf-8"))
    assert len(doc["errors"]) == 1 and doc["errors"][0]["column"] == "apparent_density_g_cm3"
    n_steps = sum(len(g["steps"]) for g in doc["samples"])
    assert n_steps == 8


# -- the join ------------------------------------------------------------------------


@dataclass(frozen=True)
class Stand:
    sample: str
    porosity_mean: float = float("nan")
    relative_density: float = float("nan")
    density: dict | None = None


def test_join_fills_density_and_flags_difference(tmp_path):
    p = write(tmp_path, "s.csv", PLAIN)
    samples = [Stand("A1", 0.25), Stand("A2", 0.40), Stand("IMG_ONLY", 0.1)]
    warns: list[str] = []
    out = join_density(samples, p, pipe(spec={"density_tolerance_pp": 5.0,
                                              "relative_density_min": 0.7}), warnings=warns)
    assert [o.sample for o in out] == ["A1", "A2", "IMG_ONLY"]
    a1 = out[0].density
    assert set(JOIN_KEYS) <= set(a1)
    assert a1["porosity_image_pct"] == pytest.approx(25.0)
    assert a1["porosity_density_pct"] == pytest.approx(28.1915, abs=1e-4)
    assert a1["difference_pp"] == pytest.approx(25.0 - 28.1915, abs=1e-4)
    assert a1["difference_flag"] is False
    assert a1["relative_density_verdict"] == "pass"
    a2 = out[1].density  # 2.7 / 4.7 -> porosity 42.55 %; image 40 %
    assert a2["difference_flag"] is False
    assert a2["relative_density_verdict"] == "fail"  # 0.574 < 0.7
    assert out[2].density["filling_rate_pct"] is None
    assert "no row for sample 'IMG_ONLY'" in out[2].density["message"]
    assert samples[0].density is None  # inputs untouched

    out = join_density([Stand("A1", 0.20)], p, pipe(spec={"density_tolerance_pp": 5.0}), warnings=warns)
    assert out[0].density["difference_flag"] is True  # 8.19 pp
    assert any("'A2' has no images" in w for w in warns)


def test_join_with_real_sample_result_and_dicts(tmp_path):
    stats = pytest.importorskip("poromet.stats")
    p = write(tmp_path, "s.csv", PLAIN)
    rec = stats.SampleResult(sample=" a1 ", porosity_mean=0.28)
    (out,) = join_density([rec], p, pipe())
    assert out.density["step"] == "" and out.density["filling_rate_pct"] == pytest.approx(71.8085, abs=1e-4)
    (d,) = join_density([{"sample": "A2", "porosity_mean": float("nan")}], p, pipe())
    assert d["density"]["difference_pp"] is None and "no image porosity" in d["density"]["message"]
    flat = density_columns(out.density)
    assert flat["density_filling_rate_pct"] == pytest.approx(71.8085, abs=1e-4)
    assert set(density_columns(None)) == set(flat)


def test_join_step_layer_and_bad_rows(tmp_path):
    text = STEPS + "BAD,cathode,coated,-1,1.0\n"
    p = write(tmp_path, "s.csv", text)
    samples = [Stand("EX1", 0.03), Stand("CE3", 0.09), Stand("BAD", 0.1)]
    warns: list[str] = []
    out = join_density(samples, p, pipe(), warnings=warns)
    assert "layers 'cathode', 'electrolyte'" in out[0].density["message"]
    assert out[1].density["step"] == "densifying"
    assert out[1].density["difference_pp"] == pytest.approx(0.0, abs=1e-9)
    assert "column apparent_density_g_cm3" in out[2].density["message"]
    assert any("row 8" in w for w in warns)
    out = join_density(samples, p, pipe(layer="cathode", step="first joining"))
    assert out[1].density["porosity_density_pct"] == pytest.approx(40.0)
    assert "no step 'first joining'" in out[0].density["message"]
    assert math.isclose(out[1].density["rate_of_decrease_pct"], (45 - 40) / 45 * 100)
    assert dataclasses.is_dataclass(out[0])


def test_tab_separated_and_empty_sheet(tmp_path):
    text = "sample\tcoating_weight_mg_cm2\tthickness_um\ttrue_density_g_cm3\nT\t27,0\t80\t4,7\n"
    r = compute_sheet(write(tmp_path, "s.tsv", text), pipeline=pipe())
    assert r.ok and r.steps[0].filling_rate_pct == pytest.approx(71.8085, abs=1e-4)
    r = compute_sheet(write(tmp_path, "e.csv", PLAIN.splitlines()[0] + "\n"), pipeline=pipe())
    assert r.ok and not r.steps and any("no data rows" in w for w in r.warnings)


def test_extra_cells_and_bad_toml(tmp_path):
    r = compute_sheet(write(tmp_path, "s.csv", PLAIN + "A3,54,2,80,4.7,99\n"), pipeline=pipe())
    assert r.errors[0].row == 3 and "6 cells but the header has 5" in r.errors[0].message
    with pytest.raises(DensityError, match="s.toml: not valid TOML"):
        compute_sheet(write(tmp_path, "s.toml", "[[sample]\n"), pipeline=pipe())
    with pytest.raises(DensityError, match="s2.toml: samples: unknown key"):
        compute_sheet(write(tmp_path, "s2.toml", "[[samples]]\nsample='x'\n"), pipeline=pipe())


def test_default_judges_only_the_rate_into_the_joined_step(tmp_path):
    r = compute_sheet(write(tmp_path, "steps.csv", STEPS), pipeline=pipe(rate_of_decrease_min=0.77))
    v = {(x.sample, x.layer, x.step): x.rate_verdict for x in r.steps}
    assert v["CE3", "cathode", "first joining"] is None  # 11.1 %, not judged
    assert v["CE3", "cathode", "densifying"] == "pass"   # 77.5 %
    assert v["EX1", "electrolyte", "densifying"] == "pass"
    r = compute_sheet(write(tmp_path, "steps.csv", STEPS),
                      pipeline=pipe(rate_of_decrease_min=0.77, step="first joining"))
    v = {(x.sample, x.layer, x.step): x.rate_verdict for x in r.steps}
    assert v["CE3", "cathode", "first joining"] == "fail"
    assert v["CE3", "cathode", "densifying"] is None
