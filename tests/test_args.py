"""rafiki_ray._args: the one alias mechanism and the one number check of constructors."""

from __future__ import annotations

import inspect
import logging
import math

import numpy as np
import pytest

from rafiki_ray._args import POSITIVE, UnknownArgumentError, check_number
from rafiki_ray.nas import ENASSearch
from rafiki_ray.schedulers import (
    ASHA,
    PBT,
    CurveFitting,
    Hyperband,
    MedianStopping,
    SuccessiveHalving,
)
from rafiki_ray.searchers import EvolutionSearch, GPSearch, TPESearch

SPACE = {"x": {"_type": "uniform", "_value": [0, 1]}}
CLASSES = [TPESearch, GPSearch, EvolutionSearch, ENASSearch, ASHA, SuccessiveHalving, Hyperband,
           MedianStopping, CurveFitting, PBT]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_alias_names_a_keyword_of_its_class(cls):
    keywords = set(inspect.signature(cls.__init__).parameters) - {"self", "aliases"}
    assert cls.ALIASES, f"{cls.__name__} has no alias table"
    for source, target in cls.ALIASES.items():
        assert target is None or target in keywords, (cls.__name__, source, target)
        assert source not in keywords, (cls.__name__, source)
    assert callable(cls.from_args)


@pytest.mark.parametrize("cls,args", [
    (TPESearch, {"n_trees": 3}),
    (ENASSearch, {"lstm": 3}),
    (ASHA, {"grace": 1}),
    (PBT, {"bogus": 1}),
    (MedianStopping, {"optimize_mod": "maximize"}),
])
def test_unknown_names_get_one_error_through_either_door(cls, args):
    (name, value), = args.items()
    shape = rf"^{cls.__name__}\.{name}: is not an argument \(known: \[.*\]\), got {value!r}$"
    with pytest.raises(UnknownArgumentError, match=shape) as err:
        cls.from_args(args)
    assert isinstance(err.value, TypeError) and isinstance(err.value, ValueError)
    if "aliases" in inspect.signature(cls.__init__).parameters:  # constructors with **aliases
        with pytest.raises(UnknownArgumentError, match=shape):
            cls(**args)


@pytest.mark.parametrize("cls,args,message", [
    (ASHA, {"grace_period": 1, "min_resource": 1},
     "ASHA.min_resource: given together with grace_period, got 1"),
    (SuccessiveHalving, {"max_t": 9, "n": 3, "max_resource": 9},
     "SuccessiveHalving.max_resource: given together with max_t, got 9"),
    (PBT, {"quantile_fraction": 0.3, "fraction": 0.25},
     "PBT.fraction: given together with quantile_fraction, got 0.25"),
    (TPESearch, {"n_startup_jobs": 3, "n_startup_trials": 4},
     "TPESearch.n_startup_trials: given together with n_startup_jobs, got 4"),
    (MedianStopping, {"optimize_mode": "maximize", "mode": "max"},
     "MedianStopping.mode: given together with optimize_mode, got 'max'"),
])
def test_a_keyword_given_twice_is_one_error(cls, args, message):
    with pytest.raises(ValueError, match=f"^{message}$".replace("(", r"\(").replace(")", r"\)")):
        cls.from_args(args)


def test_constructor_keyword_and_its_alias_are_refused_unless_the_keyword_is_its_default():
    with pytest.raises(ValueError, match="PBT.optimize_mode: given together with mode"):
        PBT(metric="a", mode="min", optimize_mode="maximize")
    assert PBT(metric="a", fraction=0.2, quantile_fraction=0.3)._fraction == 0.3  # default
    with pytest.raises(ValueError, match="Hyperband.max_t: given together with max_iter"):
        Hyperband(max_iter=9, max_t=9)


def test_from_args_and_aliases_build_the_same_object():
    a = ASHA.from_args({"min_resource": 1, "max_resource": 9, "eta": 3}, metric="m", mode="max",
                       seed=0)
    b = ASHA(min_resource=1, max_resource=9, eta=3, metric="m", mode="max", seed=0)
    assert a.get_state() == b.get_state()
    s = SuccessiveHalving.from_args({"grace_period": 2, "max_t": 18, "eta": 3, "n": 4})
    assert s.milestones == [2, 6, 18] and s.rung_sizes() == [4, 1, 1]
    assert all(isinstance(m, int) for m in s.milestones)  # integer rungs stay exact


def test_nni_mode_names_and_unused_aliases(caplog):
    t = TPESearch.from_args({"optimize_mode": "maximize", "random_state": 3})
    assert t.mode == "max"
    m = MedianStopping.from_args({"optimize_mode": "minimize"}, metric="loss")
    assert m.mode == "min"
    with pytest.raises(ValueError, match="MedianStopping.optimize_mode: must be 'maximize' or "
                                         "'minimize', got 'up'"):
        MedianStopping.from_args({"optimize_mode": "up"})
    with caplog.at_level(logging.WARNING, logger="rafiki_ray._args"):
        p = PBT.from_args({"all_checkpoint_dir": "/x", "quantile_fraction": 0.25}, metric="a")
    assert p._fraction == 0.25
    assert "PBT: argument 'all_checkpoint_dir' is accepted for compatibility and unused" \
        in caplog.text


def test_from_args_keywords_left_at_none_may_be_set_by_a_source_name():
    s = TPESearch.from_args({"random_state": 3}, seed=None, space=SPACE)
    assert s.get_state()["seed"] == 3
    with pytest.raises(ValueError, match="TPESearch.random_state: given together with seed"):
        TPESearch.from_args({"random_state": 3}, seed=4)


def test_from_args_accepts_the_same_name_with_the_same_value_in_args_and_keywords():
    bo = {"metric": {"name": "loss", "optimization": "minimize"}, "n_initial_trials": 4}
    s = GPSearch.from_args(bo, metric="loss", mode="min")  # Polyaxon: the experiment's too
    assert (s.metric, s.mode) == ("loss", "min")
    with pytest.raises(ValueError, match="GPSearch.metric: given twice, also as 'acc', got 'loss'"):
        GPSearch.from_args(bo, metric="acc")


# ----------------------------------------------------------------------------- check_number


@pytest.mark.parametrize("kwargs,value,exc,message", [
    ({"integer": True, "low": 1}, 0, ValueError, "p: must be an int >= 1, got 0"),
    ({"integer": True, "low": 1}, 2.5, TypeError, "p: must be an int >= 1, got 2.5"),
    ({"integer": True, "low": 1}, True, TypeError, "p: must be an int >= 1, got True"),
    ({"integer": True, "low": 1, "high": 4}, 5, ValueError, "p: must be an int in [1, 4], got 5"),
    (POSITIVE, 0, ValueError, "p: must be > 0, got 0"),
    (POSITIVE, "1", TypeError, "p: must be a number > 0, got '1'"),
    (POSITIVE, False, TypeError, "p: must be a number > 0, got False"),
    (POSITIVE, math.nan, ValueError, "p: must be > 0, got nan"),
    ({"low": 0}, -1e-9, ValueError, "p: must be >= 0, got -1e-09"),
    ({"low": 0, "high": 0.5, "low_open": True}, 0.7, ValueError, "p: must be in (0, 0.5], got 0.7"),
    ({"low": 0, "high": 1, "high_open": True}, 1, ValueError, "p: must be in [0, 1), got 1"),
    ({"high": 1}, 2, ValueError, "p: must be <= 1, got 2"),
    ({}, math.inf, ValueError, "p: must be a finite number, got inf"),
    ({}, None, TypeError, "p: must be a number, got None"),
])
def test_check_number_refuses_with_one_message_shape(kwargs, value, exc, message):
    with pytest.raises(exc) as err:
        check_number("p", value, **kwargs)
    assert str(err.value) == message
    assert type(err.value) is exc


def test_check_number_returns_plain_python_numbers():
    assert check_number("p", np.int64(3), integer=True) == 3
    assert type(check_number("p", np.int64(3), integer=True)) is int
    assert type(check_number("p", 4.0, integer=True)) is int  # integral floats (from JSON)
    assert type(check_number("p", np.float32(0.5), **POSITIVE)) is float
    assert type(check_number("p", 3, **POSITIVE)) is int  # exact integer arithmetic kept
    assert check_number("p", None, none_ok=True, **POSITIVE) is None
    assert check_number("p", 0.5, low=0, high=0.5) == 0.5  # bounds inclusive by default
