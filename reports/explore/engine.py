"""Run a sweep: enumerate points, reuse what the store has, estimate the rest, prune, simulate, find fronts.

Where the work runs is an :class:`Executor`: ``SerialExecutor`` (``workers=1``,
for debugging) or ``RayExecutor`` (a local Ray on this machine's cores by
default, or an existing cluster by address). Which points are simulated does
not depend on the executor: pruning goes in rounds of ``spec.batch_size``
points, chosen from the data alone (the points' optimistic bounds and the
results of earlier rounds), never from which worker finished first. So a
sweep gives the same rows, bit for bit, however it runs.

Pruning is exact: a point is skipped only when a simulated point of the same
model and workload beats its optimistic bound on every objective (and
strictly on one); since the bound is at least as good as what the cycle
simulation would report, the skipped point could not have been on the front.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import socket
import sys
import time
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

from llmaccel.reports.explore import evaluate as ev
from llmaccel.reports.explore.pareto import dominates, front, vector
from llmaccel.reports.explore.points import Point, canonical, code_version, enumerate_points
from llmaccel.reports.explore.spec import ExploreSpec
from llmaccel.reports.explore.store import Store
from llmaccel.errors import LlmaccelError

CANDIDATE = ("estimated", "simulated")
ESTIMATE_CHUNK = 8          # points per estimate task (each takes tens of ms: amortises task overhead)


class ClusterError(LlmaccelError):
    """The Ray cluster named by --address cannot be reached (or Ray is not installed)."""


# ---------------------------------------------------------------------------------------- executors
def _estimate_many(points: Sequence[Point]) -> list[dict]:
    return [ev.estimate_point(p) for p in points]


def _simulate_one(point: Point) -> dict:
    try:
        return ev.simulate_point(point)
    except LlmaccelError as exc:
        return {"status": "sim_error", "reason": str(exc)}


class SerialExecutor:
    """Everything in this process, in order: the reference the parallel runs must match."""

    workers = 1
    address = None

    def run(self, fn: Callable, items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        for i, it in enumerate(items):
            yield i, fn(it)

    def close(self) -> None:
        pass


def check_address(address: str) -> None:
    """Fail fast, naming --address, when nothing listens there (ray.init would wait for minutes)."""
    if address == "auto":
        return
    hostport = address.split("://", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ClusterError(f"--address '{address}': expected host:port (the Ray head's GCS port, e.g. 10.0.0.5:6379), "
                           f"ray://host:port, or 'auto'")
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError as exc:
        raise ClusterError(f"--address '{address}': no Ray cluster reachable at {host}:{port} ({exc}); start one "
                           f"with 'ray start --head' or omit --address for a local Ray") from None


class RayExecutor:
    """Ray tasks: a local instance with ``workers`` CPUs, or the cluster at ``address``."""

    def __init__(self, workers: Optional[int] = None, address: Optional[str] = None):
        try:
            import ray
        except ImportError:
            raise ClusterError("Ray is not installed; install it (pip install 'llmaccel[explore]') or run "
                               "with --workers 1") from None
        self.ray = ray
        self.address = address
        self._started = False
        if address:
            check_address(address)
        if not ray.is_initialized():
            kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
            # workers import this checkout the way the driver does
            env = {k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ}
            env.setdefault("OMP_NUM_THREADS", "1")
            kw["runtime_env"] = {"env_vars": env}
            try:
                if address:
                    ray.init(address=address, **kw)
                else:
                    ray.init(num_cpus=workers or os.cpu_count() or 1, **kw)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                hint = ("; a cluster with token authentication (Ray's default) needs RAY_AUTH_MODE=token in "
                        "this environment" if os.environ.get("RAY_AUTH_MODE") is None else "")
                raise ClusterError(f"--address '{address}': Ray could not connect: {exc}{hint}") from None
            self._started = True
        self.workers = int(ray.cluster_resources().get("CPU", 1))
        self._remote = {}

    def run(self, fn: Callable, items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        ray = self.ray
        if fn not in self._remote:
            self._remote[fn] = ray.remote(num_cpus=1, max_retries=0)(fn)
        rf = self._remote[fn]
        pending = {rf.remote(it): i for i, it in enumerate(items)}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                yield pending.pop(ref), ray.get(ref)

    def close(self) -> None:
        if self._started:
            self.ray.shutdown()


def make_executor(workers: Optional[int], address: Optional[str]):
    if workers is not None and workers < 1:
        raise LlmaccelError(f"--workers {workers}: must be >= 1 (1 runs serially, without Ray)")
    if workers == 1 and not address:
        return SerialExecutor()
    return RayExecutor(workers, address)


# ---------------------------------------------------------------------------------------- results
@dataclasses.dataclass
class ExploreResult:
    """What a sweep found: every row of the sweep, the front of each (model, workload) group, counts."""

    spec: ExploreSpec
    sweep: str
    store: str
    objectives: list[str]
    rows: list[dict]                              # one per point, in sweep order, with 'pruned_by' and 'on_front'
    fronts: dict[str, list[str]]                  # group label -> hashes on its front
    counts: dict[str, int]
    seconds: float

    def front_rows(self) -> list[dict]:
        return [r for r in self.rows if r.get("on_front")]


def group_of(p: Point | dict) -> str:
    g = p if isinstance(p, dict) else dataclasses.asdict(p)
    return f"{g['model']} p{g['prefill']}+d{g['decode']}"


def sweep_key(points: Sequence[Point], objectives: Sequence[str], prune: bool, batch: int) -> str:
    body = canonical({"points": sorted(p.hash for p in points), "objectives": list(objectives), "prune": prune,
                      "batch": batch})
    return hashlib.sha256(body.encode()).hexdigest()[:24]


def _base_row(p: Point) -> dict:
    return {"hash": p.hash, "model": p.model, "recipe": p.recipe, "prefill": p.prefill, "decode": p.decode,
            "max_len": p.max_len, "base_design": p.base_design, "label": p.label,
            "knobs": {k: v for k, v in p.knobs}, "design": p.design, "code_version": code_version()}


def _bar(enabled: bool, total: int, desc: str):
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="pt", disable=not enabled, file=sys.stderr, dynamic_ncols=True,
                leave=True)


def explore(spec: ExploreSpec, store: str | os.PathLike, workers: Optional[int] = None,
            address: Optional[str] = None, progress: bool = True, prune: Optional[bool] = None,
            executor: Any = None) -> ExploreResult:
    """Run ``spec`` into the store at ``store`` (created if absent); see the module docstring."""
    t0 = time.perf_counter()
    do_prune = spec.prune if prune is None else prune
    objectives = spec.objective_names()
    qbase = None
    if spec.quality is not None:
        from llmaccel.reports.explore.quality import quality_base_key
        qbase = quality_base_key(spec.quality)
    points = enumerate_points(spec, qbase)
    if not points:
        raise LlmaccelError("the sweep is empty: no points")
    st = Store(store)
    sweep = sweep_key(points, objectives, do_prune, spec.batch_size)
    by_hash = {p.hash: p for p in points}
    rows = {h: r for h, r in st.get_many(list(by_hash)).items()}
    counts = {"points": len(points), "cached": sum(1 for h in by_hash if h in rows), "estimated": 0,
              "simulated": 0, "pruned": 0}
    run_id = st.start_run(sweep, spec.name, getattr(executor, "workers", workers or 0), address, len(points))
    state = "interrupted"
    exe = executor
    try:
        ppl = _quality(spec, qbase, st, progress)
        need_est = [p for p in points if p.hash not in rows]
        candidates_sim = None
        if need_est:
            exe = exe or make_executor(workers, address)
            chunks = [need_est[i:i + ESTIMATE_CHUNK] for i in range(0, len(need_est), ESTIMATE_CHUNK)]
            with _bar(progress, len(need_est), "fit + estimate") as bar:
                for i, res in exe.run(_estimate_many, chunks):
                    for p, r in zip(chunks[i], res):
                        row = _base_row(p) | r | {"perplexity": ppl.get(p.recipe)}
                        st.put(row)
                        rows[p.hash] = {k: v for k, v in row.items() if v is not None}
                        counts["estimated"] += 1
                    bar.update(len(chunks[i]))
        cands = [p for p in points if rows[p.hash]["status"] in CANDIDATE]
        opt = {p.hash: vector(ev.optimistic(rows[p.hash], ppl.get(p.recipe)), objectives) for p in cands}
        act = {p.hash: vector(ev.actual(rows[p.hash], ppl.get(p.recipe)), objectives)
               for p in cands if rows[p.hash]["status"] == "simulated"}
        groups = {p.hash: group_of(p) for p in points}
        remaining = [p for p in cands if p.hash not in act]
        with _bar(progress, len(remaining), "simulate") as bar:
            while remaining:
                if do_prune:
                    keep = [p for p in remaining if not _dominated(opt[p.hash], groups[p.hash], act, groups)]
                    counts["pruned"] += len(remaining) - len(keep)
                    bar.total = bar.n + len(keep)
                    bar.refresh()
                    remaining = keep
                    if not remaining:
                        break
                    batch = _choose(remaining, opt, groups, spec.batch_size)
                else:
                    batch = remaining
                exe = exe or make_executor(workers, address)
                for i, r in exe.run(_simulate_one, batch):
                    p = batch[i]
                    row = rows[p.hash] | r
                    st.put({"hash": p.hash, **r})
                    rows[p.hash] = row
                    counts["simulated"] += 1
                    if r["status"] == "simulated":
                        act[p.hash] = vector(ev.actual(row, ppl.get(p.recipe)), objectives)
                    bar.update(1)
                done = {p.hash for p in batch}
                remaining = [p for p in remaining if p.hash not in done]
        # ---- fronts and the sweep's record (pruned_by is computed from the final set: path-independent)
        fronts: dict[str, list[str]] = {}
        sim_sorted = sorted(act)
        membership: dict[str, Optional[str]] = {}
        for p in points:
            by = None
            if p.hash in opt and p.hash not in act:
                by = next((s for s in sim_sorted if groups[s] == groups[p.hash] and dominates(act[s], opt[p.hash])),
                          None)
                assert by is not None or not do_prune, "an unsimulated candidate must be dominated"
            membership[p.hash] = by
        for g in sorted(set(groups.values())):
            fronts[g] = front([(h, act[h]) for h in sim_sorted if groups[h] == g])
        st.set_sweep(sweep, membership)
        on_front = {h for hs in fronts.values() for h in hs}
        out_rows = [rows[p.hash] | {"pruned_by": membership[p.hash], "on_front": p.hash in on_front,
                                    "group": groups[p.hash], "perplexity": ppl.get(p.recipe)} for p in points]
        state = "finished"
        counts["pruned"] = sum(1 for v in membership.values() if v)
        return ExploreResult(spec, sweep, str(store), objectives, out_rows, fronts, counts,
                             time.perf_counter() - t0)
    finally:
        st.finish_run(run_id, state, time.perf_counter() - t0, counts)
        st.close()
        if exe is not None and exe is not executor:
            exe.close()


def _dominated(v, g, act, groups) -> bool:
    return any(groups[s] == g and dominates(w, v) for s, w in act.items())


def _choose(remaining: Sequence[Point], opt, groups, k: int) -> list[Point]:
    """The next round: up to ``k`` points whose optimistic vectors no other remaining point's bound
    dominates (the most promising), in sweep order; deterministic. Only that layer, so that its results
    can prune the layers behind it before they are simulated."""
    layer = set(front([(p.hash, opt[p.hash]) for p in remaining]))  # groups differ -> compare within group below
    if len({groups[p.hash] for p in remaining}) > 1:
        layer = set()
        for g in sorted({groups[p.hash] for p in remaining}):
            layer |= set(front([(p.hash, opt[p.hash]) for p in remaining if groups[p.hash] == g]))
    return [p for p in remaining if p.hash in layer][:k]


def _quality(spec: ExploreSpec, qbase: Optional[str], st: Store, progress: bool) -> dict[str, float]:
    """Perplexity of every recipe of the spec on its quality checkpoint (cached in the store)."""
    if spec.quality is None:
        return {}
    from llmaccel.reports.explore.quality import recipe_key, recipe_perplexity
    out = {}
    with _bar(progress, len(spec.recipes), "recipe perplexity") as bar:
        for r in spec.recipes:
            key = recipe_key(qbase, r)
            v = st.get_quality(key)
            if v is None:
                v = recipe_perplexity(spec.quality, r)
                st.put_quality(key, spec.quality.checkpoint, r, spec.quality.eval_tokens, v, code_version())
            out[r] = v
            bar.update(1)
    return out
