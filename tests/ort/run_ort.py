#!/usr/bin/env python3
"""Runs ONNX models exported by netc with ONNX Runtime, after checking them.

Every model is first checked with `onnx.checker.check_model(model, full_check=True)` and
`onnx.shape_inference.infer_shapes(model, strict_mode=True)`; a model that fails either is
reported and the script exits with status 1. Then each run's inputs (`.npy` files) are fed
to an `onnxruntime.InferenceSession` on the CPU and every output is written as `.npy`.

One model:

    run_ort.py MODEL.onnx --input x=x.npy [--input y=y.npy …] --out-dir DIR

writes DIR/<output name>.npy for each output of the model (names with `/` get `_`).

Many models in one process (what tests/onnx.rs does, to pay the imports once):

    run_ort.py --jobs JOBS.json

where JOBS.json is a list of {"model": PATH, "runs": [{"inputs": {NAME: NPY},
"outputs": {NAME: NPY}}]}; each run writes the named outputs to the given paths.

Exit status: 0 success, 1 a model failed the checks or could not be run, 2 usage errors.
"""

import argparse
import json
import sys


def check(path):
    """Loads `path` and runs the checker and strict shape inference; returns the model."""
    import onnx

    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, strict_mode=True)
    return model


def session(path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # errors only
    return ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])


def run(sess, inputs):
    """Runs `sess` on {name: npy path}; returns {output name: array}."""
    import numpy as np

    feed = {name: np.load(p) for name, p in inputs.items()}
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feed)))


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", nargs="?", help="the .onnx file")
    ap.add_argument("--input", action="append", default=[], metavar="NAME=NPY")
    ap.add_argument("--out-dir", help="where to write <output>.npy")
    ap.add_argument("--jobs", help="a JSON list of models and runs (see the docstring)")
    args = ap.parse_args(argv)

    import numpy as np

    if args.jobs:
        with open(args.jobs) as f:
            jobs = json.load(f)
    elif args.model and args.out_dir:
        import os

        inputs = {}
        for spec in args.input:
            name, sep, path = spec.partition("=")
            if not sep:
                ap.error(f"--input takes NAME=FILE.npy, not {spec!r}")
            inputs[name] = path
        jobs = [{"model": args.model, "runs": [{"inputs": inputs, "outputs": None}]}]
        out_dir = args.out_dir
        os.makedirs(out_dir, exist_ok=True)
    else:
        ap.error("give MODEL with --out-dir, or --jobs")
        return 2

    failed = False
    for job in jobs:
        path = job["model"]
        try:
            check(path)
        except Exception as e:  # the checker raises several exception types
            print(f"{path}: fails the ONNX checks: {e}", file=sys.stderr)
            failed = True
            continue
        try:
            sess = session(path)
            for r in job["runs"]:
                outs = run(sess, r["inputs"])
                targets = r["outputs"]
                if targets is None:
                    import os

                    targets = {
                        n: os.path.join(out_dir, n.replace("/", "_") + ".npy") for n in outs
                    }
                for name, target in targets.items():
                    if name not in outs:
                        raise KeyError(f"the model has no output {name!r} (it has {sorted(outs)})")
                    np.save(target, outs[name])
        except Exception as e:
            print(f"{path}: ONNX Runtime failed: {e}", file=sys.stderr)
            failed = True
            continue
        print(f"{path}: ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
