"""Loads the compiled library and reports what it was built with."""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from pathlib import Path

import torch

_HERE = Path(__file__).resolve().parent


def _find_library() -> Path:
    found = sorted(_HERE.glob("_C*.so")) + sorted(_HERE.glob("_C*.pyd"))
    if not found:
        raise ImportError(
            f"sparsekernels: the compiled library (_C*.so) is missing from {_HERE}; "
            "build it with `pip install --no-build-isolation -e .` from the repository root"
        )
    return found[0]


LIBRARY_PATH = _find_library()
torch.ops.load_library(str(LIBRARY_PATH))

BUILD_INFO: dict = json.loads(torch.ops.sparsekernels.build_info())
BUILD_INFO["cpu_isas"] = [s for s in BUILD_INFO["cpu_isas"].split(",") if s]
BUILD_INFO["cuda_archs"] = [s for s in BUILD_INFO["cuda_archs"].split(",") if s]


def _check_torch_version() -> None:
    built, running = BUILD_INFO["torch"], torch.__version__
    # The C++ ABI of torch changes between minor releases; a local-version or patch
    # difference (2.13.0+cpu vs 2.13.0) is fine.
    if built.split("+")[0].rsplit(".", 1)[0] != running.split("+")[0].rsplit(".", 1)[0]:
        warnings.warn(
            f"sparsekernels was built against torch {built} but torch {running} is installed; "
            "rebuild with `pip install --no-build-isolation -e .` if ops fail to load or crash",
            RuntimeWarning,
            stacklevel=3,
        )


_check_torch_version()

CPU_ISAS = ("scalar", "avx2", "avx512", "avx512bf16")


def cpu_isa() -> str:
    """The CPU kernel variant in use: 'scalar', 'avx2', 'avx512' or 'avx512bf16' (avx512 plus
    AVX512-BF16 dot products in bf16 bitmap and 2:4 SpMM)."""
    return torch.ops.sparsekernels.cpu_isa()


def _check_isa(fn: str, isa) -> None:
    if not isinstance(isa, str):
        raise TypeError(f"{fn}: isa must be a str (one of {', '.join(CPU_ISAS)}), got {type(isa).__name__}")


def cpu_isa_supported(isa: str) -> bool:
    """Whether this CPU can run the given kernel variant."""
    _check_isa("cpu_isa_supported", isa)
    return bool(torch.ops.sparsekernels.cpu_isa_supported(isa))


def set_cpu_isa(isa: str) -> None:
    """Force a CPU kernel variant (ValueError if unknown or unsupported by this CPU)."""
    _check_isa("set_cpu_isa", isa)
    torch.ops.sparsekernels.set_cpu_isa(isa)


@contextlib.contextmanager
def use_cpu_isa(isa: str):
    """Context manager: run CPU kernels with the given variant, then restore."""
    _check_isa("use_cpu_isa", isa)
    previous = cpu_isa()
    set_cpu_isa(isa)
    try:
        yield
    finally:
        set_cpu_isa(previous)


_env_isa = os.environ.get("SPARSEKERNELS_CPU_ISA", "")
if _env_isa:
    try:
        set_cpu_isa(_env_isa)
    except ValueError as e:
        raise ImportError(f"SPARSEKERNELS_CPU_ISA={_env_isa!r}: {e}") from None


def build_info() -> dict:
    """What this build of sparsekernels contains, plus the running torch and active CPU ISA."""
    return dict(BUILD_INFO, torch_running=torch.__version__, cpu_isa_active=cpu_isa())
