"""Training a job's runs on Ray: a local Ray on this machine, or a cluster already running.

``python main.py run PRESET --cluster local`` starts Ray here with ``--workers`` CPUs (default:
every core); ``--cluster auto`` joins the cluster ``ray start --head`` runs on this machine;
``--cluster HOST:PORT`` (a head node's address) or ``ray://HOST:PORT`` (Ray Client) joins one
elsewhere.  :func:`ray_session` connects for the length of a job (an unreachable address or a
missing Ray is one :class:`~engine.errors.ClusterError` before anything is written);
:class:`RayExecutor` trains on the Ray this process is connected to.  Ray schedules; nothing
here is a scheduler.

Nothing is assumed shared but Ray itself:

* code: a cluster joined by address gets the ``engine`` package with the job (:data:`CODE`,
  Ray's ``py_modules``), so its machines need only the Python packages (requirements.txt and
  requirements-cluster.txt); a Ray started here imports this checkout.
* data: the driver reads each data source once (:func:`engine.data.data_sources`: the decoded
  Fashion-MNIST files, a CSV's text...) and puts it in Ray's object store; the runs that need it
  get a reference, and their worker loads inside :func:`engine.data.preloaded`, so the data
  split and the batches are the ones the local pool makes, without the files.
* results: a worker trains into a temporary folder and returns the run's record with the run
  folder's files as bytes; the driver writes them under the job's folder as they arrive, with
  the names and contents the local pool writes.  The weights are bit-identical to the pool's:
  the same code trains the same spec, and the worker's BLAS gets the driver's thread count
  (Ray gives a task one thread, and products large enough to be split between threads round
  differently with another count; see :func:`engine.kernels.network.blas_threads`).

Faults.  A worker process that dies (killed, out of memory, its node lost) has its run retried
:data:`RETRIES` time (Ray's ``max_retries``); a run that still has no result, or raised, is
reported with status "failed" (:func:`engine.jobs.runs.failed_record`) and the others go on.  A
stop (Ctrl-C, the window's Stop) reports the runs finished so far and cancels the others
(``ray.cancel``): a run cut short on a worker has no folder to report.

Scale.  At most :func:`in_flight` runs are handed to Ray at once; the others wait here as specs
(a few kB each).  So the object store holds at most that many finished, unread results, and the
driver holds one run's files at a time (written, then dropped) plus the records the report needs.
"""
from __future__ import annotations

import collections
import os
import socket
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Iterator

import engine
from engine.data import data_sources, preloaded
from engine.errors import ClusterError, ExperimentError
from engine.fileio import write_bytes
from engine.jobs.executors import EXECUTORS, Executor, Finished
from engine.jobs.runs import RunSpec, failed_record, train_to_record
from engine.kernels.network import blas_threads

LOCAL = "local"             # start Ray on this machine for the job
AUTO = "auto"               # join the cluster `ray start` runs on this machine
CLIENT = "ray://"           # Ray Client address prefix
CLUSTER_FORMS = ("local, auto, HOST:PORT (the head node's address, port 6379 by default) or ray://HOST:PORT "
                 "(Ray Client, port 10001)")
CONNECT_SECONDS = 3.0       # an address that does not accept a connection this fast is unreachable
RETRIES = 1                 # a run whose worker process died is tried once more (Ray's max_retries)
POLL_SECONDS = 0.2          # how often the driver checks the job's control while runs train
IN_FLIGHT_PER_WORKER = 2    # runs handed to Ray per CPU training: one training, one ready to start
ENGINE_DIR = Path(engine.__file__).resolve().parent
# the engine package, shipped to a cluster's workers with the job (Ray allows local folders only
# at the job level); a machine that has this checkout at the same path imports its own copy
CODE = {"py_modules": [str(ENGINE_DIR)], "excludes": ["__pycache__", "*.pyc"]}


def _ray():
    """The ``ray`` module, or one clear error when it is not installed."""
    try:
        import ray  # lazy: optional cluster dependency
    except ImportError:
        raise ClusterError("--cluster needs Ray, which is not installed: pip install -r requirements-cluster.txt"
                           ) from None
    return ray


def _host_port(address: str) -> tuple[str, int]:
    rest = address[len(CLIENT):] if address.startswith(CLIENT) else address
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in rest:
        raise ExperimentError(f"--cluster must be {CLUSTER_FORMS}, got {address!r}")
    return host.strip("[]"), int(port)


def check_cluster(cluster) -> str:
    """``cluster`` when it names a cluster this module can join (see :data:`CLUSTER_FORMS`)."""
    if not isinstance(cluster, str):
        raise ExperimentError(f"--cluster must be {CLUSTER_FORMS}, got {cluster!r}")
    if cluster not in (LOCAL, AUTO):
        _host_port(cluster)
    return cluster


def _probe(address: str) -> None:
    """Fail fast on an address nothing answers at: Ray itself retries for a minute."""
    host, port = _host_port(address)
    try:
        socket.create_connection((host, port), timeout=CONNECT_SECONDS).close()
    except OSError as exc:
        raise ClusterError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc} (is `ray start --head` "
                           f"running there? see 'Sweeps and clusters' in the README)") from None


def _connect(ray, cluster: str, workers: int) -> None:
    quiet = {"logging_level": "ERROR", "log_to_driver": False}
    try:
        if cluster == LOCAL:
            ray.init(num_cpus=workers or os.cpu_count() or 1, include_dashboard=False, **quiet)
            return
        if cluster != AUTO:
            _probe(cluster)
        ray.init(address=cluster, runtime_env=CODE, **quiet)
    except ClusterError:
        raise
    except ConnectionError as exc:
        if cluster != AUTO:
            raise ClusterError(f"cannot join the Ray cluster at {cluster}: {_first_line(exc)} (a cluster with token "
                               f"authentication needs RAY_AUTH_MODE=token and its token here too; see 'Sweeps and "
                               f"clusters' in the README)") from None
        raise ClusterError("--cluster auto: no Ray cluster runs on this machine (start one with `ray start --head`, "
                           "or train on a Ray of the job's own with --cluster local)") from None
    except Exception as exc:   # Ray reports a cluster it cannot join in several ways; all mean the same here
        raise ClusterError(f"cannot join the Ray cluster {cluster!r}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


@contextmanager
def ray_session(cluster: str, workers: int) -> Iterator[int]:
    """This process connected to ``cluster`` while inside; yields how many runs train at once:
    ``workers``, or every CPU of the cluster when 0.  A Ray this process is already connected to
    (a test's, a program embedding the engine) is used as it is and left running; one started
    or joined here is shut down (left) on exit."""
    ray = _ray()
    mine = not ray.is_initialized()
    if mine:
        _connect(ray, cluster, workers)
    try:
        yield workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    finally:
        if mine:
            ray.shutdown()


def in_flight(workers: int) -> int:
    """Runs handed to Ray at once: enough to keep every CPU busy while results travel back."""
    return IN_FLIGHT_PER_WORKER * max(1, workers)


def train_remotely(spec: RunSpec, write: bool, keys: tuple, *sources) -> tuple[dict, dict]:
    """A worker's part: train ``spec`` with the data sources the driver shipped (``keys`` name
    ``sources``) into a temporary folder; returns the run's record and, when ``write``, its
    folder's files (name relative to the run folder -> bytes)."""
    with tempfile.TemporaryDirectory(prefix="descent-run-") as root, preloaded(dict(zip(keys, sources))):
        record = train_to_record(spec, root if write else None)
        folder = Path(root) / spec.folder
        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
    return record, files


def _worker_env() -> dict:
    """The tasks' runtime environment (merged with the job's, :data:`CODE`): the driver's BLAS
    thread count (see the module docstring)."""
    threads = blas_threads()
    return {"env_vars": {"OPENBLAS_NUM_THREADS": str(threads)}} if threads else {}


def _reason(ray, exc: Exception) -> str:
    if isinstance(exc, (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError)):
        return f"its worker process died, and again when retried ({RETRIES} retry): {type(exc).__name__}"
    cause = getattr(exc, "cause", None) or exc
    return f"{type(cause).__name__}: {_first_line(cause)}"


class RayExecutor(Executor):
    """The runs of a job as Ray tasks (see the module docstring); needs a connected Ray
    (:func:`ray_session`, which :func:`engine.jobs.runner.run_job` opens for ``--cluster``)."""
    name = "ray"
    work = staticmethod(train_remotely)   # what a worker runs for one spec (a test wraps it to kill its worker)

    def __init__(self, control, root, workers=2, stream=False):
        self.ray = _ray()
        if not self.ray.is_initialized():
            raise ClusterError("the Ray executor needs a connected Ray: run the job with a cluster (--cluster local)")
        super().__init__(control, root, workers, False)   # runs train elsewhere: records only
        self.task = self.ray.remote(self.work).options(num_cpus=1, max_retries=RETRIES, retry_exceptions=False,
                                                       runtime_env=_worker_env())
        self.waiting: collections.deque = collections.deque()   # (spec, its source keys), not handed to Ray yet
        self.running: dict = {}        # ObjectRef -> (spec, time handed over)
        self.shipped: dict = {}        # source key -> ObjectRef of what the driver read (once per job)

    @classmethod
    def session(cls, cluster: str | None, workers: int):
        return ray_session(cluster or LOCAL, workers)

    def submit(self, spec: RunSpec) -> None:
        sources = data_sources(spec.experiment["data"])
        for key, read in sources.items():
            if key not in self.shipped:
                self.shipped[key] = self.ray.put(read())
        self.waiting.append((spec, tuple(sources)))

    def _hand_over(self) -> None:
        while self.waiting and len(self.running) < in_flight(self.workers):
            spec, keys = self.waiting.popleft()
            ref = self.task.remote(spec, self.root is not None, keys, *(self.shipped[k] for k in keys))
            self.running[ref] = (spec, time.perf_counter())

    def results(self) -> Iterator[object]:
        self._hand_over()
        while self.running:
            if self.control.stopped:     # report what has finished, cancel the rest
                ready, _ = self.ray.wait(list(self.running), num_returns=len(self.running), timeout=0)
                yield from self._collect(ready)
                self.cancel()
                return
            ready, _ = self.ray.wait(list(self.running), num_returns=1, timeout=POLL_SECONDS)
            if ready:   # and every other one done by now
                ready, _ = self.ray.wait(list(self.running), num_returns=len(self.running), timeout=0)
            yield from self._collect(ready)
            self._hand_over()

    def _collect(self, ready: list) -> Iterator[Finished]:
        for ref in sorted(ready, key=lambda r: self.running[r][0].index):
            spec, started = self.running.pop(ref)
            try:
                record, files = self.ray.get(ref)
            except self.ray.exceptions.TaskCancelledError:
                continue
            except self.ray.exceptions.RayError as exc:
                yield Finished(spec, failed_record(spec, _reason(self.ray, exc), time.perf_counter() - started))
                continue
            self._write(spec, files)
            yield Finished(spec, record)

    def _write(self, spec: RunSpec, files: dict) -> None:
        """The run folder as the worker wrote it, under this job's folder."""
        if self.root is None:
            return
        folder = Path(self.root) / spec.folder
        for name, data in files.items():
            parts = PurePosixPath(name).parts
            if not parts or PurePosixPath(name).is_absolute() or ".." in parts:
                raise ClusterError(f"a worker returned the file {name!r} for {spec.folder}: not a name inside a "
                                   f"run folder")
            write_bytes(folder.joinpath(*parts), data)

    def cancel(self) -> None:
        self.waiting.clear()
        for ref in self.running:
            self.ray.cancel(ref)      # a running task gets KeyboardInterrupt at its next chunk of steps
        self.running.clear()

    def close(self) -> None:
        self.shipped.clear()          # the object store frees the data once no task holds it


EXECUTORS[RayExecutor.name] = RayExecutor
