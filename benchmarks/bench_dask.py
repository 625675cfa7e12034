"""Throughput of intrt.dask.predict on a distributed.LocalCluster with 1 and 2 worker processes.

    python benchmarks/bench_dask.py [--model mobilenet_v2|digits|PATH.intrt] [--images 2048] [--chunk 64]

Each worker process has one Dask thread and one intrt kernel thread (INTRT_NUM_THREADS=1), so 2 workers use 2
cores. The images are made on the workers and kept there (persist) before timing, so the times are inference
plus Dask's scheduling, not the transfer of the inputs; the outputs are gathered to the client. Each setting is
measured after a warm-up run (which loads the model once per worker), as the median of --repeat runs. The line
"local" is one Model.run per chunk in this process, with one thread.
Needs: pip install 'intrt[dask]'.
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def model_file(name: str, folder: str) -> str:
    if name.endswith(".intrt"):
        return name
    path = os.path.join(folder, name + ".intrt")
    if name == "digits":
        from intrt.demo import main as demo
        demo(["--out", path, "--quiet"])
    else:
        from intrt.convert.tflite import from_tflite
        from intrt.format import save
        graph = from_tflite(os.path.join(HERE, "..", "tests", "fixtures", "tflite", name + ".tflite"))
        graph.dynamic_batch = True      # the fixture keeps the batch in dim 0 (as in bench_models.py)
        save(graph, path)
    return path


def run(path, x):
    import dask
    import intrt.dask

    out = intrt.dask.predict(path, x)                 # a list for a model with several outputs
    return dask.compute(*(out if isinstance(out, list) else [out]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="mobilenet_v2")
    p.add_argument("--images", type=int, default=2048)
    p.add_argument("--chunk", type=int, default=64)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    os.environ["INTRT_NUM_THREADS"] = "1"            # inherited by the worker processes

    import dask.array as da
    import distributed
    import intrt
    import intrt.dask

    with tempfile.TemporaryDirectory() as tmp:
        path = model_file(args.model, tmp)
        model = intrt.load(path)
        intrt.set_num_threads(1)
        shape = (args.images,) + tuple(model.inputs[0].shape[1:])
        print(f"model {args.model}: input {model.inputs[0].shape}, {args.images} images in chunks of {args.chunk}")
        x_local = np.random.default_rng(0).random((args.chunk,) + shape[1:], dtype=np.float32)
        model.run(x_local)
        t = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            for _ in range(args.images // args.chunk):
                model.run(x_local)
            t.append(time.perf_counter() - t0)
        local = args.images / float(np.median(t))
        print(f"local (one process, 1 thread): {local:10.1f} images/s")
        for workers in (1, 2):
            with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                          dashboard_address=None) as cluster, distributed.Client(cluster) as client:
                x = da.random.default_rng(0).random(shape, chunks=(args.chunk,) + shape[1:], dtype=np.float32)
                x = x.persist()
                distributed.wait(x)
                run(path, x)                                  # warm-up: each worker loads the model once
                t = []
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    run(path, x)
                    t.append(time.perf_counter() - t0)
                rate = args.images / float(np.median(t))
                print(f"{workers} worker process{'es' if workers > 1 else ''}:            {rate:10.1f} images/s "
                      f"({rate / local:.2f}x local)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
