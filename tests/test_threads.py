"""Threads: the pool of intrt.kernels.cpu, per-model thread counts, run() from several Python threads, and the
compiled call path (out=, output_names=) against the reference of converting with intrt.quant by hand."""
import os
import threading

import numpy as np
import pytest

import intrt
from intrt import format as fmt
from intrt.errors import ArgumentTypeError, InputError, IntrtError
from intrt.graph import Graph, Node, Tensor
from intrt.kernels import cpu
from intrt.quant import QParams, dequantize, quantize

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "tflite")
Q_IN, Q_OUT = QParams(0.05, 3), QParams(0.1, -2)


def fc_graph(batch=3, dynamic=False, two_outputs=False):
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, (24, 40)).astype(np.int8)
    t = [Tensor("x", "int8", (batch, 40), Q_IN), Tensor("w", "int8", w.shape, QParams(0.01, 0), w),
         Tensor("y", "int8", (batch, 24), Q_OUT)]
    nodes = [Node("FULLY_CONNECTED", [0, 1, -1], [2], {}, "fc")]
    outputs = [2]
    if two_outputs:
        t.append(Tensor("r", "int8", (batch, 24), Q_OUT))
        nodes.append(Node("RELU", [2], [3], {}, "relu"))
        outputs = [3, 2]
    return Graph(t, nodes, [0], outputs, dynamic_batch=dynamic)


@pytest.fixture(scope="module")
def mobilenet():
    pytest.importorskip("intrt.convert.tflite")
    from intrt.convert.tflite import from_tflite

    path = os.path.join(FIXTURES, "mobilenet_v2.tflite")
    if not os.path.exists(path):
        pytest.skip("no MobileNetV2 fixture")
    return fmt.to_bytes(from_tflite(path))


# -- the pool ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("threads", [1, 2, 3, 5])
def test_pool_runs_every_task_once_on_valid_slots(threads):
    for ntasks in (0, 1, 2, 7, 64, 1000):
        slots = cpu._run_tasks(ntasks, threads)
        assert slots.shape == (ntasks,)
        assert ((slots >= 0) & (slots < max(1, min(threads, ntasks)))).all()


def test_pool_caller_takes_the_front_and_workers_the_back():
    # two-ended claiming (threadpool.h, "Locality"): with 2 threads the caller's tasks are a prefix
    for ntasks in (2, 64, 0xFFFF):
        slots = cpu._run_tasks(ntasks, 2)
        assert ((slots == 0) | (slots == 1)).all()
        assert (np.diff(slots) >= 0).all(), slots
    slots = cpu._run_tasks(0x10000 + 7, 3)        # past 65535 tasks: one ticket from the front
    assert ((slots >= 0) & (slots < 3)).all()


def test_pool_from_several_python_threads():
    errors = []

    def work():
        for _ in range(200):
            s = cpu._run_tasks(50, 2)
            if not ((s >= 0) & (s < 2)).all():
                errors.append(s)

    ts = [threading.Thread(target=work) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors


def test_pool_falls_back_to_the_caller_when_workers_lose():
    """A job whose worker task stalls (as when another process holds that core) takes longer than the caller
    alone would: the next jobs run on the caller only, and the pool counts the loss."""
    joined = 0
    for _ in range(50):    # until a worker joins the slow job (it may be asleep; the caller may be preempted)
        while cpu.pool_stats()["serial_left"]:
            cpu._run_tasks(2, 2)      # the end of an earlier fallback
        before = cpu.pool_stats()
        slots = cpu._run_tasks(64, 2, task_us=20, worker_delay_us=50_000)
        assert ((slots >= 0) & (slots < 2)).all()
        joined += bool((slots == 1).any())
        after = cpu.pool_stats()
        if after["losses"] > before["losses"]:
            break
    else:
        if joined:
            pytest.fail(f"a worker joined {joined} slow jobs, none counted as a loss")
        pytest.skip("no worker joined a job (a single usable CPU?)")
    assert (cpu._run_tasks(64, 2) == 0).all()     # the next job: the caller alone
    assert cpu.pool_stats()["serial_jobs"] == after["serial_jobs"] + 1
    for _ in range(50):                           # the fallback ends: workers join again
        while cpu.pool_stats()["serial_left"]:
            cpu._run_tasks(2, 2)
        if (cpu._run_tasks(64, 2, task_us=20) == 1).any():     # 1.3 ms: long enough for a worker to wake
            break
    else:
        if cpu.available_cpus() >= 2:
            pytest.fail("the pool never used its worker again")


def test_pool_falls_back_when_the_caller_gets_too_little_cpu():
    """threadpool.h, "CPU share": jobs whose calling thread is off its CPU for most of their time (here: it
    sleeps in its tasks, as when more threads than cores are runnable) count as a loss although each job alone
    did not stall: the next jobs run on the caller only."""
    if not cpu.HAVE_THREAD_POOL:
        pytest.skip("no thread pool in this build")
    while cpu.pool_stats()["serial_left"]:
        cpu._run_tasks(2, 2)
    before = cpu.pool_stats()
    # every 4th job is sampled; 200 us of sampled jobs make a verdict, two starved verdicts in a row a loss. Tasks
    # of 10 us: a polling worker could claim all four empty ones before the caller took its first
    for _ in range(128):
        cpu._run_tasks(4, 2, task_us=10, caller_sleep_us=100)
        if cpu.pool_stats()["losses"] > before["losses"]:
            break
    else:
        pytest.fail("jobs whose caller slept through them were never judged")
    after = cpu.pool_stats()
    assert after["serial_left"] > 0
    assert (cpu._run_tasks(64, 2) == 0).all()     # the next job: the caller alone
    while cpu.pool_stats()["serial_left"]:
        cpu._run_tasks(2, 2)


@pytest.mark.parametrize("took, alone, caller_ran_all, woken, lost", [
    (100.0, 100.0, True, False, True),      # no worker joined a long job although they were awake
    (100.0, 100.0, True, True, False),      # ... but they were asleep: not judged (waking takes time)
    (15.0, 15.0, True, False, False),       # short: a polling worker may simply not have started yet
    (300.0, 100.0, False, False, True),     # a worker stalled in a task: 3x the caller alone
    (300.0, 100.0, False, True, True),      # the same after waking it
    (140.0, 100.0, False, False, False),    # uneven tasks, cold caches: under 1.5x
    (12.0, 2.0, False, False, False),       # 6x, but only 10 us more (posting a short job)
    (50.0, 20.0, False, False, True),       # 2.5x and 30 us more
])
def test_the_rule_that_judges_a_parallel_job(took, alone, caller_ran_all, woken, lost):
    """threadpool.h, "Contention": a job loses when it took 1.5x the caller alone and 20 us more, or when
    the caller ran all of a job longer than 20 us although the workers were awake."""
    assert cpu._job_lost(took, alone, caller_ran_all, woken) is lost


def test_thread_settings_and_errors():
    n = intrt.get_num_threads()
    assert cpu.available_cpus() >= 1 and cpu.default_num_threads() >= 1
    for bad in (1.5, "2", None, True):
        with pytest.raises(ArgumentTypeError):
            intrt.set_num_threads(bad)
        if bad is not None:                     # None: the process-wide count
            with pytest.raises(IntrtError):
                intrt.load(fmt.to_bytes(fc_graph()), num_threads=bad)
    with pytest.raises(InputError):
        intrt.load(fmt.to_bytes(fc_graph()), num_threads=0)
    assert intrt.get_num_threads() == n
    assert intrt.load(fmt.to_bytes(fc_graph()), num_threads=3).num_threads == 3


def test_cgroup_quota_limits_the_default(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cpu._cgroup_cpu_limit(str(tmp_path)) in (2, None)  # 2 unless /proc/self/cgroup names another file
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cpu._cgroup_cpu_limit(str(tmp_path)) is None or cpu._cgroup_cpu_limit(str(tmp_path)) >= 1


def test_spin_setting_round_trips():
    old = cpu.get_spin_microseconds()
    try:
        cpu.set_spin_microseconds(7)
        assert cpu.get_spin_microseconds() == pytest.approx(7) or not cpu.HAVE_THREAD_POOL
    finally:
        cpu.set_spin_microseconds(old)


# -- same bytes for every thread count, and from several Python threads ------------------------------------
def test_mobilenet_same_bytes_for_every_thread_count(mobilenet):
    rng = np.random.default_rng(3)
    ref = intrt.load(mobilenet, num_threads=1)
    xs = [rng.integers(-128, 128, ref.inputs[0].shape).astype(np.int8) for _ in range(3)]
    want = [ref.run(x, quantized=True) for x in xs]
    for n in (2, 3, 4):
        m = intrt.load(mobilenet, num_threads=n)
        for x, w in zip(xs, want):
            assert np.array_equal(m.run(x, quantized=True), w), f"{n} threads"


def test_a_worker_leaves_the_callers_cpu_and_keeps_its_affinity():
    # threadpool.h, "Sharing a CPU": the move leaves the CPU out for one moment only
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity on this system")
    allowed = os.sched_getaffinity(0)
    if len(allowed) < 2 or not cpu.HAVE_THREAD_POOL or not os.path.exists("/proc/thread-self/stat"):
        assert cpu._leave_current_cpu() == -1 or len(allowed) >= 2
        assert os.sched_getaffinity(0) == allowed
        return

    def cpu_now():
        with open("/proc/thread-self/stat") as f:      # field 39: the CPU this thread runs on
            return int(f.read().rsplit(")", 1)[1].split()[36])

    moves = []
    for _ in range(5):      # the OS may move the thread back at once; once off is enough
        left = cpu._leave_current_cpu()
        assert os.sched_getaffinity(0) == allowed
        assert left in allowed
        moves.append(cpu_now() != left)
    assert any(moves)


def test_models_release_the_pool_hold(mobilenet):
    # while a model runs with threads, the pool's workers poll between its layers; a count that stayed up
    # would keep them polling after every later job
    m = intrt.load(mobilenet, num_threads=2)
    x = np.zeros(m.inputs[0].shape, np.int8)
    ts = [threading.Thread(target=lambda: [m.run(x, quantized=True) for _ in range(5)]) for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert cpu._pool_holding() == 0


def test_run_from_four_python_threads_same_bytes(mobilenet):
    rng = np.random.default_rng(4)
    m = intrt.load(mobilenet)
    xs = [rng.integers(-128, 128, m.inputs[0].shape).astype(np.int8) for _ in range(8)]
    want = [m.run(x, quantized=True) for x in xs]
    bad = []
    barrier = threading.Barrier(4)

    def work(k):
        barrier.wait()
        for r in range(10):
            i = (k + r) % len(xs)
            if not np.array_equal(m.run(xs[i], quantized=True), want[i]):
                bad.append((k, r))

    ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not bad
    assert np.array_equal(m.run(xs[0], quantized=True), want[0])


def test_dynamic_batch_from_several_threads():
    m = intrt.load(fmt.to_bytes(fc_graph(dynamic=True)), max_plans=2)
    rng = np.random.default_rng(5)
    xs = {b: rng.integers(-128, 128, (b, 40)).astype(np.int8) for b in (1, 2, 3, 5, 8)}
    want = {b: intrt.load(fmt.to_bytes(fc_graph(dynamic=True))).run(x, quantized=True) for b, x in xs.items()}
    bad = []

    def work(k):
        for r in range(40):
            b = list(xs)[(k + r) % len(xs)]
            if not np.array_equal(m.run(xs[b], quantized=True), want[b]):
                bad.append(b)

    ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not bad


# -- the compiled call path ------------------------------------------------------------------------------
def test_fast_and_slow_inputs_give_the_same_result():
    m = intrt.load(fmt.to_bytes(fc_graph()))
    rng = np.random.default_rng(6)
    xq = rng.integers(-128, 128, (3, 40)).astype(np.int8)
    xf = dequantize(xq, Q_IN) + rng.uniform(-0.03, 0.03, xq.shape).astype(np.float32)
    want_q = m.run(xq, quantized=True)
    assert np.array_equal(m.run(np.asfortranarray(xq), quantized=True), want_q)       # strided: slow path
    assert np.array_equal(m.run(xq.tolist() and xq.copy(), quantized=True), want_q)
    # float I/O: the same as quantizing and dequantizing by hand
    want_f = dequantize(m.run(quantize(xf, Q_IN), quantized=True), Q_OUT)
    assert np.array_equal(m.run(xf), want_f)
    assert np.array_equal(m.run(xf.astype(np.float64)), want_f)                      # float64: slow path
    assert m.run(xf).dtype == np.float32
    with pytest.raises(InputError):
        m.run(xf, quantized=True)
    with pytest.raises(InputError):
        m.run(xq)
    with pytest.raises(InputError):
        m.run(xq[:2], quantized=True)
    with pytest.raises(ArgumentTypeError):
        m.run(xq, quantized="yes")


def test_out_and_output_names():
    m = intrt.load(fmt.to_bytes(fc_graph(two_outputs=True)))
    x = np.random.default_rng(7).integers(-128, 128, (3, 40)).astype(np.int8)
    r, y = m.run(x, quantized=True)
    assert np.array_equal(r, np.maximum(y, Q_OUT.zero_point[0]))
    outs = [np.empty((3, 24), np.int8), np.empty((3, 24), np.int8)]
    got = m.run(x, quantized=True, out=outs)
    assert got[0] is outs[0] and got[1] is outs[1]
    assert np.array_equal(outs[0], r) and np.array_equal(outs[1], y)
    only = m.run(x, quantized=True, output_names=["y"])
    assert isinstance(only, list) and len(only) == 1 and np.array_equal(only[0], y)
    yf = np.empty((3, 24), np.float32)
    assert m.run(dequantize(x, Q_IN), output_names=["y"], out=[yf])[0] is yf
    assert np.array_equal(yf, dequantize(y, Q_OUT))
    with pytest.raises(InputError):
        m.run(x, quantized=True, output_names=["nope"])
    with pytest.raises(InputError):
        m.run(x, quantized=True, out=[np.empty((3, 24), np.int16), outs[1]])
    with pytest.raises(InputError):
        m.run(x, quantized=True, out=[outs[0]])
    with pytest.raises(InputError):
        m.run(x, quantized=True, out=[np.empty((3, 24), np.int8)[:, ::1], np.empty((24, 3), np.int8).T])
    with pytest.raises(ArgumentTypeError):
        m.run(x, quantized=True, output_names="y")
    single = intrt.load(fmt.to_bytes(fc_graph()))
    o = np.empty((3, 24), np.int8)
    assert single.run(x, quantized=True, out=o) is o


def test_aligned_buffers():
    # packed weights and the activation arena start on cache lines (numpy's own large arrays sit 16 bytes past)
    for shape, dt in (((3, 5), np.int8), (1_000_003, np.uint8), ((0, 4), np.int32), (7, [("a", "<i4", 3)])):
        a = cpu.aligned_empty(shape, dt)
        assert a.flags.c_contiguous and a.shape == (shape if isinstance(shape, tuple) else (shape,))
        assert a.size == 0 or a.ctypes.data % 64 == 0
    src = np.arange(100_000, dtype=np.int16).reshape(100, 1000)
    c = cpu.aligned_copy(src)
    assert c.ctypes.data % 64 == 0 and np.array_equal(c, src)


def test_activation_arena_is_aligned(mobilenet):
    m = intrt.load(mobilenet)
    plan = m._plan(m._stored_key)
    inner = [b for i, b in enumerate(plan.buffers) if b is not None and m.graph.tensors[i].data is None
             and b.nbytes >= 64 and b.base is not None]
    assert inner and all(b.ctypes.data % 64 == 0 for b in inner)
