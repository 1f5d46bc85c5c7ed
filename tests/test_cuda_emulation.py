"""The CUDA kernels checked on the host (no GPU needed).

- tests/cuda_emulation/bitmap_mma_emulation.cpp: the lane arithmetic of the bitmap
  kernels (csrc/kernels/cuda/bitmap_fragment.h, as is) for every lane of every warp,
  with mma.m16n8k16 and the warp shuffles emulated from the PTX ISA's fragment layouts,
  against a dense product.
- tests/cuda_emulation/bitmap_kernels_on_host.cpp, csr_kernels_on_host.cpp: the bitmap
  and CSR SpMM and validator source itself (.cu files included as they are) run on host
  threads, one per CUDA thread (cuda_host_shim.h): plan, launches, shared-memory
  staging, barriers, split K, epilogues, validation results. Built twice: with AddressSanitizer + UBSan (an
  out-of-bounds read of any operand fails) and with ThreadSanitizer (a shared-memory
  race between the emulated threads, e.g. a missing barrier, fails).

Neither replaces a GPU run (tests/test_cuda*.py): no timing, no hardware memory model,
no register or shared-memory limits.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EMU = ROOT / "tests" / "cuda_emulation"
CXX = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")


def _cuda_include():
    candidates = [os.environ.get("CUDA_HOME")]
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.append(str(Path(os.path.realpath(nvcc)).parent.parent))
    candidates.append("/usr/local/cuda")
    for c in candidates:
        if c and (Path(c) / "include" / "cuda_runtime.h").is_file():
            return Path(c) / "include"
    return None


def _build_and_run(tmp_path, sources, flags, env=None, timeout=900):
    sources = [sources] if isinstance(sources, str) else sources
    exe = tmp_path / Path(sources[0]).stem
    build = subprocess.run([CXX, *flags, f"-I{ROOT / 'csrc'}", f"-I{EMU}", *(str(EMU / s) for s in sources),
                            "-o", str(exe)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-4000:]
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=timeout,
                         env={**os.environ, **(env or {})})
    assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]
    assert " 0 failures" in run.stdout, run.stdout
    assert "Sanitizer" not in run.stderr and "runtime error" not in run.stderr, run.stderr[-6000:]


@pytest.mark.skipif(CXX is None, reason="no host C++ compiler (c++ / g++ / $CXX)")
def test_bitmap_fragment_lane_arithmetic(tmp_path):
    _build_and_run(tmp_path, "bitmap_mma_emulation.cpp", ["-std=c++17", "-O2", "-Wall", "-Werror"])


SANITIZERS = {
    "address+undefined": ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"],
    "thread": ["-fsanitize=thread"],
}


HOST_RUNS = {
    "bitmap": ["bitmap_kernels_on_host.cpp"],
    "csr": ["csr_kernels_on_host.cpp", "csr_validate_on_host.cpp"],
}


@pytest.mark.skipif(CXX is None, reason="no host C++ compiler (c++ / g++ / $CXX)")
@pytest.mark.skipif(_cuda_include() is None, reason="no CUDA toolkit headers (cuda_runtime.h)")
@pytest.mark.parametrize("sanitizer", list(SANITIZERS))
@pytest.mark.parametrize("kernels", list(HOST_RUNS))
def test_cuda_kernels_on_host_threads(tmp_path, kernels, sanitizer):
    flags = ["-std=c++20", "-O1", "-g", "-pthread", "-Wall", "-Werror", "-Wno-unknown-pragmas",
             "-isystem", str(_cuda_include()), *SANITIZERS[sanitizer]]
    # halt_on_error: the first report fails the run (TSan otherwise only warns)
    env = {"TSAN_OPTIONS": "halt_on_error=1", "ASAN_OPTIONS": "detect_leaks=0"}
    _build_and_run(tmp_path, HOST_RUNS[kernels], flags, env)
