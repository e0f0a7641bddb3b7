"""The summary of tools/gpu_check.sh: each stage's outcome and its key numbers, as text and JSON.

    python tools/gpu_check_summary.py --out DIR [--smoke 0|1] --stage NAME STATUS SECONDS NOTE ...

Reads what the stages left in DIR (env.txt, suite.xml, benchmark.json,
digits/digits.json), writes DIR/summary.txt and DIR/summary.json, prints the
text, and exits 1 where a stage failed, else 0. A stage is passed, failed or
skipped; NOTE says what ran, and for a skipped stage (or skipped part) why.
"""

import argparse
import json
import math
import os
import sys
import xml.etree.ElementTree as ET

STATUSES = ("passed", "failed", "skipped")
MAX_LISTED = 40  # failing tests named in the summary; suite.xml has them all


def suite_numbers(path):
    """Counts of the junit XML at ``path`` and the ids of the failing tests; None where it is missing or cut off."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    counts = {key: sum(int(s.get(key, 0)) for s in suites) for key in ("tests", "failures", "errors", "skipped")}
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    failing, skip_reasons = [], {}
    for case in root.iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        for kind in ("failure", "error"):
            for element in case.findall(kind):
                message = (element.get("message") or "").splitlines()
                failing.append(f"{name} ({kind}: {message[0][:160] if message else ''})")
        for element in case.findall("skipped"):
            reason = element.get("message") or ""
            skip_reasons[reason] = skip_reasons.get(reason, 0) + 1
    counts["failing"] = failing
    counts["skip_reasons"] = dict(sorted(skip_reasons.items(), key=lambda kv: -kv[1])[:5])
    return counts


def benchmark_numbers(path):
    """The rows and the two targets of benchmarks/gpu.py's JSON at ``path``; None where it is missing."""
    try:
        with open(path) as f:
            report = json.load(f)
    except (OSError, ValueError):
        return None
    speedup = report.get("d8_512_speedup_cupy_vs_cpu")
    over_torch = report.get("d8_512_cupy_over_torch_cuda")
    return {
        "machine": report.get("machine"),
        "rows": [
            {k: r[k] for k in ("model", "batch", "implementation", "seconds_per_step", "speedup_vs_minflow_numpy")}
            for r in report.get("rows", [])
        ],
        "targets": {
            "d8_512_speedup_cupy_vs_cpu": {
                "value": speedup,
                "target": ">= 10",
                "met": None if speedup is None else speedup >= 10,
            },
            "d8_512_cupy_over_torch_cuda": {
                "value": over_torch,
                "target": "<= 3",
                "met": None if over_torch is None else over_torch <= 3,
            },
        },
    }


def digits_numbers(path):
    """Epochs, bits per dimension and seconds per step of the digits run's JSON at ``path``; None where missing."""
    try:
        with open(path) as f:
            report = json.load(f)
    except (OSError, ValueError):
        return None
    keys = ("epochs", "train_bpd", "test_bpd", "val_bpd", "best_epoch", "seconds_per_step", "seconds")
    numbers = {k: report[k] for k in keys if k in report}
    numbers["finite"] = all(math.isfinite(v) for v in report.get("train_bpd", []) + report.get("test_bpd", []))
    return numbers


def env_numbers(path):
    """The probe lines of env.txt (versions, GPU, whether CuPy and PyTorch CUDA can run)."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return {}
    keep = ("python ", "cupy ", "torch ", "CUPY:", "TORCH_CUDA:", "date:", "git:")
    return {"lines": [line for line in lines if line.startswith(keep)]}


def _fmt(x, spec=".4g"):
    return "-" if x is None else format(x, spec)


def summary_text(summary):
    lines = [f"minflow GPU check ({'smoke mode' if summary['smoke'] else 'full'}): {summary['verdict']}", ""]
    for line in summary["env"].get("lines", []):
        lines.append(f"  {line}")
    lines.append("")
    for stage in summary["stages"]:
        lines.append(f"{stage['name']:<10} {stage['status']:<8} {stage['seconds']:>5} s  {stage['note']}")
    suite = summary["suite"]
    if suite:
        lines += [
            "",
            "suite: {tests} tests, {passed} passed, {failures} failed, {errors} errors, {skipped} skipped".format(
                **suite
            ),
        ]
        lines += [f"  skipped ({n}): {reason}" for reason, n in suite["skip_reasons"].items()]
        lines += [f"  FAILED {name}" for name in suite["failing"][:MAX_LISTED]]
        if len(suite["failing"]) > MAX_LISTED:
            lines.append(f"  ... and {len(suite['failing']) - MAX_LISTED} more in suite.xml")
    bench = summary["benchmark"]
    if bench:
        lines += ["", "benchmark (seconds per step; x = minflow-numpy's seconds / this row's):"]
        for r in bench["rows"]:
            lines.append(
                f"  {r['model'].upper():<3} batch {r['batch']:>6}  {r['implementation']:<14} "
                f"{_fmt(r['seconds_per_step'])} s  x {_fmt(r['speedup_vs_minflow_numpy'], '.3g')}"
            )
        for name, t in bench["targets"].items():
            met = "not measured" if t["met"] is None else ("met" if t["met"] else "MISSED")
            lines.append(f"  {name}: {_fmt(t['value'], '.3g')} (target {t['target']}): {met}")
    digits = summary["digits"]
    if digits:
        bpd = {k: ", ".join(f"{v:.3f}" for v in digits.get(k, [])) for k in ("train_bpd", "test_bpd")}
        lines += [
            "",
            (
                f"digits: {digits.get('epochs')} epochs; bits/dim by epoch: train {bpd['train_bpd']}, "
                f"test {bpd['test_bpd']}; {_fmt(digits.get('seconds_per_step'), '.3g')} s/step"
            ),
        ]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="the folder the stages wrote to")
    parser.add_argument("--smoke", default="0", help="1 where the check ran in smoke mode")
    parser.add_argument("--stage", nargs=4, action="append", default=[], metavar=("NAME", "STATUS", "SECONDS", "NOTE"))
    args = parser.parse_args(argv)
    stages = []
    for name, status, seconds, note in args.stage:
        if status not in STATUSES:
            parser.error(f"stage {name}: status must be one of {STATUSES}; got {status!r}")
        stages.append({"name": name, "status": status, "seconds": int(seconds), "note": note})
    failed = [s["name"] for s in stages if s["status"] == "failed"]
    skipped = [s["name"] for s in stages if s["status"] == "skipped"]
    verdict = f"FAILED ({', '.join(failed)})" if failed else "no stage failed"
    if skipped:
        verdict += f"; skipped: {', '.join(skipped)}"
    summary = {
        "smoke": args.smoke == "1",
        "verdict": verdict,
        "failed": failed,
        "skipped": skipped,
        "stages": stages,
        "env": env_numbers(os.path.join(args.out, "env.txt")),
        "suite": suite_numbers(os.path.join(args.out, "suite.xml")),
        "benchmark": benchmark_numbers(os.path.join(args.out, "benchmark.json")),
        "digits": digits_numbers(os.path.join(args.out, "digits", "digits.json")),
    }
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    text = summary_text(summary)
    with open(os.path.join(args.out, "summary.txt"), "w") as f:
        f.write(text)
    print()
    print(text, end="")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
