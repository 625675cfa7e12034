"""intrt.dask on a distributed.LocalCluster with two worker processes: results identical to a local
Model.run, the model loaded once per worker process, and clear errors for bad input."""
import os

import numpy as np
import pytest

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
pd = pytest.importorskip("pandas")
distributed = pytest.importorskip("distributed")

import intrt  # noqa: E402
import intrt.dask as idask  # noqa: E402
from intrt.demo import main as demo  # noqa: E402


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("dask") / "digits.intrt")
    demo(["--out", path, "--quiet"])
    return path


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  worker_dashboard_address=None) as cluster, distributed.Client(cluster) as c:
        yield c


def images(n, seed=0):
    return np.random.default_rng(seed).random((n, 8, 8, 1), dtype=np.float32) * 1.2 - 0.1


def worker_loads(client):
    return client.run(lambda: __import__("intrt.dask", fromlist=["_loads"])._loads)


def test_predict_matches_local_run_and_loads_once_per_worker(client, model_path):
    x = images(37)
    before = sum(worker_loads(client).values())
    y = idask.predict(model_path, da.from_array(x, chunks=(5, 8, 8, 1)))    # 8 chunks, the last one of 2
    assert y.shape == (37, 10) and y.dtype == np.float32 and y.chunks[0] == (5,) * 7 + (2,)
    got = y.compute()
    local = intrt.load(model_path)
    assert got.tobytes() == local.run(x).tobytes()
    loads = worker_loads(client)
    assert len(loads) == 2
    # one load per worker process at most, however many chunks (8 here) it ran; a second call reuses them
    assert sum(loads.values()) - before <= 2
    again = idask.predict(model_path, da.from_array(x, chunks=(3, 8, 8, 1))).compute()
    assert again.tobytes() == got.tobytes()
    assert worker_loads(client) == loads


def test_predict_quantized_from_file_bytes(client, model_path):
    local = intrt.load(model_path)
    q = np.random.default_rng(2).integers(-128, 128, (23, 8, 8, 1)).astype(np.int8)
    with open(model_path, "rb") as f:
        data = f.read()
    y = idask.predict(data, da.from_array(q, chunks=(6, 8, 8, 1)), quantized=True)
    got = y.compute()
    assert got.dtype == np.int8
    assert got.tobytes() == local.run(q, quantized=True).tobytes()


def test_predict_rechunks_a_non_batch_axis(client, model_path):
    x = images(12, seed=3)
    split = da.from_array(x, chunks=(4, 4, 8, 1))                            # split along height
    assert idask.predict(model_path, split).compute().tobytes() == intrt.load(model_path).run(x).tobytes()
    with pytest.raises(intrt.InputError, match="chunked along axis"):
        idask.predict(model_path, split, rechunk=False)


def test_unreadable_path_on_the_workers_is_a_clear_error(client, model_path, tmp_path):
    moved = str(tmp_path / "soon_gone.intrt")
    with open(model_path, "rb") as src, open(moved, "wb") as dst:
        dst.write(src.read())
    y = idask.predict(moved, da.from_array(images(4), chunks=(2, 8, 8, 1)))
    os.remove(moved)                  # the client has read it; the workers will not find it
    with pytest.raises(intrt.InputError, match="cannot be read"):
        y.compute()


def test_several_outputs(client, tmp_path):
    from intrt.convert import GraphBuilder, convert
    rng = np.random.default_rng(7)
    b = GraphBuilder()
    x = b.input("x", [1, 6])
    h = b.fully_connected(x, rng.normal(size=(5, 6)).astype(np.float32), np.zeros(5, np.float32))
    y = b.fully_connected(h, rng.normal(size=(3, 5)).astype(np.float32), np.zeros(3, np.float32))
    data = rng.random((40, 6), dtype=np.float32)
    path = str(tmp_path / "two.intrt")
    convert(b.build(outputs=[h, y], dynamic_batch=True), data, path, quiet=True)
    local = intrt.load(path).run(data)
    arr = da.from_array(data, chunks=(9, 6))
    both = idask.predict(path, arr)
    assert isinstance(both, list) and len(both) == 2
    for got, want in zip(dask.compute(*both), local):
        assert got.tobytes() == want.tobytes()
    second = idask.predict(path, arr, output=intrt.load(path).outputs[1].name).compute()
    assert second.tobytes() == local[1].tobytes()


def test_bad_arguments(model_path, tmp_path):
    x = da.from_array(images(4), chunks=(2, 8, 8, 1))
    with pytest.raises(intrt.InputError, match="cannot read"):
        idask.predict(str(tmp_path / "missing.intrt"), x)
    with pytest.raises(intrt.ArgumentTypeError, match="path to a .intrt file or the file's bytes"):
        idask.predict(intrt.load(model_path), x)
    with pytest.raises(intrt.ArgumentTypeError, match="dask array"):
        idask.predict(model_path, images(4))
    with pytest.raises(intrt.ShapeError):
        idask.predict(model_path, da.zeros((4, 64), chunks=2))
    with pytest.raises(intrt.InputError, match="no output named"):
        idask.predict(model_path, x, output="nope")


def test_predict_partitions_matches_local_run(client, model_path):
    x = images(29, seed=5)
    columns = [f"px{i}" for i in range(64)]
    frame = pd.DataFrame(x.reshape(29, 64), columns=columns, index=pd.RangeIndex(100, 129))
    frame["label"] = np.arange(29)
    ddf = dd.from_pandas(frame, npartitions=3)
    scores = idask.predict_partitions(model_path, ddf, columns=columns, output="score")
    got = scores.compute()
    assert list(got.columns) == [f"score_{j}" for j in range(10)]
    assert list(got.index) == list(range(100, 129))
    assert got.to_numpy().tobytes() == intrt.load(model_path).run(x).tobytes()
    named = idask.predict_partitions(model_path, ddf, columns=columns, output=[f"d{j}" for j in range(10)])
    assert list(named.compute().columns) == [f"d{j}" for j in range(10)]


def test_predict_partitions_bad_arguments(model_path):
    frame = dd.from_pandas(pd.DataFrame(np.zeros((4, 3)), columns=["a", "b", "c"]), npartitions=1)
    with pytest.raises(intrt.ShapeError, match="64 values per sample"):
        idask.predict_partitions(model_path, frame, columns=["a", "b", "c"])
    with pytest.raises(intrt.InputError, match="no column"):
        idask.predict_partitions(model_path, frame, columns=["a", "zz"])
