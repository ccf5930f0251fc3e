"""Tiles side by side on every core, BLAS held to one thread for the call.

Only onto idle CPUs (:func:`idle`, asked by :mod:`tconv.kernels.gemm` at each call): the
gains below were measured with the same layer called again and again. In a network, a
layer follows products on OpenBLAS's own two threads, after each of which OpenBLAS's worker
thread spins for work for about 0.1 s, and the helper pinned beside it shares its core:
every layer measured was then slower side by side than one tile after another
(48x64x64->96x128x32 at batch 8 7.3 against 6.1 ms), and the course U-Net 5-8% slower. The
kernel reports a spinning thread as running, so :func:`idle` sees it; with the check the
U-Net runs as fast as with side by side off, and a layer called again and again as fast as
with it on (:data:`tconv.kernels.gemm.SIDE_BY_SIDE_IF_IDLE`). ``OPENBLAS_THREAD_TIMEOUT``
(set before NumPy loads) cuts OpenBLAS's spin short, so that more calls find a CPU idle, at
a price: a product after a pause finds OpenBLAS's worker asleep and waits for it (20, in the
per-layer benchmark: batch-1 layers up to 3.5x slower). Running every product of a call on
tconv's own threads (OpenBLAS on one thread throughout, so that its worker never wakes)
would remove the contention at its source; that is not built.

Why: on a layer of few channels a transposed convolution is memory-bound on both of its
halves, the product writing its columns and col2im reading them back. Run one tile after
another, the product takes both cores (OpenBLAS's threads) and col2im only one, the other
spinning, and a tile's columns leave the cache before col2im reads them. Run as one tile
per core, each a product on one BLAS thread followed at once by its col2im, one core's
col2im overlaps the other's product and the columns are read back while still cached.
Measured on 2 cores (in process, medians): 48x64x64->96x128x32 at batch 8 7.1 -> 5.3 ms,
256x256x64->512x512x32 (k3) 23 -> 18 ms; but 6x8x512->12x16x256 at batch 8 3.7 -> 5.5 ms:
where the kernel is large, each tile's product packs it again on one thread. So
:mod:`tconv.kernels.gemm` takes this path only for layers of small kernels (measured there).

BLAS on one thread: two products on two threads, each with OpenBLAS's threads on, take
turns (its server runs one at a time) and oversubscribe the cores: slower than one after
another (measured: 8.2 against 7.1 ms). OpenBLAS has no per-thread setting (its
``openblas_set_num_threads_local`` sets the process's count too), so the count is set to one
for the duration of the call and put back after, under a lock: a call that finds another
running side by side runs its tiles one after another. While a call runs, another thread's
NumPy products run on one BLAS thread too: slower, never wrong. threadpoolctl finds the
OpenBLAS libraries loaded; the count is read and set through their own functions (ctypes):
threadpoolctl's setter ignores every thread but the first that used it, and its getter
looks the symbol up on each call (0.15 ms).

For the call, the calling thread is pinned to the CPU it runs on and each helper to another
CPU of its set (the next ones, in turn), the caller's own set put back after: left to the
scheduler, the helper woken for a call often lands on the caller's CPU and the two share it
(measured in the benchmark's protocol, a call right after a pause: 11.5 ms, against 6.0
pinned and 7.8 one tile after another; back to back all three run apart and 5.3). Pinning
from the caller's own CPU, not the first of the set, keeps processes side by side (worker
processes, test runners) on the CPUs the scheduler spread them over.

Tiles run side by side only where OpenBLAS (pthreads) is NumPy's BLAS and runs on more
than one thread (a user who limited it to one, ``OPENBLAS_NUM_THREADS=1`` or
threadpoolctl, gets one core), on more than one core, with threadpoolctl installed and
:data:`ENABLED`; otherwise :func:`run` runs them one after another.
"""

from __future__ import annotations

import contextvars
import ctypes
import functools
import itertools
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

#: set False to run every tile on the calling thread (tests, comparisons)
ENABLED = True

_LOCK = threading.Lock()
_ACTIVE = False  # a call runs its tiles side by side (BLAS held to one thread)


def _cpu_set():
    """The CPUs the calling thread may run on (a set; a range where affinity is unknown)."""
    try:
        return os.sched_getaffinity(0)
    except AttributeError:  # not on Linux
        return range(os.cpu_count() or 1)


def _cpus() -> tuple[int, ...]:
    """The CPUs the calling thread may run on, in order (the count remembered)."""
    global _CORES
    cpus = tuple(sorted(_cpu_set()))
    _CORES = len(cpus)
    return cpus


def cores() -> int:
    """How many CPUs the calling thread may run on (read now, and remembered)."""
    global _CORES
    _CORES = len(_cpu_set())
    return _CORES


#: the count :func:`cores` or :func:`_cpus` read last: :func:`workers` runs on every call
#: and reads this instead of the system's affinity (about 8 us a call after a kernel's
#: run has evicted the interpreter's working set); each side-by-side run reads it afresh,
#: so a changed affinity is seen by the call after, and a stale count only costs speed
_CORES: int | None = None


@functools.lru_cache(maxsize=1)
def _openblas() -> tuple:
    """``(get, set)`` thread-count functions of each OpenBLAS library loaded, or () where
    threadpoolctl is missing or a BLAS loaded is another, or OpenBLAS on OpenMP."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return ()
    import numpy  # noqa: F401  (its BLAS is loaded before the controller looks)

    found = []
    for controller in ThreadpoolController().lib_controllers:
        if controller.user_api != "blas":
            continue
        if controller.internal_api != "openblas" or getattr(controller, "threading_layer", None) != "pthreads":
            return ()
        library = ctypes.CDLL(controller.filepath)
        for prefix, suffix in itertools.product(("", "scipy_"), ("", "64_", "_64")):
            get = getattr(library, f"{prefix}openblas_get_num_threads{suffix}", None)
            set_ = getattr(library, f"{prefix}openblas_set_num_threads{suffix}", None)
            if get is not None and set_ is not None:
                found.append((get, set_))
                break
        else:
            return ()
    return tuple(found)


@functools.lru_cache(maxsize=4)
def _pool(helpers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=helpers, thread_name_prefix="tconv-tiles")


@functools.lru_cache(maxsize=1)
def _sched_getcpu():
    """glibc's ``sched_getcpu`` (the CPU the calling thread runs on), or None."""
    try:
        function = ctypes.CDLL(None).sched_getcpu
    except (OSError, AttributeError, TypeError):
        return None
    function.restype, function.argtypes = ctypes.c_int, []
    return function


def _placement(cpus: tuple[int, ...], count: int) -> list[int]:
    """A CPU for the caller (the one it runs on now) and one for each helper (the next ones
    of its set, in turn): processes side by side (worker processes, test runners) keep to
    the CPUs the scheduler spread their callers over, instead of all crowding the first."""
    getcpu = _sched_getcpu()
    here = getcpu() if getcpu is not None else -1
    start = cpus.index(here) if here in cpus else 0
    return [cpus[(start + k) % len(cpus)] for k in range(count)]


def _pin(cpus: set[int]) -> set[int] | None:
    """Keep the calling thread to ``cpus``; its former set, or None where that cannot be done."""
    try:
        former = os.sched_getaffinity(0)
        os.sched_setaffinity(0, cpus)
        return former
    except (AttributeError, OSError):  # not on Linux, or not allowed
        return None


def _after_fork_in_child() -> None:
    """A forked child has none of its parent's helper threads (a pool made before the fork
    would take tasks that no thread runs): it makes its own, no call is in flight, and it
    lists its own threads (the descriptors kept would read the parent's)."""
    global _LOCK, _ACTIVE, _TASK_LOCK
    _pool.cache_clear()
    _TASK_LOCK = threading.Lock()  # a thread of the parent may have held it at the fork
    _forget_tasks()
    _LOCK = threading.Lock()
    _ACTIVE = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def workers() -> int:
    """How many tiles :func:`run` would run side by side now: the cores, at most as many as
    OpenBLAS's threads (1: one after another)."""
    if not ENABLED or _ACTIVE:
        return 1
    libraries = _openblas()
    if not libraries:
        return 1
    count = libraries[0][0]() if len(libraries) == 1 else min(get() for get, _ in libraries)
    return 1 if count <= 1 else min(count, _CORES or cores())


def available() -> bool:
    """Whether :func:`run` would run tiles side by side now."""
    return workers() > 1


#: where the kernel lists this process's threads, each with its state in ``<tid>/stat``
TASKS = "/proc/self/task"
#: seconds between listings of :data:`TASKS` (a thread started since is seen that much later)
TASKS_RELIST = 1.0
#: a process of more threads is not read (each costs a few us; frameworks loaded beside
#: tconv bring dozens, their own pools among them): its tiles run one after another
TASKS_MAX = 32

_TASK_LOCK = threading.Lock()
_task_files: dict[str, int] = {}  # thread id -> descriptor of its stat file, kept open
_listed: float | None = None  # time.monotonic() of the last listing


def _forget_tasks() -> None:
    """Close the descriptors kept (in a forked child they read the parent's threads)."""
    global _listed
    for fd in _task_files.values():
        try:
            os.close(fd)
        except OSError:
            pass
    _task_files.clear()
    _listed = None


def running(enough: int | None = None) -> int | None:
    """Threads of this process other than the caller running or runnable now (state R in
    ``/proc/self/task/<tid>/stat``; counting stops at ``enough``), or None where that cannot
    be read (not Linux, or more than :data:`TASKS_MAX` threads).

    One ``pread`` a thread on descriptors kept open, the threads listed again every
    :data:`TASKS_RELIST` seconds: about 3 us a thread warm."""
    global _listed
    me = str(threading.get_native_id())
    with _TASK_LOCK:
        now = time.monotonic()
        if _listed is None or now - _listed > TASKS_RELIST:
            try:
                names = set(os.listdir(TASKS))
            except OSError:
                return None
            for name in set(_task_files) - names:
                os.close(_task_files.pop(name))
            for name in names - set(_task_files):
                try:
                    _task_files[name] = os.open(f"{TASKS}/{name}/stat", os.O_RDONLY)
                except OSError:  # the thread has ended since the listing
                    pass
            _listed = now
        if len(_task_files) > TASKS_MAX:
            return None
        count = 0
        for name, fd in list(_task_files.items()):
            if name == me:
                continue
            if enough is not None and count >= enough:
                break
            try:
                stat = os.pread(fd, 512, 0)
            except OSError:  # the thread has ended
                os.close(_task_files.pop(name))
                continue
            end = stat.rfind(b")")  # the name, in parentheses, may hold anything
            count += end > 0 and stat[end + 2:end + 3] == b"R"
        return count


def idle(helpers: int) -> bool:
    """Whether ``helpers`` threads beside the caller would each find a CPU of this
    process's set that none of its other threads is running on now. False where that cannot
    be read.

    A thread spinning for work is running: OpenBLAS's worker spins for about 0.1 s after
    each product on its threads, and a helper pinned beside it shares its core (measured:
    48x64x64->96x128x32 at batch 8 7.3 ms side by side against 6.1 one tile after another).
    Other processes' threads are not counted. The kernel's count of the machine's runnable
    threads (``/proc/loadavg``) would see them, but was measured useless here: on Linux
    6.18 a thread that has just gone to sleep stays counted for some milliseconds (the
    scheduler's delayed dequeue), so a worker woken through a pipe read 2 at 92-96% of its
    calls, its writer asleep. A process of more than :data:`TASKS_MAX` threads is not read:
    False."""
    free = (_CORES or cores()) - 1 - helpers  # other threads that may run, leaving enough CPUs
    count = running(enough=max(free + 1, 0))
    return count is not None and count <= free


def run(tasks: Sequence, work: Callable[[object], None], side_by_side: bool = True) -> None:
    """``work(task)`` for every task, the tasks shared out among the cores as each
    finishes its last (the calling thread takes its share), with BLAS on one thread; each
    helper runs in a copy of the caller's context (``contextvars``: NumPy's ``errstate``).
    The tasks must write disjoint outputs. Where ``side_by_side`` or :func:`available` is
    False, or for a single task, one after another on the calling thread (BLAS as it is)."""
    global _ACTIVE
    helpers = 0
    if side_by_side and len(tasks) > 1:
        libraries = _openblas()
        with _LOCK:
            helpers = min(workers(), len(tasks)) - 1
            if helpers:
                saved = [get() for get, _ in libraries]
                for _, set_ in libraries:
                    set_(1)
                _ACTIVE = True
    if not helpers:
        for task in tasks:
            work(task)
        return
    following = itertools.count()  # next() on it is atomic under the GIL
    failed = []  # a tile raised: the others stop taking tiles

    def share() -> None:
        try:
            while not failed and (i := next(following)) < len(tasks):
                work(tasks[i])
        except BaseException:
            failed.append(True)
            raise

    def share_on(cpu: int) -> None:
        _pin({cpu})
        share()

    placed = _placement(_cpus(), helpers + 1)
    former = _pin({placed[0]})  # the caller where it runs, each helper on a CPU of its own
    try:
        # each helper in a copy of the caller's context (NumPy's errstate, tconv's planning)
        futures = [_pool(helpers).submit(contextvars.copy_context().run, share_on, cpu) for cpu in placed[1:]]
        try:
            share()
        finally:
            for future in futures:  # every helper is done before BLAS gets its threads back
                future.exception()
        for future in futures:
            future.result()
    finally:
        if former is not None:
            _pin(former)
        with _LOCK:
            for (_, set_), count in zip(libraries, saved):
                set_(count)
            _ACTIVE = False
