"""Dataset loaders (Rafiki's image zip and tabular CSV, in-memory), parameter files, budget
parsing: generated valid input round-trips, generated bad input raises ValueError/TypeError."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rafiki_ray.models import (
    load_dataset,
    load_parameters,
    parse_budget,
    save_parameters,
    write_image_dataset,
    write_tabular_dataset,
)

SETTINGS = settings(max_examples=20, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def test_digits_through_both_file_formats(tmp_path, digits):
    (X, y), _, _ = digits
    zpath = write_image_dataset(tmp_path / "digits.zip", X[:50], y[:50])
    ds = load_dataset(zpath)
    assert ds.kind == "image" and ds.X.shape == (50, 8, 8) and ds.n_classes == 10
    assert np.array_equal(ds.y, y[:50])
    # PNG stores 8-bit grey levels: 0..16 becomes 0..255 and back within one level
    assert np.allclose(ds.X / 255.0, X[:50] / 16.0, atol=1 / 255)
    cpath = write_tabular_dataset(tmp_path / "digits.csv", X[:50].reshape(50, -1), y[:50])
    tab = load_dataset(cpath)
    assert tab.kind == "tabular" and tab.X.shape == (50, 64)
    assert np.array_equal(tab.X, X[:50].reshape(50, -1)) and np.array_equal(tab.y, y[:50])
    assert tab.feature_names[:2] == ("f0", "f1")


def test_tabular_target_column_by_name(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("price,rooms,area\n1.5,3,70\n2.25,4,90\n")
    ds = load_dataset(str(path), target="price")
    assert ds.feature_names == ("rooms", "area")
    assert ds.y.dtype.kind == "f" and list(ds.y) == [1.5, 2.25]
    with pytest.raises(ValueError, match="target: is not a column"):
        load_dataset(str(path), target="nope")


@pytest.mark.parametrize("bad,exc,match", [
    (42, TypeError, "must be a path"),
    ("missing.zip", ValueError, "no such file"),
    ((np.zeros((3, 2)), np.zeros(2)), ValueError, "same length"),
    ((np.array([["a"]]), None), TypeError, "must hold numbers"),
    ((np.zeros((0, 2)), None), ValueError, "at least one sample"),
])
def test_bad_datasets_are_named(bad, exc, match):
    with pytest.raises(exc, match=match):
        load_dataset(bad)


def test_a_zip_without_images_csv(tmp_path):
    import zipfile

    path = tmp_path / "x.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a.png", b"")
    with pytest.raises(ValueError, match="images.csv"):
        load_dataset(str(path))


@SETTINGS
@given(images=hnp.arrays(np.uint8, st.tuples(st.integers(1, 6), st.integers(2, 5),
                                             st.integers(2, 5))),
       data=st.data())
def test_image_zip_round_trips(images, data):
    labels = data.draw(st.lists(st.integers(0, 9), min_size=len(images), max_size=len(images)))
    images = images.copy()
    images[0, 0, 0] = 255  # fixes the value range to 0..255
    with tempfile.TemporaryDirectory() as d:
        ds = load_dataset(write_image_dataset(os.path.join(d, "i.zip"), images, labels))
    assert np.array_equal(ds.X, images) and list(ds.y) == labels


@SETTINGS
@given(X=hnp.arrays(np.float64, st.tuples(st.integers(1, 8), st.integers(1, 4)),
                    elements=st.floats(-1e6, 1e6, allow_nan=False)),
       data=st.data())
def test_tabular_csv_round_trips(X, data):
    y = data.draw(st.lists(st.integers(-5, 5), min_size=len(X), max_size=len(X)))
    with tempfile.TemporaryDirectory() as d:
        ds = load_dataset(write_tabular_dataset(os.path.join(d, "t.csv"), X, y))
    assert np.array_equal(ds.X, X) and list(ds.y) == y


@SETTINGS
@given(text=st.text(alphabet=",\n0123456789.-abc ", max_size=60))
def test_arbitrary_csv_text_raises_only_value_or_type_errors(text):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "t.csv")
        with open(path, "w") as f:
            f.write(text)
        try:
            load_dataset(path)
        except (ValueError, TypeError):
            pass


_SCALAR = st.one_of(st.integers(-2**40, 2**40), st.floats(allow_nan=False),
                    st.text(max_size=10), st.booleans())
_ARRAY = hnp.arrays(st.sampled_from([np.float32, np.float64, np.int64, np.uint8]),
                    hnp.array_shapes(min_dims=0, max_dims=3, max_side=4))


@SETTINGS
@given(params=st.dictionaries(st.text(min_size=1, max_size=8), st.one_of(_SCALAR, _ARRAY),
                              max_size=6))
def test_parameter_files_round_trip(params):
    with tempfile.TemporaryDirectory() as d:
        save_parameters(os.path.join(d, "p.npz"), params)
        back = load_parameters(os.path.join(d, "p.npz"))
    assert set(back) == set(params)
    for k, v in params.items():
        if isinstance(v, np.ndarray):
            assert back[k].dtype == v.dtype and np.array_equal(back[k], v, equal_nan=True)
        else:
            assert back[k] == v and type(back[k]) is type(v)


@SETTINGS
@given(bad=st.one_of(st.lists(st.integers(), max_size=2), st.none(), st.dictionaries(
    st.text(max_size=3), st.one_of(st.lists(st.integers(), max_size=2), st.none(),
                                   st.dictionaries(st.text(max_size=2), st.integers())),
    min_size=1, max_size=3)))
def test_bad_parameter_sets_raise_type_errors(bad):
    with tempfile.TemporaryDirectory() as d, pytest.raises(TypeError):
        save_parameters(os.path.join(d, "p.npz"), bad)


@SETTINGS
@given(hours=st.floats(1e-4, 1e3), count=st.one_of(st.just(-1), st.integers(1, 10**6)),
       gpus=st.one_of(st.integers(0, 8), st.floats(0, 8)))
def test_budget_round_trips(hours, count, gpus):
    b = parse_budget({"TIME_HOURS": hours, "MODEL_TRIAL_COUNT": count, "GPU_COUNT": gpus})
    assert parse_budget(b.to_dict()) == b
    assert b.trial_count == (None if count == -1 else count)


@SETTINGS
@given(budget=st.dictionaries(
    st.sampled_from(["TIME_HOURS", "MODEL_TRIAL_COUNT", "GPU_COUNT", "time_hours", "X"]),
    st.one_of(st.integers(-3, 3), st.floats(), st.text(max_size=3), st.none(), st.booleans()),
    min_size=1))
def test_bad_budgets_raise_only_value_or_type_errors(budget):
    try:
        parse_budget(budget)
    except (ValueError, TypeError) as exc:
        assert str(exc).startswith("budget")


def test_budget_messages():
    with pytest.raises(ValueError, match="MODEL_TRIAL_COUNT: must be >= 1, or -1"):
        parse_budget({"MODEL_TRIAL_COUNT": 0})
    with pytest.raises(ValueError, match="unknown keys"):
        parse_budget({"HOURS": 1})
    with pytest.raises(TypeError, match="TIME_HOURS: must be a number"):
        parse_budget({"TIME_HOURS": "1"})
    assert parse_budget(None).time_hours == 0.1  # Rafiki's default
