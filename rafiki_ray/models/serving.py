"""``serve``: a :class:`~rafiki_ray.models.Predictor` over HTTP with Ray Serve (extra
``serve``: ``pip install "ray[serve]"``).

Protocol (JSON in, JSON out), at ``http://<host>:<port><route_prefix>``:

* ``POST {"queries": [q1, q2, ...]}`` → ``200 {"predictions": [a1, a2, ...]}``;
* ``GET`` → ``200`` with the predictor's description (members, knobs, trial ids, scores);
* a body that is not JSON, not an object, without a ``"queries"`` list, or with more than
  ``max_queries`` queries → ``400 {"error": ...}``; queries the models reject (they raise
  ``ValueError`` / ``TypeError``, e.g. an image of the wrong size) → ``422 {"error": ...}``;
  other methods → ``405``.
"""

from __future__ import annotations

import logging
from typing import Any

from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray._lazy import require

__all__ = ["serve", "shutdown", "shutdown_serve"]

logger = logging.getLogger(__name__)


class _Endpoint:
    """The Serve deployment's body (a plain class; ``serve.deployment`` wraps it)."""

    def __init__(self, predictor: Any, max_queries: int) -> None:
        self.predictor = predictor
        self.max_queries = max_queries

    async def __call__(self, request: Any) -> Any:
        import json

        from starlette.responses import JSONResponse

        if request.method == "GET":
            return JSONResponse(self.predictor.describe())
        if request.method != "POST":
            return JSONResponse({"error": f"method {request.method} not allowed; POST "
                                 "{\"queries\": [...]}"}, status_code=405)
        body = await request.body()
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            return JSONResponse({"error": f"body is not JSON: {exc}"}, status_code=400)
        if not isinstance(payload, dict) or not isinstance(payload.get("queries"), list):
            return JSONResponse({"error": "body must be an object {\"queries\": [...]} with "
                                 "a list of queries"}, status_code=400)
        queries = payload["queries"]
        if len(queries) > self.max_queries:
            return JSONResponse({"error": f"at most {self.max_queries} queries per request, "
                                 f"got {len(queries)}"}, status_code=400)
        try:
            predictions = self.predictor.predict(queries)
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": f"queries rejected by the model: {exc}"},
                                status_code=422)
        return JSONResponse({"predictions": predictions})


def serve(predictor: Any, *, host: str = "127.0.0.1", port: int = 8000,
          route_prefix: str = "/predict", name: str = "rafiki_predictor",
          num_replicas: int = 1, num_cpus: float = 0.0, max_queries: int = 10_000) -> str:
    """Start (or update) a Ray Serve application answering for ``predictor``; returns its URL.

    Ray must be running (or is started). ``num_cpus`` per replica defaults to 0 so that a
    server next to running trials does not take their CPUs. Stop it with :func:`shutdown`.
    """
    import ray

    require("starlette", "serve")
    serve_mod = require("ray.serve", "serve")
    if not hasattr(predictor, "predict") or not hasattr(predictor, "describe"):
        raise invalid_type("predictor", "must be a Predictor (from deploy)", predictor)
    if not isinstance(route_prefix, str) or not route_prefix.startswith("/"):
        raise invalid("route_prefix", "must start with '/'", route_prefix)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise invalid("port", "must be an int in 1..65535", port)
    if not ray.is_initialized():
        ray.init(address="local", log_to_driver=False, configure_logging=False)
    serve_mod.start(http_options={"host": host, "port": port})
    app = serve_mod.deployment(
        _Endpoint, name=name, num_replicas=num_replicas,
        ray_actor_options={"num_cpus": num_cpus},
    ).bind(predictor, max_queries)
    serve_mod.run(app, name=name, route_prefix=route_prefix)
    url = f"http://{host}:{port}{route_prefix}"
    logger.info("serving %d models at %s", len(predictor), url)
    return url


def shutdown(name: str | None = None) -> None:
    """Delete one application (``name``) or shut Ray Serve down entirely (``None``)."""
    serve_mod = require("ray.serve", "serve")
    if name is None:
        serve_mod.shutdown()
    else:
        serve_mod.delete(name)


shutdown_serve = shutdown
