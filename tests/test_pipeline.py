"""Pipelines: validation names section.key, defaults, overrides, shipped files, hash."""

import pytest

from poromet.errors import PipelineError
from poromet.pipeline import (
    Pipeline,
    load_pipeline,
    override,
    pipeline_from_dict,
    shipped_pipelines,
)


def test_shipped_pipelines_load_and_carry_the_patent_specs():
    assert {"exterior-unit", "electrode-layer", "intermediate-layer"} <= set(shipped_pipelines())
    ext = load_pipeline("exterior-unit")
    assert ext.spec.porosity_max == 0.4
    assert ext.spec.relative_density_min == 0.8
    assert ext.sample.fields == 10
    assert load_pipeline("electrode-layer").spec.porosity_max == 0.05
    inter = load_pipeline("intermediate-layer")
    assert (inter.spec.porosity_min, inter.spec.porosity_max) == (0.40, 0.70)


def test_default_is_exterior_unit():
    assert load_pipeline(None).name == "exterior-unit"


@pytest.mark.parametrize(
    "data, match",
    [
        ({"threshold": {"metod": "otsu"}}, r"threshold\.metod: unknown key"),
        ({"treshold": {"method": "otsu"}}, r"treshold: unknown section"),
        ({"threshold": {"method": "magic"}}, r"threshold\.method: got 'magic'; allowed: 'local', 'otsu'"),
        ({"threshold": {"band": "5"}}, r"threshold\.band: got '5' \(str\); allowed: a number"),
        ({"threshold": {"band": -1}}, r"threshold\.band: got -1.*allowed: 0 to 127"),
        ({"spec": {"porosity_max": 40}}, r"spec\.porosity_max: got 40.*allowed: 0 to 1"),
        ({"trim": {"exclude_flagged": "yes"}}, r"trim\.exclude_flagged: got 'yes'"),
        ({"image": {"info_bar": "bottom"}}, r"image\.info_bar: got 'bottom'"),
        ({"threshold": {"method": "manual"}}, r"threshold\.value: not set"),
        ({"spec": {"porosity_min": 0.7, "porosity_max": 0.4}}, r"spec\.porosity_min"),
    ],
)
def test_invalid_settings_name_section_key(data, match):
    with pytest.raises(PipelineError, match=match):
        pipeline_from_dict(data)


def test_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[threshold]\nmetod = "li"\n')
    with pytest.raises(PipelineError, match=r"bad\.toml: threshold\.metod: unknown key"):
        load_pipeline(bad)
    broken = tmp_path / "broken.toml"
    broken.write_text("[threshold\n")
    with pytest.raises(PipelineError, match=r"broken\.toml: not valid TOML"):
        load_pipeline(broken)
    with pytest.raises(PipelineError, match="no such shipped pipeline"):
        load_pipeline("exterior-unti")


def test_override_takes_precedence_and_none_changes_nothing():
    base = load_pipeline("exterior-unit")
    p = override(base, threshold__method="li", trim__mode=None)
    assert p.threshold.method == "li"
    assert p.trim.mode == base.trim.mode
    assert p.spec == base.spec
    assert p.hash != base.hash
    assert override(base) is base


def test_hash_is_stable_and_depends_on_settings_only():
    a = pipeline_from_dict({"threshold": {"band": 7}}, source="a.toml")
    b = pipeline_from_dict({"threshold": {"band": 7}}, source="b.toml")
    c = pipeline_from_dict({"threshold": {"band": 8}})
    assert a.hash == b.hash != c.hash
    assert len(a.hash) == 16


def test_to_toml_round_trips(tmp_path):
    p = load_pipeline("intermediate-layer")
    f = tmp_path / "p.toml"
    f.write_text(p.to_toml())
    assert load_pipeline(f).to_dict() == p.to_dict()


def test_int_accepted_for_float_setting():
    p = pipeline_from_dict({"spec": {"porosity_max": 0}})
    assert p.spec.porosity_max == 0.0 and isinstance(p.spec.porosity_max, float)
    assert isinstance(Pipeline().spec, type(p.spec))
