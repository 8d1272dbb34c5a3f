"""Input at the edges (issue 17): only ValueError/TypeError, at build time, naming the path."""

from __future__ import annotations

import copy
import json
import logging
import math

import numpy as np
import pytest

from rafiki_ray._errors import invalid
from rafiki_ray.knobs import FloatKnob, IntegerKnob
from rafiki_ray.spaces import (
    MAX_DOCUMENT_DEPTH,
    MAX_NESTING,
    Categorical,
    Conditional,
    Fixed,
    Float,
    Int,
    Normal,
    Option,
    SearchSpace,
    from_knobs,
    from_nni,
)
from rafiki_ray.spaces.adapters.load import load_space
from rafiki_ray.spaces.adapters.polyaxon import from_polyaxon
from rafiki_ray.spaces.adapters.rapidfire import (
    GROUP_KEY,
    List,
    RandomSearch,
    Range,
    from_rapidfire,
)

HUGE = 10**400


def _raises(fn, *expected):
    with pytest.raises((ValueError, TypeError)) as info:
        fn()
    for text in expected:
        assert text in str(info.value), (text, str(info.value))
    return str(info.value)


# -- integers beyond float range --------------------------------------------------------
@pytest.mark.parametrize(
    ("build", "path"),
    [
        (lambda: Float(0, HUGE), "float.high"),
        (lambda: Int(0, HUGE), "int.high"),
        (lambda: Normal(HUGE, 1), "normal.mu"),
        (lambda: Categorical((1, 2), weights=(HUGE, 0)), "categorical.weights"),
        (lambda: FloatKnob(0, HUGE), "FloatKnob.value_max"),
        (lambda: FloatKnob(0, math.inf), "FloatKnob.value_max"),
        (lambda: IntegerKnob(-HUGE, 0), "IntegerKnob.value_min"),
        (lambda: from_nni({"lr": {"_type": "uniform", "_value": [0, HUGE]}}), "searchSpace.lr._value"),
        (lambda: from_nni({"k": {"_type": "randint", "_value": [0, HUGE]}}), "searchSpace.k._value"),
        (lambda: from_nni({"k": {"_type": "randint", "_value": [0, 2**70]}}), "searchSpace.k._value"),
        (lambda: from_polyaxon({"lr": {"uniform": [0, HUGE]}}), "hptuning.matrix.lr.uniform.high"),
        (lambda: from_polyaxon({"k": {"range": [0, 2**70, 2**60]}}), "hptuning.matrix.k.range"),
        (
            lambda: from_polyaxon({"matrix": {"a": {"values": [1]}}, "random_search": {"n_experiments": HUGE}}),
            "hptuning.random_search.n_experiments",
        ),
        (lambda: Range(0, HUGE), "Range.end"),
        (lambda: from_rapidfire({"k": Range(0, 2**70)}), "config.k"),
        (lambda: Range(0.0, 1.0, step=math.inf), "Range.step"),
        (lambda: from_rapidfire({"k": Range(0.0, 1.0, step=5e-324)}), "config.k"),
    ],
)
def test_huge_numbers_are_value_errors_naming_the_field(build, path):
    _raises(build, path)


def test_knob_errors_name_the_knob_and_shorten_long_values():
    class Weird(FloatKnob):
        pass

    knob = Weird(0.0, 1.0)
    knob.value_max = math.inf  # changed after construction: from_knobs still names it
    _raises(lambda: from_knobs({"lr": knob}), "knob_config.lr")
    msg = str(invalid("x", "rule", list(range(10_000))))
    assert len(msg) < 300 and "characters)" in msg


# -- spaces that would fail when sampled are refused when built ---------------------------
@pytest.mark.parametrize(
    ("build", "text"),
    [
        (lambda: Normal(700, 1, log=True), "lognormal needs mu + 10 sigma"),
        (lambda: Normal(0, 100, log=True), "lognormal needs mu + 10 sigma"),
        (lambda: Normal(0, 1e308), "|mu| + 10 sigma"),
        (lambda: Normal(0, 1, q=5e-324), "normal.q"),
        (lambda: Float(0, 1, q=5e-324), "float.q"),
        (lambda: Float(-1e308, 1e308), "high - low"),
        (lambda: Int(-(2**63) - 1, 0), "int.low"),
        (lambda: from_nni({"x": {"_type": "lognormal", "_value": [500, 30]}}), "searchSpace.x._value"),
        (lambda: from_polyaxon({"x": {"qnormal": [0, 1, 1e-320]}}), "hptuning.matrix.x.qnormal"),
    ],
)
def test_unsamplable_spaces_are_refused_at_build_time(build, text):
    _raises(build, text)


def test_borderline_spaces_sample_inside_themselves():
    for p in (Normal(-800, 1, log=True), Normal(600, 10, log=True), Int(-(2**63), 2**63 - 2),
              Normal(0, 1e306), Float(0, 1e290, q=1e-10)):
        rng = np.random.default_rng(0)
        for _ in range(200):
            v = p.sample(rng)
            assert p.contains(v), (p, v)


# -- contains() --------------------------------------------------------------------------
def test_contains_accepts_what_the_space_samples():
    assert Normal(-800, 1, log=True).contains(0.0)  # exp underflows to 0.0
    nan = Categorical((math.nan, 1.0))
    rng = np.random.default_rng(0)
    for _ in range(20):
        v = nan.sample(rng)
        assert nan.contains(v)
    assert Fixed(math.nan).contains(math.nan)
    assert Categorical(([math.nan],)).contains([float("nan")])


def test_unclipped_quantisation_checks_its_support():
    p = Float(0.0, 1.0, q=0.25, rounding="floor", clip=False)
    assert p.contains(0.75) and p.contains(1.0)
    assert not p.contains(5.0) and not p.contains(-0.25) and not p.contains(0.3)
    rng = np.random.default_rng(0)
    assert all(p.contains(p.sample(rng)) for _ in range(200))


# -- serialized spaces -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "text", "exc"),
    [
        ({"x": {"type": "float", "low": 0}}, "space.x.high: is missing", ValueError),
        ({"x": {"type": "int", "high": 3}}, "space.x.low: is missing", ValueError),
        ({"x": {"type": "categorical"}}, "space.x.choices: is missing", ValueError),
        ({"x": {"type": "float", "low": 0, "high": 1, "log": "false"}}, "float.log", TypeError),
        ({"x": {"type": "categorical", "choices": "abc"}}, "space.x.choices: must be a list", TypeError),
        ({"x": {"type": "arch", "items": "ab"}}, "space.x.items: must be a list", TypeError),
        ({"x": {"type": "float", "low": 0, "high": 1, "bogus": 1}}, "unknown fields", ValueError),
        ({"x": {"type": "space"}}, "space.x.params: is missing", ValueError),
        ({"x": {"type": "conditional", "options": [{"label": 1}]}}, "space.x.options[0]", ValueError),
        ({"x": {"type": "fixed"}}, "space.x.value: is missing", ValueError),
        ({"x": {"type": 3}}, "space.x.type", ValueError),
    ],
)
def test_malformed_serialized_space_names_the_field(data, text, exc):
    with pytest.raises(exc) as info:
        SearchSpace.from_dict(data)
    assert text in str(info.value)
    with pytest.raises(exc):
        SearchSpace.from_json(json.dumps(data))


def test_load_space_of_a_malformed_saved_space(tmp_path):
    f = tmp_path / "space.json"
    f.write_text(json.dumps({"x": {"type": "float", "low": 0}}))
    _raises(lambda: load_space(f), "space.json.x.high: is missing")


def test_json_round_trip_is_faithful_and_standard():
    space = SearchSpace(
        {
            "nan": Categorical((math.nan, math.inf, -math.inf, 1.5)),
            "tup": Fixed((1, (2, 3))),
            "fs": Categorical((frozenset({1, 2}), frozenset())),
            "set": Fixed({3, 4}),
            "keys": Fixed({1: "a", (2, 3): "b"}),
            "marker": Fixed({"__tuple__": [1]}),
            "cond": Conditional((Option((1, 2), SearchSpace({"a": Fixed((5,))})),), label_key="k"),
        }
    )
    text = space.to_json()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    back = SearchSpace.from_json(text)
    assert back.to_json() == text
    assert back["tup"].value == (1, (2, 3)) and type(back["tup"].value[1]) is tuple
    assert back["fs"].choices == (frozenset({1, 2}), frozenset())
    assert back["set"].value == {3, 4} and back["keys"].value == {1: "a", (2, 3): "b"}
    assert back["marker"].value == {"__tuple__": [1]}
    assert math.isnan(back["nan"].choices[0]) and back["nan"].choices[1:3] == (math.inf, -math.inf)
    assert back["cond"].options[0].label == (1, 2)
    cfg = back.sample(0)
    assert space.contains(cfg) and back.contains(space.sample(0))


def test_to_json_refuses_values_json_cannot_hold():
    _raises(lambda: SearchSpace({"cls": Fixed(int)}).to_json(), "space")


# -- nesting limit -----------------------------------------------------------------------
def _nested_choice(depth: int) -> dict:
    spec: dict = {"x": {"_type": "uniform", "_value": [0, 1]}}
    for _ in range(depth):
        spec = {"c": {"_type": "choice", "_value": [{"_name": "a", **spec}, {"_name": "b"}]}}
    return spec


def test_nesting_limit_is_a_clear_error_everywhere(tmp_path):
    ok = from_nni(_nested_choice(MAX_NESTING - 2))
    copy.deepcopy(ok.to_tune())  # what Tune does with the param_space
    for depth in (MAX_NESTING + 1, 300):
        _raises(lambda d=depth: from_nni(_nested_choice(d)), "searchSpace", "levels")
    deep = "[" * 1000 + "]" * 1000
    _raises(lambda: from_nni('{"x": {"_type": "choice", "_value": ' + deep + "}}"), "searchSpace")
    _raises(lambda: SearchSpace.from_json('{"x": ' + deep + "}"), "space")
    _raises(lambda: SearchSpace({"x": Fixed(json.loads("[" * 100 + "]" * 100))}), "fixed.value")
    lst: list = []
    for _ in range(MAX_DOCUMENT_DEPTH + 5):
        lst = [lst]
    _raises(lambda: from_polyaxon({"matrix": {"a": {"values": [1]}}, "declarations": {"d": lst}}), "levels")
    cfg: dict = {"lr": Range(0.1, 1.0)}
    for _ in range(400):
        cfg = {"n": List([cfg, {"k": 1}])}
    _raises(lambda: from_rapidfire(cfg), "config", "levels")
    for suffix, text in ((".json", deep), (".yaml", deep)):
        f = tmp_path / f"deep{suffix}"
        f.write_text('{"x": ' + text + "}" if suffix == ".json" else "x: " + text)
        _raises(lambda f=f: load_space(f), str(f))
    nested: dict = {"x": 1}
    for _ in range(MAX_NESTING + 2):
        nested = {"d": nested}
    _raises(lambda: SearchSpace(nested), "levels")


# -- searchSpaceFile edge cases ------------------------------------------------------------
def test_search_space_file_edge_cases(tmp_path):
    inline = json.dumps({"lr": {"_type": "uniform", "_value": [0, 1]}})
    cases = {
        "inline": ({"searchSpaceFile": inline * 20}, "holds inline JSON"),
        "empty": ({"searchSpaceFile": ""}, "must name a file"),
        "nul": ({"searchSpaceFile": "a\x00b"}, "searchSpaceFile"),
        "long": ({"searchSpaceFile": "x" * 5000}, "searchSpaceFile"),
    }
    for name, (data, text) in cases.items():
        f = tmp_path / f"{name}.json"
        f.write_text(json.dumps(data))
        _raises(lambda f=f: load_space(f), "searchSpaceFile", text)
    binary = tmp_path / "space.bin"
    binary.write_bytes(bytes(range(256)))
    f = tmp_path / "exp.json"
    f.write_text(json.dumps({"searchSpaceFile": "space.bin"}))
    _raises(lambda: load_space(f), "space.bin", "not UTF-8")
    _raises(lambda: load_space(binary), "not UTF-8")
    _raises(lambda: load_space(""), "path")
    _raises(lambda: from_nni(b"\xff\xfe"), "searchSpace", "UTF-8")


# -- Polyaxon semantics ---------------------------------------------------------------------
def test_polyaxon_declarations_and_params_together_is_an_error():
    doc = {"declarations": {"a": 1}, "params": {"b": 2}, "hptuning": {"matrix": {"x": {"values": [1]}}}}
    _raises(lambda: from_polyaxon(doc), "declarations", "params")


def test_polyaxon_declaration_wins_over_a_matrix_key(caplog):
    doc = {"declarations": {"lr": 0.5}, "hptuning": {"matrix": {"lr": {"values": [1, 2]}, "k": {"values": [3]}}}}
    with caplog.at_level(logging.WARNING):
        m = from_polyaxon(doc)
    assert m.space["lr"] == Fixed(0.5) and m.configs() == [{"lr": 0.5, "k": 3}]
    assert "lr" in caplog.text


def test_polyaxon_section_without_matrix_says_so():
    for section in ({"random_search": {"n_experiments": 3}}, {"seed": 1, "concurrency": 2}):
        _raises(lambda s=section: from_polyaxon(s), "hptuning.matrix: is missing")
    # a bare matrix may still name a parameter like a section key
    assert "seed" in from_polyaxon({"seed": {"values": [1, 2]}}).space


def test_polyaxon_loguniform_raw_values_warn(caplog):
    with caplog.at_level(logging.WARNING):
        from_polyaxon({"matrix": {"lr": {"loguniform": "0.001:0.1"}}, "random_search": {"n_experiments": 2}})
    assert "natural-log exponents" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        from_polyaxon({"matrix": {"lr": {"loguniform": "-9:-2"}}, "random_search": {"n_experiments": 2}})
    assert "natural-log exponents" not in caplog.text


# -- RapidFire -------------------------------------------------------------------------------
def test_reversed_log_range_is_refused_and_float_swap_warns(caplog):
    _raises(lambda: Range(1e-2, 1e-4, log=True), "Range", "never swapped")
    with caplog.at_level(logging.WARNING):
        r = Range(1e-4, 1e-5, dtype="float")
    assert (r.start, r.end) == (1e-5, 1e-4) and "start > end" in caplog.text


def test_random_search_over_config_templates():
    templates = [
        {"model": "mlp", "lr": Range(1e-4, 1e-2, log=True), "width": List([32, 64])},
        {"model": "tree", "depth": Range(1, 8)},
    ]
    rs = RandomSearch(templates, num_runs=12, seed=3)
    runs = rs.configs()
    assert len(runs) == 12 and len({json.dumps(r, sort_keys=True) for r in runs}) == 12
    assert {r["model"] for r in runs} == {"mlp", "tree"}
    for r in runs:
        assert rs.space.contains({GROUP_KEY: r})
        if r["model"] == "mlp":
            assert set(r) == {"model", "lr", "width"} and 1e-4 <= r["lr"] <= 1e-2
        else:
            assert set(r) == {"model", "depth"} and 1 <= r["depth"] <= 8
    assert RandomSearch(templates, num_runs=12, seed=3).configs() == runs
    _raises(lambda: RandomSearch([{"a": List([1])}, {"a": List([1])}], num_runs=2), "num_runs")
    _raises(lambda: RandomSearch([{"a": 1}, 3], num_runs=1), "config[1]")
    _raises(lambda: RandomSearch([], num_runs=1), "config")


def test_random_search_templates_to_tune_yields_the_runs():
    from ray.tune.search.variant_generator import generate_variants

    rs = RandomSearch([{"a": List([1, 2])}, {"b": Range(0.0, 1.0)}], num_runs=4, seed=0)
    got = [spec for _, spec in generate_variants(rs.to_tune())]  # spec: the trial config
    assert [g[GROUP_KEY] for g in got] == rs.configs()


# -- seeding follows Tune's global-seed behaviour -----------------------------------------
def test_rafiki_domains_repeat_under_np_random_seed_like_tunes():
    from ray import tune
    from ray.tune.search.variant_generator import generate_variants

    space = SearchSpace({"ln": Normal(0, 1, log=True), "u": Float(0, 1)})
    param_space = {**space.to_tune(), "tune_u": tune.uniform(0, 1)}

    def draw():
        np.random.seed(0)
        return [spec for _ in range(3) for _, spec in generate_variants(param_space)]

    first, second = draw(), draw()
    assert first == second
    assert len({c["ln"] for c in first}) == 3  # and the draws still differ from each other


# -- found by the property tests ------------------------------------------------------------
def test_tune_sampling_of_a_quantised_int_far_from_zero_stays_inside():
    from ray.tune.search.variant_generator import generate_variants

    space = SearchSpace({"k": Int(1073741087, 1073741090, q=3), "small": Int(0, 20, q=5)})
    rng = np.random.RandomState(0)
    for _ in range(50):
        for _, cfg in generate_variants(space.to_tune(), random_state=rng):
            space.validate(cfg)


def test_equal_choices_of_different_types_keep_their_type():
    p = Categorical((0, 0.0, True))
    assert [p.index(v) for v in (0, 0.0, True)] == [0, 1, 2]
    assert p.index(0.0) == 1 and type(p.pick(p.index(0.0))) is float
