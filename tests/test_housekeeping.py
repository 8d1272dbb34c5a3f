"""What a user meets first: the README's two set-up commands, CI running the second, the
declared dependencies matching what the package imports, the tested Ray range."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from 3.11")

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
#: top-level module -> distribution, for what rafiki_ray imports at run time
RUNTIME = {"ray": "ray", "numpy": "numpy", "scipy": "scipy", "pandas": "pandas", "yaml": "pyyaml",
           "jinja2": "jinja2", "pyarrow": "pyarrow", "threadpoolctl": "threadpoolctl"}
#: imported lazily, only by the modules that need them, each declared in an extra
OPTIONAL = {
    "torch": "torch", "tensorflow": "tensorflow", "keras": "tensorflow",
    "starlette": "serve", "matplotlib": "viz", "tensorboardX": "viz", "PIL": "viz",
    "sklearn": "examples",
}
#: the trial shims' own package (rafiki_ray/_shims/t9k), importable once the shims are installed
SHIMS = {"t9k"}
#: imported only inside an IPython kernel, which brings it (rafiki_ray.progress's notebook
#: display; with notebook=None it is used only when IPython is already loaded)
KERNEL_ONLY = {"IPython"}
#: imported only by rafiki_ray.testing, the contract suites run under pytest (test extra)
TESTING_ONLY = {"pytest", "cloudpickle", "hypothesis"}
PEERS = {"hyperopt", "bayesian-optimization", "scikit-optimize", "optuna", "scikit-learn"}


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0].lower()


def _setup_commands() -> list[str]:
    section = (ROOT / "README.md").read_text().split("## Set up on a fresh machine", 1)[1]
    section = section.split("\n## ", 1)[0]
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", section, re.DOTALL)]


def test_readme_has_two_setup_commands_and_ci_runs_the_second() -> None:
    commands = _setup_commands()
    assert len(commands) == 2, commands
    quick, tests = commands
    assert quick == 'pip install -e ".[examples]" && python examples/quickstart.py'
    assert "tensorflow" not in quick and "torch" not in quick
    ci = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines()
          if ln.strip() and not ln.startswith(("#", "set ", "cd ", "export "))]
    assert ci == [tests]
    assert "ruff check ." in tests
    # of the slow suite, CI runs the parts shown reliable (issue 18): the notebooks and the
    # driver-crash restore of every searcher and scheduler
    assert [part.strip() for part in re.findall(r"-m slow([^&]*)", tests)] == [
        "tests/test_notebooks.py",
        '-k "crash or sigkill" tests/schedulers tests/searchers tests/nas tests/models'], tests


def test_readme_says_how_to_get_the_cpu_build_of_torch_and_the_ray_range() -> None:
    text = (ROOT / "README.md").read_text()
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in text
    assert "`ray[tune]>=2.60,<2.61`" in text
    assert 'promotion="stop"' in text and "PBTSession" in text
    assert "CheckpointRequiredError" in text


def _third_party_imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return {m for m in out if m not in sys.stdlib_module_names and m not in ("rafiki_ray",
                                                                           "__future__")}


def test_runtime_dependencies_are_what_the_package_imports() -> None:
    imported: set[str] = set()
    for path in (ROOT / "rafiki_ray").rglob("*.py"):
        mods = _third_party_imports(path)
        if "testing" in path.relative_to(ROOT / "rafiki_ray").parts:
            mods -= TESTING_ONLY
        imported |= mods
    assert imported - set(OPTIONAL) - SHIMS - KERNEL_ONLY == set(RUNTIME), imported
    declared = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    assert declared == set(RUNTIME.values())
    extras = PYPROJECT["project"]["optional-dependencies"]
    bench = {_name(r) for r in extras["bench"]}
    assert PEERS <= bench and not PEERS & declared
    assert any(r.startswith("rafiki-ray[") and "bench" in r for r in extras["test"])
    assert {"pytest", "hypothesis", "ruff"} <= {_name(r) for r in extras["test"]}
    assert {_name(r) for r in extras["examples"]} == {"scikit-learn"}
    for extra in set(OPTIONAL.values()):
        assert extra in extras, f"extra {extra!r} is not declared"


def test_the_installed_ray_is_in_the_declared_range() -> None:
    ray_req = next(r for r in PYPROJECT["project"]["dependencies"] if _name(r) == "ray")
    spec = SpecifierSet(ray_req.split("]", 1)[1])
    assert spec == SpecifierSet(">=2.60,<2.61")
    assert version("ray") in spec


def test_deprecation_warnings_are_not_silenced() -> None:
    filters = PYPROJECT["tool"]["pytest"]["ini_options"].get("filterwarnings", [])
    assert not [f for f in filters if f.strip() == "ignore::DeprecationWarning"]


def test_param_store_of_a_job_without_namespace_is_not_in_the_anonymous_one(ray_session) -> None:
    """A job started with ``ray.init()`` runs in an anonymous namespace, where Ray warns about
    every detached actor ("It looks like you're creating a detached actor in an anonymous
    namespace"): the store goes into ``rafiki_ray-<uuid>``, and trial workers find it."""
    import ray

    from rafiki_ray.sharing import ParamStore
    from rafiki_ray.sharing.param_store import ANONYMOUS_PREFIX

    job_ns = ray.get_runtime_context().namespace
    store = ParamStore.create("housekeeping_ns_probe")
    try:
        assert store.namespace == f"{ANONYMOUS_PREFIX}{job_ns}"

        @ray.remote(num_cpus=0)
        def lookup() -> str:
            return ParamStore.get("housekeeping_ns_probe").namespace

        assert ray.get(lookup.remote()) == store.namespace
        named = ParamStore.create("housekeeping_ns_probe", namespace="housekeeping")
        assert named.namespace == "housekeeping"
        named.shutdown()
    finally:
        store.shutdown()


def test_tune_still_warns_when_a_resumed_trial_has_no_result_json_in_storage() -> None:
    """The Tune behaviour ``rafiki_ray._log_notes`` relies on: ``LoggerCallback`` copies
    ``result.json`` back on every start from a checkpoint and logs this exact WARNING on
    ``ray.tune.logger.logger`` when the storage has none."""
    import inspect

    from ray.tune.logger import logger as tune_logger

    source = inspect.getsource(tune_logger.LoggerCallback._restore_from_remote)
    assert 'logger.warning(f"Remote file not found: {remote_file}")' in source
    assert tune_logger.logger.name == "ray.tune.logger.logger"


def test_result_json_warning_is_explained_once(caplog) -> None:
    import logging

    import rafiki_ray  # noqa: F401 - installs the notes
    from rafiki_ray._log_notes import NOTES, _ExplainOnce

    tune_log = logging.getLogger("ray.tune.logger.logger")
    assert [type(f) for f in tune_log.filters].count(_ExplainOnce) == 1
    pattern, explanation = NOTES["ray.tune.logger.logger"]
    log = logging.getLogger("rafiki_ray.tests.explain_once")  # a fresh filter, same rule
    log.addFilter(_ExplainOnce(pattern, explanation))
    with caplog.at_level(logging.INFO, logger=log.name):
        for i in range(3):
            log.warning("Remote file not found: /tmp/exp/trial_%d/result.json", i)
        log.warning("Remote file not found: /tmp/exp/trial_0/progress.csv")  # another file
        log.info("Remote file not found: result.json")  # not Tune's WARNING: left alone
    texts = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == log.name]
    assert texts == [("INFO", explanation),
                     ("WARNING", "Remote file not found: /tmp/exp/trial_0/progress.csv"),
                     ("INFO", "Remote file not found: result.json")]
