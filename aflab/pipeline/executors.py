"""Where a run's tasks execute: `local`, a process pool on this machine (the default), or `ray`, tasks
on a Ray cluster (docs/CLUSTER.md).

Both take the same task graph (`parallel.Task`, each with the names of the tasks it waits for) and
return the results in task order; the main process keeps the progress display and writes the report.
A task builds content-keyed stage folders (cache.py) under the run folder, whichever executor runs
it, so results do not depend on the executor, and a task that runs again (a retry on another node,
a rerun after Ctrl-C) reuses what was finished. On a cluster that needs the run folder and the
cache on storage every node sees.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import secrets
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console

import aflab
from aflab.config import Resources
from aflab.errors import UserError
from aflab.pipeline.parallel import Task, configure_worker, run_tasks
from aflab.progress import Reporter, TaskBoard

EXECUTORS = ("local", "ray")
# A worker unfit for the run (no aflab, another aflab, Ray without the driver's authentication) raises
# a RuntimeError whose message starts with this; the driver prints the rest as one line and exits 2
# (a builtin type, so that it unpickles without aflab).
REFUSED = "aflab worker refused: "
# Passed from the driver to every Ray worker: the cache folder, the judge backend, and so on.
FORWARDED_ENV = ("AFLAB_", "HF_HUB_OFFLINE", "TOKENIZERS_PARALLELISM")
# How long an interrupted run waits for Ray to confirm that its tasks were cancelled.
CANCEL_WAIT_S = 15.0


class Executor(Protocol):
    def run(self, tasks: Sequence[Task], console: Console | None = None, title: str = "") -> list[Any]:
        """Run each task once every task named in its `after` is done; the results in `tasks` order."""
        ...


@dataclass
class LocalExecutor:
    """Today's process pool (parallel.py): `workers` tasks at a time on this machine."""

    workers: int = 2

    def run(self, tasks: Sequence[Task], console: Console | None = None, title: str = "") -> list[Any]:
        return run_tasks(tasks, self.workers, console, title=title)


@dataclass
class RayExecutor:
    """Ray tasks, one per `Task`, each asking for its kind's `resources`; a task's `after` become Ray
    task dependencies. A task whose worker process or node dies is started again, up to
    `max_retries` times. Without an `address` Ray starts a local instance on loopback only."""

    address: str | None = None
    resources: Resources = field(default_factory=Resources)
    max_retries: int = 2
    token_file: Path | None = None

    def run(self, tasks: Sequence[Task], console: Console | None = None, title: str = "") -> list[Any]:
        console = console or Console(stderr=True)
        ray = self._connect()
        try:
            self._check_feasible(ray, tasks)
            return _run_on_ray(ray, tasks, self.resources, self.max_retries, console, title)
        finally:
            ray.shutdown()  # disconnects from a cluster; stops the local instance this call started

    def _connect(self) -> Any:
        """Import Ray and connect, with token authentication (docs/CLUSTER.md): without `--address` a
        local instance on loopback with a fresh token; with it, the cluster's token from
        `--token-file`, $RAY_AUTH_TOKEN or $RAY_AUTH_TOKEN_PATH. `RAY_AUTH_MODE=disabled` opts out."""
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no reports to anyone
        os.environ.setdefault("RAY_AUTH_MODE", "token")
        if self.token_file is not None:
            if not self.token_file.is_file():
                raise UserError(f"{self.token_file}: --token-file: no such file")
            os.environ["RAY_AUTH_TOKEN_PATH"] = str(self.token_file.resolve())
        if self.address is None:
            # Ray binds a local instance to loopback only while it thinks clusters are off (read when
            # ray is imported); and it would write a token to ~/.ray/auth_token unless one is given:
            # this one lives and dies with the instance.
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
            if not {"RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"} & set(os.environ):
                os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
        try:
            import ray
        except ImportError:
            raise UserError("--executor ray needs Ray: pip install 'aflab[ray]'") from None
        env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV)}
        sigterm = signal.getsignal(signal.SIGTERM)
        kwargs: dict[str, Any] = {"include_dashboard": False} if self.address is None else {}
        try:
            ray.init(
                address=self.address or "local",
                runtime_env={"env_vars": env},
                logging_level="WARNING",
                log_to_driver=False,  # worker logs stay in Ray's session folder, not over the display
                **kwargs,
            )
        except (ConnectionError, ray.exceptions.AuthenticationError, RuntimeError, ValueError) as e:
            where = f"the Ray cluster at {self.address}" if self.address else "a local Ray instance"
            hint = " (a cluster with token authentication needs its token: --token-file or RAY_AUTH_TOKEN)"
            raise UserError(f"cannot connect to {where}: {_first_line(e)}{hint if self.address else ''}") from None
        finally:
            signal.signal(signal.SIGTERM, sigterm)  # ray.init installs its own; aflab's stops the run cleanly
        return ray

    def _check_feasible(self, ray: Any, tasks: Sequence[Task]) -> None:
        """A task asking for more than any node has would wait forever: refuse it now, naming the key."""
        nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
        for kind in sorted({t.kind for t in tasks}):
            want = getattr(self.resources, kind)
            if not any(n.get("CPU", 0) >= want.num_cpus and n.get("GPU", 0) >= want.num_gpus for n in nodes):
                have = ", ".join(f"{n.get('CPU', 0):g} CPU/{n.get('GPU', 0):g} GPU" for n in nodes) or "no nodes"
                raise UserError(
                    f"resources.{kind}: asks for {want.num_cpus:g} CPU and {want.num_gpus:g} GPU per task, "
                    f"more than any node of the cluster has ({have})"
                )


def make_executor(
    name: str,
    workers: int,
    resources: Resources,
    max_retries: int,
    address: str | None = None,
    token_file: Path | None = None,
) -> Executor:
    """The executor a command line asks for; `--address`/`--token-file` belong to `ray` only."""
    if name == "local":
        if address is not None or token_file is not None:
            raise UserError("--address and --token-file need --executor ray")
        return LocalExecutor(workers)
    if name == "ray":
        return RayExecutor(address, resources, max_retries, token_file)
    raise UserError(f"--executor: unknown executor {name!r}; known: {', '.join(EXECUTORS)}")


# ---------------------------------------------------------------------------------------------
# The Ray side


def _run_on_ray(
    ray: Any, tasks: Sequence[Task], resources: Resources, max_retries: int, console: Console, title: str
) -> list[Any]:
    """Submit every task at once (Ray starts each when its dependencies are done and its resources
    free), show progress, and return the results in order. The first failure, Ctrl-C or SIGTERM
    cancels every task of this run still pending or running (force: their workers are killed; the
    stages they had finished stay, a half-built one is a temporary folder that the next build
    removes)."""
    from ray.util.queue import Empty, Queue

    token = _check_authentication(ray)
    sink = Queue(actor_options={"num_cpus": 0})  # progress from the workers: (name, desc, done, total)
    body = ray.remote(_task_body())
    expected = (aflab.__version__, source_digest(), token)
    refs: dict[str, Any] = {}
    for t in tasks:  # list order respects `after` by construction
        r = getattr(resources, t.kind)
        options = {"num_cpus": r.num_cpus, "num_gpus": r.num_gpus, "max_retries": max_retries, "name": t.name}
        payload = pickle.dumps((t.fn, t.kwargs))
        refs[t.name] = body.options(**options).remote(t.name, payload, expected, sink, *(refs[a] for a in t.after))
    board = TaskBoard(len(tasks), console)  # the local executor's display (progress.py)
    pending = {ref: i for i, ref in enumerate(refs.values())}
    results: list[Any] = [None] * len(tasks)
    ended: set[str] = set()

    def drain() -> None:
        """Progress messages; Ray does not say when a task starts, so its first message begins its row."""
        try:
            items = sink.get_nowait_batch(sink.qsize())
        except Empty:
            return
        for name, desc, done, total in items:
            if name not in board.rows and name not in ended:
                board.begin(name)
            board.report(name, desc, done, total)

    with board:
        if title:
            board.console.print(f"[bold cyan]{title}")
        try:
            while pending:
                finished, _ = ray.wait(list(pending), num_returns=1, timeout=0.2)
                drain()
                for ref in finished:
                    i = pending.pop(ref)
                    results[i] = _result(ray, ref)
                    if tasks[i].name not in board.rows:
                        board.begin(tasks[i].name)
                    board.end(tasks[i].name)
                    ended.add(tasks[i].name)
            drain()
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            # Cancelling is asynchronous: wait (briefly) until Ray reports the tasks ended, so that the
            # driver does not disconnect before its cancellations reach the workers.
            ray.wait(list(pending), num_returns=len(pending), timeout=CANCEL_WAIT_S)
            raise
    return results


def _result(ray: Any, ref: Any) -> Any:
    """A task's result; its failure raised as what it was in the worker (a UserError stays one line,
    exit 2), a worker that cannot run this aflab as one line too."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        cause = e.cause
        if isinstance(cause, RuntimeError) and str(cause).startswith(REFUSED):
            raise UserError(str(cause).removeprefix(REFUSED)) from None
        if isinstance(cause, Exception):
            raise cause from e
        raise


def _task_body() -> Callable[..., Any]:
    """What every Ray task runs. Made here, so that cloudpickle ships the function's code by value and
    not as a reference into aflab: a worker without aflab, or with another aflab, can still run it and
    say so in one line, instead of failing to unpickle its task or, worse, computing other numbers."""

    def body(name: str, payload: bytes, expected: tuple[str, str, bool], sink: Any, *upstream: Any) -> Any:
        import os
        import pickle
        import socket

        where = f"{socket.gethostname()} (pid {os.getpid()})"
        try:
            import aflab
            from aflab.pipeline.executors import _auth_probe, run_payload, source_digest
        except Exception as e:
            raise RuntimeError(f"{REFUSED}{where} cannot import aflab ({type(e).__name__}: {e})") from None
        found = (aflab.__version__, source_digest())
        if found != tuple(expected[:2]):
            raise RuntimeError(
                f"{REFUSED}aflab on {where} differs from the driver's: {found[0]} (source {found[1]}) against "
                f"{expected[0]} (source {expected[1]}); install the same aflab on every node"
            )
        if expected[2] and not _auth_probe()()[1]:
            raise RuntimeError(
                f"{REFUSED}Ray on {where} runs without token authentication: anyone who reaches that node can "
                "run code on it; start every node with RAY_AUTH_MODE=token (docs/CLUSTER.md)"
            )
        fn, kwargs = pickle.loads(payload)
        return run_payload(name, fn, kwargs, sink)

    return body


def _check_authentication(ray: Any) -> bool:
    """Whether this driver uses token authentication; if it does, a worker of the cluster must too.
    Ray would connect a token driver to a cluster without authentication and fail later, obscurely;
    and such a cluster runs anyone's code. A cluster used knowingly without tokens needs
    RAY_AUTH_MODE=disabled on the driver as well."""
    token = _auth_probe()()[1]
    if not token:
        return False
    try:
        host, cluster_token = ray.get(ray.remote(_auth_probe()).options(num_cpus=0).remote(), timeout=120)
    except ray.exceptions.GetTimeoutError:
        raise UserError("no worker of the Ray cluster answered within 120 s (are its nodes up?)") from None
    if not cluster_token:
        raise UserError(
            f"the Ray cluster (node {host}) runs without token authentication: anyone who reaches it can run "
            "code on it. Start its nodes with RAY_AUTH_MODE=token (docs/CLUSTER.md), or set "
            "RAY_AUTH_MODE=disabled for this command to use it as it is"
        )
    return True


def _auth_probe() -> Callable[[], tuple[str, bool]]:
    """A function that says where it runs and whether Ray runs there with token authentication (Ray's own
    answer, $RAY_AUTH_MODE where that private API is missing). Made here so that it travels by value:
    it answers on a worker that has no aflab."""

    def probe() -> tuple[str, bool]:
        import os
        import socket

        try:
            from ray._private.authentication.authentication_utils import is_token_auth_enabled
        except ImportError:
            return socket.gethostname(), os.environ.get("RAY_AUTH_MODE", "").lower() == "token"
        return socket.gethostname(), is_token_auth_enabled()

    return probe


def run_payload(name: str, fn: Callable[..., Any], kwargs: dict[str, Any], sink: Any) -> Any:
    """A task in a Ray worker, set up as a local pool worker is (one torch thread: same numbers)."""
    configure_worker()
    return fn(reporter=Reporter(sink, name), **kwargs)


@lru_cache(maxsize=1)
def source_digest() -> str:
    """SHA-256 (16 hex digits) of aflab's files (code, phrase banks, configs): equal on driver and
    workers when both run the same aflab, whatever its version number says."""
    root = Path(aflab.__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
