"""Methods for ``search_quality.py``: name -> factory of an ask/tell driver (Syne Tune's
``baselines.py`` style). Every method sees the same problem through the same loop:

* Tune searchers (ours, Ray's ``HyperOptSearch``): ``suggest`` / ``on_trial_complete``;
* Optuna samplers: ``study.ask`` / ``study.tell``;
* scikit-optimize: ``Optimizer.ask`` / ``tell`` (the engine of ``gp_minimize``, same defaults);
* bayesian-optimization: its own ``BayesianOptimization.suggest`` / ``register`` (Ray's
  ``BayesOptSearch`` does not run with the installed release);
* random: the space's own prior.

Libraries without conditional spaces get a flattened space (the branch choice is a
categorical and every branch's parameters are always sampled; inactive ones are ignored).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rafiki_ray.spaces import Categorical, Conditional, Fixed, Float, Int, SearchSpace

# ----------------------------------------------------------------------------- flattening


def flatten(space: SearchSpace) -> tuple[dict[str, Any], Callable[[dict[str, Any]], dict[str, Any]]]:
    """``(flat, build)``: ``flat`` maps ``"a/b"`` names to Float/Int/Categorical params (a
    Conditional becomes a Categorical of option indices plus all its branches' params);
    ``build(flat_cfg)`` rebuilds a config of the original space."""
    flat: dict[str, Any] = {}

    def visit(sp: SearchSpace, prefix: str) -> None:
        for key, p in sp.items():
            name = f"{prefix}{key}"
            if isinstance(p, SearchSpace):
                visit(p, name + "/")
            elif isinstance(p, Conditional):
                flat[name] = Categorical(tuple(range(len(p.options))))
                for i, o in enumerate(p.options):
                    visit(o.space, f"{name}/{i}/")
            elif isinstance(p, (Float, Int, Categorical)):
                flat[name] = p
            elif not isinstance(p, Fixed):
                raise TypeError(f"{name}: flatten() supports Float/Int/Categorical/Conditional, got {type(p).__name__}")

    def build(fc: dict[str, Any], sp: SearchSpace = space, prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, p in sp.items():
            name = f"{prefix}{key}"
            if isinstance(p, SearchSpace):
                out[key] = build(fc, p, name + "/")
            elif isinstance(p, Conditional):
                o = int(fc[name])
                out[key] = p.make(o, build(fc, p.options[o].space, f"{name}/{o}/"))
            elif isinstance(p, Fixed):
                out[key] = p.value
            else:
                out[key] = fc[name]
        return out

    visit(space, "")
    return flat, build


# ----------------------------------------------------------------------------- drivers


class Driver:
    """``ask() -> (token, config)``; ``tell(token, loss)``; ``inject(configs, losses)`` adds
    earlier evaluations (for timing at a given number of observations)."""

    def ask(self) -> tuple[Any, dict[str, Any]]:  # pragma: no cover - interface
        raise NotImplementedError

    def tell(self, token: Any, loss: float) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def inject(self, configs: list[dict[str, Any]], losses: list[float]) -> None:
        raise NotImplementedError


class TuneDriver(Driver):
    def __init__(self, searcher: Any) -> None:
        self.s, self.i = searcher, 0

    def ask(self) -> tuple[Any, dict[str, Any]]:
        tid = f"t{self.i}"
        self.i += 1
        cfg = self.s.suggest(tid)
        return tid, cfg

    def tell(self, token: Any, loss: float) -> None:
        self.s.on_trial_complete(token, {"loss": loss})

    def inject(self, configs: list[dict[str, Any]], losses: list[float]) -> None:
        if not hasattr(self.s, "n_observations"):
            raise NotImplementedError
        for c, v in zip(configs, losses):
            self.s.add_evaluated_point(c, v)


class FlatTuneDriver(TuneDriver):
    """A Tune searcher that only takes flat Tune domains (Ray's HyperOptSearch)."""

    def __init__(self, make: Callable[[dict[str, Any]], Any], space: SearchSpace) -> None:
        flat, self.build = flatten(space)
        param_space = SearchSpace({k.replace("/", "__"): p for k, p in flat.items()}).to_tune()
        super().__init__(make(param_space))

    def ask(self) -> tuple[Any, dict[str, Any]]:
        tid, fc = super().ask()
        return tid, self.build({k.replace("__", "/"): v for k, v in fc.items()})


class OptunaDriver(Driver):
    def __init__(self, sampler: Any, space: SearchSpace) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = optuna.create_study(sampler=sampler, direction="minimize")
        flat, self.build = flatten(space)
        self.dists = {k: _optuna_dist(p) for k, p in flat.items()}

    def ask(self) -> tuple[Any, dict[str, Any]]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = self.study.ask(self.dists)
        return t, self.build(dict(t.params))

    def tell(self, token: Any, loss: float) -> None:
        self.study.tell(token, loss)

    def inject(self, configs: list[dict[str, Any]], losses: list[float]) -> None:
        import optuna

        for c, v in zip(configs, losses):
            params = _flat_values(c, self.dists)
            self.study.add_trial(optuna.trial.create_trial(params=params, distributions=self.dists, value=v))


def _optuna_dist(p: Any) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(p, Float):
        return FloatDistribution(p.low, p.high, log=p.log, step=p.q if p.q and not p.log else None)
    if isinstance(p, Int):
        return IntDistribution(p.low, p.high, log=p.log, step=p.q or 1)
    return CategoricalDistribution(list(p.choices))


def _flat_values(cfg: dict[str, Any], dists: dict[str, Any]) -> dict[str, Any]:
    """Only used with non-conditional spaces (timing)."""
    out = {}
    for k in dists:
        node: Any = cfg
        for part in k.split("/"):
            node = node[part]
        out[k] = node
    return out


class SkoptDriver(Driver):
    """``skopt.Optimizer`` with ``gp_minimize``'s defaults (GP, gp_hedge, lbfgs, 10 random
    initial points, Gaussian noise)."""

    def __init__(self, space: SearchSpace, seed: int) -> None:
        from skopt import Optimizer
        from skopt.space import Categorical as SC
        from skopt.space import Integer, Real

        flat, self.build = flatten(space)
        self.names = list(flat)
        dims = []
        for p in flat.values():
            if isinstance(p, Float):
                dims.append(Real(p.low, p.high, prior="log-uniform" if p.log else "uniform"))
            elif isinstance(p, Int):
                dims.append(Integer(p.low, p.high, prior="log-uniform" if p.log else "uniform"))
            else:
                dims.append(SC(list(range(len(p.choices)))))
        self.flat = flat
        self.buffer: list[tuple[Any, float]] = []
        self.opt = Optimizer(
            dims, base_estimator="GP", acq_func="gp_hedge", acq_optimizer="lbfgs",
            n_initial_points=10, random_state=seed,
            acq_optimizer_kwargs={"n_restarts_optimizer": 5, "n_points": 10000},
            acq_func_kwargs={"xi": 0.01, "kappa": 1.96},
        )

    def _cfg(self, x: list[Any]) -> dict[str, Any]:
        fc = {}
        for name, v in zip(self.names, x):
            p = self.flat[name]
            fc[name] = p.choices[int(v)] if isinstance(p, Categorical) else (int(v) if isinstance(p, Int) else float(v))
        return self.build(fc)

    def _flush(self) -> None:
        # results told since the last ask are passed in one call (one GP fit, as gp_minimize)
        if self.buffer:
            xs, ys = zip(*self.buffer)
            self.buffer = []
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.opt.tell(list(xs), list(ys))

    def ask(self) -> tuple[Any, dict[str, Any]]:
        self._flush()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x = self.opt.ask()
        return x, self._cfg(x)

    def ask_batch(self, k: int) -> list[tuple[Any, dict[str, Any]]]:
        """A batch from skopt's own constant liar (``ask(n_points=k)``, strategy cl_min)."""
        if k == 1:
            return [self.ask()]
        self._flush()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            xs = self.opt.ask(n_points=k)
        return [(x, self._cfg(x)) for x in xs]

    def tell(self, token: Any, loss: float) -> None:
        self.buffer.append((token, float(loss)))

    def inject(self, configs: list[dict[str, Any]], losses: list[float]) -> None:
        xs = []
        for c in configs:
            vals = _flat_values(c, self.flat)
            xs.append([p.index(vals[n]) if isinstance(p, Categorical) else vals[n] for n, p in self.flat.items()])
        self.buffer.extend(zip(xs, (float(v) for v in losses)))


class BayesOptDriver(Driver):
    """bayesian-optimization's ``BayesianOptimization`` (its GP and default acquisition) through
    ``suggest`` / ``register`` (it maximises: the target is ``-loss``). It takes only
    continuous boxes: log parameters are searched in log10, integers are rounded, a categorical
    is an index interval ``[0, k)`` floored, quantised values are rounded to their ``q``."""

    def __init__(self, space: SearchSpace, seed: int) -> None:
        from bayes_opt import BayesianOptimization

        self.flat, self.build = flatten(space)
        bounds: dict[str, tuple[float, float]] = {}
        for name, p in self.flat.items():
            if isinstance(p, Categorical):
                bounds[name] = (0.0, float(len(p.choices)))
            elif p.log:
                bounds[name] = (math.log10(p.low), math.log10(p.high))
            else:
                bounds[name] = (float(p.low), float(p.high))
        self.opt = BayesianOptimization(f=None, pbounds=bounds, random_state=seed, verbose=0,
                                        allow_duplicate_points=True)

    def _value(self, p: Any, x: float) -> Any:
        if isinstance(p, Categorical):
            return p.choices[min(math.floor(x), len(p.choices) - 1)]
        v = 10.0 ** x if p.log else x
        if p.q:
            v = round(v / p.q) * p.q
        v = min(max(v, p.low), p.high)
        return round(v) if isinstance(p, Int) else float(v)

    def _encode(self, p: Any, v: Any) -> float:
        if isinstance(p, Categorical):
            return p.choices.index(v) + 0.5
        return math.log10(v) if p.log else float(v)

    def ask(self) -> tuple[Any, dict[str, Any]]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x = self.opt.suggest()
        return x, self.build({n: self._value(p, float(x[n])) for n, p in self.flat.items()})

    def tell(self, token: Any, loss: float) -> None:
        self.opt.register(params=token, target=-float(loss))

    def inject(self, configs: list[dict[str, Any]], losses: list[float]) -> None:
        for c, v in zip(configs, losses):
            vals = _flat_values(c, self.flat)
            self.tell({n: self._encode(p, vals[n]) for n, p in self.flat.items()}, v)


class RandomDriver(Driver):
    def __init__(self, space: SearchSpace, seed: int) -> None:
        self.space, self.rng = space, np.random.default_rng(seed)

    def ask(self) -> tuple[Any, dict[str, Any]]:
        return None, self.space.sample(self.rng)

    def tell(self, token: Any, loss: float) -> None:
        pass

    def inject(self, configs: list[dict[str, Any]], losses: list[float]) -> None:
        pass


# ----------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Method:
    name: str
    make: Callable[[SearchSpace, int], Driver]
    parallel_ok: bool = True  # handles several pending asks sensibly
    async_ok: bool = True  # asks while earlier asks are pending are new points (not skopt's)
    by_name_only: bool = False  # an option of one of ours: run only when named (--methods)


def _ours(cls_name: str, **kw: Any) -> Callable[[SearchSpace, int], Driver]:
    def make(space: SearchSpace, seed: int) -> Driver:
        import rafiki_ray.searchers as S

        cls = getattr(S, cls_name)
        return TuneDriver(cls(space, metric="loss", mode="min", seed=seed, **kw))

    return make


def _hyperopt(space: SearchSpace, seed: int) -> Driver:
    from ray.tune.search.hyperopt import HyperOptSearch

    return FlatTuneDriver(
        lambda ps: _with_space(HyperOptSearch(metric="loss", mode="min", random_state_seed=seed), ps), space
    )


def _with_space(s: Any, param_space: dict[str, Any]) -> Any:
    s.set_search_properties("loss", "min", param_space)
    return s


def _optuna_tpe(space: SearchSpace, seed: int) -> Driver:
    import optuna

    return OptunaDriver(optuna.samplers.TPESampler(seed=seed), space)


def _optuna_gp(space: SearchSpace, seed: int) -> Driver:
    import optuna

    return OptunaDriver(optuna.samplers.GPSampler(seed=seed), space)


def available_methods() -> dict[str, Method]:
    """All methods, ours first; our searchers that are not written yet are left out. Methods
    marked ``by_name_only`` (options of ours) run only when a command names them."""
    import importlib

    out: dict[str, Method] = {}
    for name, cls_name, module in (
        ("GPSearch", "GPSearch", "rafiki_ray.searchers.gp"),
        ("TPESearch", "TPESearch", "rafiki_ray.searchers.tpe"),
        ("EvolutionSearch", "EvolutionSearch", "rafiki_ray.searchers.evolution"),
    ):
        try:
            importlib.import_module(module)
        except ImportError:
            continue
        out[name] = Method(name, _ours(cls_name))
    if "GPSearch" in out:  # GPSearch's opt-in trust region for batch suggestions
        out["GPSearch-tr0.6"] = Method("GPSearch-tr0.6", _ours("GPSearch", trust_region=0.6),
                                       by_name_only=True)
    out["optuna-TPE"] = Method("optuna-TPE", _optuna_tpe)
    out["optuna-GP"] = Method("optuna-GP", _optuna_gp)
    out["ray-HyperOpt"] = Method("ray-HyperOpt", _hyperopt)
    out["skopt-gp_minimize"] = Method("skopt-gp_minimize", lambda sp, seed: SkoptDriver(sp, seed), async_ok=False)
    out["bayes_opt-GP"] = Method("bayes_opt-GP", lambda sp, seed: BayesOptDriver(sp, seed),
                                 parallel_ok=False, async_ok=False)
    out["random"] = Method("random", lambda sp, seed: RandomDriver(sp, seed))
    return out
