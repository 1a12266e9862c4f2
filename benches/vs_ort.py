#!/usr/bin/env python3
"""netc against ONNX Runtime, side by side, on the nets of issue 11.

    python3 benches/vs_ort.py                      # every case, about 5 minutes on an idle 2-core VM
    python3 benches/vs_ort.py --quick              # fewer rounds and iterations
    python3 benches/vs_ort.py --nets lenet5,lstm   # some nets only
    python3 benches/vs_ort.py --format json        # or --format csv (or --csv)

Needs only python3 (with its `venv` module) and cargo: on the first run it makes a virtual
environment at benches/.venv (ignored by git through `.venv/` in .gitignore) with
onnxruntime, numpy and onnx pinned as in .ci/run, and re-runs itself inside it. It builds
netc with `cargo build --release`, and for each case

  1. exports the net with `netc export FILE --seed S` (the random weights of `netc init --seed S`,
     the same weights `netc bench --seed S` runs with),
  2. opens it in an ONNX Runtime InferenceSession (CPU, intra_op_num_threads = --threads,
     inter_op_num_threads = 1, sequential execution, all graph optimisations), with inputs of
     the exported model's own names, dtypes and shapes (symbolic dims `N` = batch, `T` = ...),
  3. times netc (`netc bench --format json`, one process per round) and ORT (run with an
     IOBinding to preallocated outputs, like netc's allocation-free `run_into`) in
     alternating rounds: R rounds of k iterations per side (after W warm-up runs each round),
     netc first in even rounds and ORT first in odd ones.

netc's figure is the median of its per-round medians (`netc bench` prints a median per run,
not every iteration); ORT's is the median of all its timed iterations (its median of round
medians is in the JSON and CSV as a check). The ratio is netc / ORT: below 1, netc is faster.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_VENV = HERE / ".venv"
PINS = ["onnxruntime==1.32.0", "numpy==2.4.6", "onnx==1.23.2"]
REEXEC_FLAG = "NETC_VS_ORT_IN_VENV"

# (key, .net file, batch, other sizes): the cases of issue 11.
CASES = [
    ("lenet5", "nets/lenet5.net", 1, {}),
    ("lenet5", "nets/lenet5.net", 64, {}),
    ("alexnet", "nets/alexnet.net", 1, {}),
    ("resnet18", "nets/resnet18.net", 1, {}),
    ("resnet50", "nets/resnet50.net", 1, {}),
    ("googlenet", "nets/googlenet.net", 1, {}),
    ("inception_v3", "nets/inception_v3.net", 1, {}),
    ("vgg16", "nets/vgg16.net", 1, {}),
    ("lstm", "nets/lstm.net", 32, {"T": 35}),
]


def log(msg=""):
    print(msg, file=sys.stderr, flush=True)


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Time netc's native code against ONNX Runtime 1.32 on the same nets, "
        "weights and input shapes (interleaved rounds).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="cases: " + ", ".join(f"{k} b{b}" for k, _, b, _ in CASES),
    )
    p.add_argument("--nets", help="comma-separated nets to run (default: all): "
                   + ",".join(dict.fromkeys(k for k, *_ in CASES)))
    p.add_argument("--quick", action="store_true",
                   help="3 rounds of ~0.3 s per side instead of 5 rounds of ~1.5 s")
    p.add_argument("--threads", type=int, default=1,
                   help="ORT's intra-op threads (netc has no thread pool yet and always runs "
                   "on 1 thread; the table says so when this is above 1)")
    p.add_argument("--rounds", type=int, help="rounds per side (default 5, --quick 3)")
    p.add_argument("--iters", type=int,
                   help="timed iterations per round and side (default: about --round-ms of "
                   "ORT time, at least 3, at most 500 (100 with --quick))")
    p.add_argument("--round-ms", type=float, help="target ORT time per round (default 1500, "
                   "--quick 300)")
    p.add_argument("--warmup", type=int, help="untimed runs per round and side (default 2, "
                   "--quick 1)")
    p.add_argument("--seed", type=int, default=0, help="weights seed (netc init --seed)")
    p.add_argument("--ort-api", choices=["iobinding", "run"], default="iobinding",
                   help="time ORT through run_with_iobinding on preallocated outputs "
                   "(default) or InferenceSession.run (adds ~10-15 us of Python and output "
                   "allocation per call)")
    p.add_argument("--fixed-batch", action="store_true",
                   help="export with a fixed batch (`netc export --batch B`) instead of a "
                   "symbolic N")
    p.add_argument("--format", choices=["table", "json", "csv"], default="table")
    p.add_argument("--csv", action="store_const", const="csv", dest="format",
                   help="same as --format csv")
    p.add_argument("--netc", type=Path, help="netc binary (default: build and use "
                   "target/release/netc)")
    p.add_argument("--no-build", action="store_true", help="skip `cargo build --release`")
    p.add_argument("--keep-onnx", type=Path, metavar="DIR",
                   help="write the exported models here and keep them")
    p.add_argument("--venv", type=Path, default=DEFAULT_VENV,
                   help=f"virtual environment (default {DEFAULT_VENV.relative_to(REPO)})")
    a = p.parse_args(argv)
    if a.threads < 1:
        p.error("--threads must be at least 1")
    a.rounds = a.rounds or (3 if a.quick else 5)
    a.round_ms = a.round_ms or (300.0 if a.quick else 1500.0)
    if a.warmup is None:
        a.warmup = 1 if a.quick else 2
    a.max_iters = 100 if a.quick else 500
    if a.nets:
        want = [n.strip() for n in a.nets.split(",") if n.strip()]
        known = {k for k, *_ in CASES}
        bad = [n for n in want if n not in known]
        if bad:
            p.error(f"unknown net(s) {', '.join(bad)}; known: {', '.join(sorted(known))}")
        a.cases = [c for c in CASES if c[0] in want]
    else:
        a.cases = list(CASES)
    return a


# ---------------------------------------------------------------------------------------------
# The virtual environment


def venv_python(venv):
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


CHECK_PINS = """
import sys
from importlib.metadata import version, PackageNotFoundError
def ok(name, v):
    try:
        return version(name) == v
    except PackageNotFoundError:
        return False
sys.exit(0 if all(ok(*p.split("==")) for p in sys.argv[1:]) else 1)
"""


def ensure_venv(venv):
    """Creates `venv` with the pinned packages if needed; returns its python."""
    py = venv_python(venv)
    if not py.exists():
        log(f"creating the virtual environment {venv}")
        r = subprocess.run([sys.executable, "-m", "venv", str(venv)])
        if r.returncode != 0 or not py.exists():
            shutil.rmtree(venv, ignore_errors=True)
            sys.exit("error: `python3 -m venv` failed; install Python's venv module "
                     "(Debian/Ubuntu: apt-get install python3-venv) and run again")
    if subprocess.run([str(py), "-c", CHECK_PINS, *PINS]).returncode != 0:
        log(f"installing {' '.join(PINS)} into {venv}")
        r = subprocess.run([str(py), "-m", "pip", "install", "--quiet",
                            "--disable-pip-version-check", *PINS])
        if r.returncode != 0:
            sys.exit(f"error: pip could not install {' '.join(PINS)} into {venv}")
    return py


def in_venv(venv):
    try:
        return Path(sys.prefix).resolve() == venv.resolve()
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# netc


def build_netc(args):
    if args.netc:
        if not args.netc.exists():
            sys.exit(f"error: --netc {args.netc} does not exist")
        return args.netc.resolve()
    exe = REPO / "target" / "release" / ("netc.exe" if os.name == "nt" else "netc")
    if not args.no_build:
        if shutil.which("cargo"):
            log("cargo build --release")
            r = subprocess.run(["cargo", "build", "--release", "--bin", "netc"], cwd=REPO,
                               stdout=sys.stderr)
            if r.returncode != 0:
                sys.exit("error: `cargo build --release` failed")
        elif exe.exists():
            log("warning: no cargo on PATH; using the existing target/release/netc")
        else:
            sys.exit("error: no cargo on PATH and no target/release/netc")
    if not exe.exists():
        sys.exit(f"error: {exe} does not exist (build it or pass --netc)")
    return exe


def size_args(sizes):
    out = []
    for k, v in sizes.items():
        out += ["--size", f"{k}={v}"]
    return out


def netc_export(netc, case, args, out):
    _, file, batch, _ = case
    cmd = [str(netc), "export", file, "--seed", str(args.seed), "-o", str(out), "--color", "never"]
    if args.fixed_batch:
        cmd += ["--batch", str(batch)]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` exited {r.returncode}: "
                           f"{(r.stderr or r.stdout).strip()}")


def netc_round(netc, case, args, iters):
    _, file, batch, sizes = case
    cmd = [str(netc), "bench", file, "--batch", str(batch), *size_args(sizes),
           "--iters", str(iters), "--warmup", str(args.warmup), "--seed", str(args.seed),
           "--format", "json"]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` exited {r.returncode}: "
                           f"{(r.stderr or r.stdout).strip()}")
    lines = [ln for ln in r.stdout.splitlines() if ln.strip().startswith("{")]
    if not lines:
        raise RuntimeError(f"`{' '.join(cmd)}` printed no JSON: {r.stdout.strip()!r}")
    return json.loads(lines[-1])


# ---------------------------------------------------------------------------------------------
# ONNX Runtime

DTYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}


def index_ranges(model_path):
    """For inputs used as Gather indices into an initializer: the table's first dim (the
    vocabulary), so random ids stay in range, as netc's random inputs do."""
    import onnx

    m = onnx.load(str(model_path), load_external_data=False)
    inits = {t.name: list(t.dims) for t in m.graph.initializer}
    for n in m.graph.node:  # constant tables written as Constant nodes
        if n.op_type == "Constant":
            for at in n.attribute:
                if at.name == "value":
                    inits[n.output[0]] = list(at.t.dims)
    inputs = {i.name for i in m.graph.input}
    out = {}
    for n in m.graph.node:
        if n.op_type == "Gather" and len(n.input) > 1 and n.input[1] in inputs:
            dims = inits.get(n.input[0])
            axis = next((at.i for at in n.attribute if at.name == "axis"), 0)
            if dims:
                r = dims[axis]
                out[n.input[1]] = min(out.get(n.input[1], r), r)
    return out


class OrtCase:
    def __init__(self, model_path, case, args):
        import numpy as np
        import onnxruntime as ort

        _, _, batch, sizes = case
        so = ort.SessionOptions()
        so.intra_op_num_threads = args.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.sess = ort.InferenceSession(str(model_path), so,
                                         providers=["CPUExecutionProvider"])
        dims = {"N": batch, **sizes}
        ranges = index_ranges(model_path)
        rng = np.random.default_rng(args.seed)
        self.feeds = {}
        self.input_desc = []
        for i in self.sess.get_inputs():
            shape = []
            for d in i.shape:
                if isinstance(d, int):
                    shape.append(d)
                elif d in dims:
                    shape.append(int(dims[d]))
                else:
                    raise RuntimeError(f"input `{i.name}` has the dim `{d}` with no value "
                                       f"(known: {dims})")
            if i.type not in DTYPES:
                raise RuntimeError(f"input `{i.name}` has the type {i.type}, not handled here")
            dt = np.dtype(DTYPES[i.type])
            if dt.kind in "iu":
                hi = ranges.get(i.name, 2)
                x = rng.integers(0, max(hi, 1), size=shape, dtype=dt)
            elif dt.kind == "b":
                x = rng.integers(0, 2, size=shape).astype(bool)
            else:  # uniform in [-1, 1), as netc bench's random inputs
                x = rng.uniform(-1.0, 1.0, size=shape).astype(dt)
            self.feeds[i.name] = x
            self.input_desc.append(f"{i.name}: {i.type[7:-1]}{shape}")
        self.output_names = [o.name for o in self.sess.get_outputs()]
        outs = self.sess.run(self.output_names, self.feeds)  # shapes for the binding
        self.use_binding = args.ort_api == "iobinding"
        if self.use_binding:
            self.binding = self.sess.io_binding()
            for name, x in self.feeds.items():
                self.binding.bind_cpu_input(name, x)
            self.out_values = []
            for name, y in zip(self.output_names, outs):
                v = ort.OrtValue.ortvalue_from_numpy(np.empty_like(y))
                self.out_values.append(v)
                self.binding.bind_ortvalue_output(name, v)

    def once(self):
        if self.use_binding:
            self.sess.run_with_iobinding(self.binding)
        else:
            self.sess.run(self.output_names, self.feeds)

    def round(self, iters, warmup):
        once = self.once
        for _ in range(warmup):
            once()
        ts = []
        clock = time.perf_counter_ns
        for _ in range(iters):
            t = clock()
            once()
            ts.append((clock() - t) / 1e6)
        return ts


# ---------------------------------------------------------------------------------------------
# The comparison


def loadavg():
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def case_label(case):
    key, _, batch, sizes = case
    extra = "".join(f" {k}={v}" for k, v in sizes.items())
    return f"{key}{extra}"


def run_case(netc, case, args, onnx_dir):
    key, file, batch, sizes = case
    res = {"net": key, "file": file, "batch": batch, "sizes": sizes,
           "threads_ort": args.threads, "threads_netc": 1, "load_before": loadavg()}
    model = onnx_dir / f"{key}_b{batch}.onnx"
    stage = "export"
    try:
        netc_export(netc, case, args, model)
        res["onnx_bytes"] = model.stat().st_size
        stage = "ORT session"
        oc = OrtCase(model, case, args)
        res["ort_inputs"] = oc.input_desc
        # Calibrate k on ORT (the session is warm from its first run).
        cal = oc.round(3, 1)
        t_est = statistics.median(cal)
        k = args.iters or max(3, min(args.max_iters, int(round(args.round_ms / max(t_est, 1e-3)))))
        res["iters_per_round"] = k
        res["rounds"] = args.rounds
        res["warmup"] = args.warmup
        netc_rounds, ort_rounds, ort_all = [], [], []
        for r in range(args.rounds):
            order = ("netc", "ort") if r % 2 == 0 else ("ort", "netc")
            for side in order:
                if side == "netc":
                    stage = "netc bench"
                    j = netc_round(netc, case, args, k)
                    netc_rounds.append(j)
                else:
                    stage = "ORT run"
                    ts = oc.round(k, args.warmup)
                    ort_rounds.append(statistics.median(ts))
                    ort_all += ts
            log(f"  round {r + 1}/{args.rounds}: netc {netc_rounds[-1]['median_ms']:.4f} ms, "
                f"ORT {ort_rounds[-1]:.4f} ms (k = {k})")
        del oc
        nm = [j["median_ms"] for j in netc_rounds]
        res["netc_median_ms"] = statistics.median(nm)
        res["netc_round_medians_ms"] = nm
        res["netc_min_ms"] = min(j["min_ms"] for j in netc_rounds)
        res["netc_compile_ms"] = statistics.median(j["compile_ms"] for j in netc_rounds)
        res["netc_gflops"] = netc_rounds[0].get("gflops") and \
            netc_rounds[0]["gflops"] * netc_rounds[0]["median_ms"] / res["netc_median_ms"]
        res["netc_arena_bytes"] = netc_rounds[0].get("arena_bytes")
        res["threads_netc"] = netc_rounds[0].get("threads", 1)
        res["ort_median_ms"] = statistics.median(ort_all)
        res["ort_median_of_rounds_ms"] = statistics.median(ort_rounds)
        res["ort_round_medians_ms"] = ort_rounds
        res["ort_min_ms"] = min(ort_all)
        res["ratio"] = res["netc_median_ms"] / res["ort_median_ms"]
        if res["netc_gflops"]:
            res["ort_gflops"] = res["netc_gflops"] * res["netc_median_ms"] / res["ort_median_ms"]
    except Exception as e:  # noqa: BLE001 -- reported per case, the others still run
        res["error"] = f"{stage}: {type(e).__name__}: {e}".strip()
    finally:
        if not args.keep_onnx:
            model.unlink(missing_ok=True)
    res["load_after"] = loadavg()
    return res


def spread(xs):
    """(max - min) / median of the round medians, in percent."""
    if not xs:
        return float("nan")
    m = statistics.median(xs)
    return 100.0 * (max(xs) - min(xs)) / m if m else float("nan")


def fmt_ms(x):
    if x is None:
        return "-"
    return f"{x:.4f}" if x < 1 else (f"{x:.3f}" if x < 10 else f"{x:.2f}" if x < 100 else f"{x:.1f}")


def print_table(meta, results, out=sys.stdout):
    head = ["net", "batch", "threads", "netc ms", "ORT ms", "netc/ORT", "netc GF/s",
            "ORT GF/s", "k x R", "spread netc/ORT", "load"]
    rows = []
    for r in results:
        thr = str(r["threads_ort"]) if r["threads_ort"] == r["threads_netc"] \
            else f"{r['threads_netc']} / {r['threads_ort']}"
        if "error" in r:
            rows.append([case_label((r["net"], None, r["batch"], r["sizes"])), str(r["batch"]),
                         thr, "FAILED", "", "", "", "", "", "", ""])
            continue
        load = "/".join(f"{x:.1f}" for x in (r["load_before"], r["load_after"]) if x is not None)
        rows.append([
            case_label((r["net"], None, r["batch"], r["sizes"])), str(r["batch"]), thr,
            fmt_ms(r["netc_median_ms"]), fmt_ms(r["ort_median_ms"]), f"{r['ratio']:.2f}",
            f"{r['netc_gflops']:.1f}" if r.get("netc_gflops") else "-",
            f"{r['ort_gflops']:.1f}" if r.get("ort_gflops") else "-",
            f"{r['iters_per_round']} x {r['rounds']}",
            f"{spread(r['netc_round_medians_ms']):.0f}% / {spread(r['ort_round_medians_ms']):.0f}%",
            load,
        ])
    w = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
         for i, h in enumerate(head)]
    left = {0}

    def line(cells):
        return "  ".join(c.ljust(w[i]) if i in left else c.rjust(w[i])
                         for i, c in enumerate(cells)).rstrip()

    print(line(head), file=out)
    print("  ".join("-" * x for x in w), file=out)
    for row in rows:
        print(line(row), file=out)
    print(file=out)
    print(f"netc/ORT < 1: netc is faster. netc ms: median of {meta['rounds']} per-round medians of "
          f"`netc bench`; ORT ms: median of all its timed runs ({meta['ort_api']}).", file=out)
    print("spread: (max - min) / median of the round medians; load: 1-minute load average "
          "before/after the case.", file=out)
    if meta["threads_ort"] > 1:
        print(f"NOTE: netc has no thread pool yet and ran on 1 thread; ORT ran on "
              f"{meta['threads_ort']} intra-op threads (threads column: netc / ORT).", file=out)
    for r in results:
        if "error" in r:
            print(f"FAILED {case_label((r['net'], None, r['batch'], r['sizes']))} "
                  f"b{r['batch']}: {r['error']}", file=out)


def print_csv(results, out=sys.stdout):
    import csv

    cols = ["net", "batch", "sizes", "threads_netc", "threads_ort", "netc_median_ms",
            "ort_median_ms", "ratio", "netc_min_ms", "ort_min_ms", "ort_median_of_rounds_ms",
            "netc_compile_ms", "netc_gflops", "ort_gflops", "iters_per_round", "rounds",
            "load_before", "load_after", "error"]
    wr = csv.writer(out)
    wr.writerow(cols)
    for r in results:
        row = []
        for c in cols:
            v = r.get(c, "")
            if c == "sizes":
                v = " ".join(f"{k}={x}" for k, x in v.items())
            row.append(v)
        wr.writerow(row)


def git_describe():
    try:
        h = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                           capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO, capture_output=True, text=True).stdout.strip()
        return h + ("+dirty" if dirty else "") if h else None
    except OSError:
        return None


def cpu_name():
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                return ln.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(args):
    import numpy as np
    import onnx
    import onnxruntime as ort

    netc = build_netc(args)
    meta = {
        "netc": str(netc), "commit": git_describe(), "onnxruntime": ort.__version__,
        "numpy": np.__version__, "onnx": onnx.__version__, "cpu": cpu_name(),
        "cpus": os.cpu_count(), "threads_ort": args.threads, "threads_netc": 1,
        "rounds": args.rounds, "warmup": args.warmup, "ort_api": args.ort_api,
        "quick": args.quick, "seed": args.seed, "fixed_batch": args.fixed_batch,
        "load_start": loadavg(),
    }
    log(f"netc {meta['commit']} vs onnxruntime {meta['onnxruntime']} on {meta['cpu']} "
        f"({meta['cpus']} CPUs, load {meta['load_start']})")
    if args.threads > 1:
        log(f"NOTE: netc has no thread pool yet: netc runs on 1 thread, ORT on {args.threads}")
    if args.keep_onnx:
        args.keep_onnx.mkdir(parents=True, exist_ok=True)
        tmp = None
        onnx_dir = args.keep_onnx
    else:
        tmp = tempfile.TemporaryDirectory(prefix="netc-vs-ort-")
        onnx_dir = Path(tmp.name)
    t0 = time.time()
    results = []
    try:
        for case in args.cases:
            log(f"{case_label(case)} b{case[2]}:")
            r = run_case(netc, case, args, onnx_dir)
            if "error" in r:
                log(f"  FAILED: {r['error']}")
            else:
                log(f"  netc {fmt_ms(r['netc_median_ms'])} ms, ORT {fmt_ms(r['ort_median_ms'])} "
                    f"ms, netc/ORT {r['ratio']:.2f}")
            results.append(r)
    finally:
        if tmp:
            tmp.cleanup()
    meta["load_end"] = loadavg()
    meta["wall_s"] = round(time.time() - t0, 1)
    if args.format == "json":
        print(json.dumps({"meta": meta, "results": results}, indent=2))
    elif args.format == "csv":
        print_csv(results)
    else:
        print(f"netc {meta['commit']} vs ONNX Runtime {meta['onnxruntime']} | {meta['cpu']}, "
              f"{meta['cpus']} CPUs | load {meta['load_start']} -> {meta['load_end']} | "
              f"{meta['wall_s']} s{' | --quick' if args.quick else ''}")
        print()
        print_table(meta, results)
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    arguments = parse_args(sys.argv[1:])
    if not in_venv(arguments.venv):
        if os.environ.get(REEXEC_FLAG):
            sys.exit(f"error: re-executed but not running in {arguments.venv}")
        py = ensure_venv(arguments.venv)
        os.environ[REEXEC_FLAG] = "1"
        os.execv(str(py), [str(py), str(Path(__file__).resolve()), *sys.argv[1:]])
    sys.exit(main(arguments))
