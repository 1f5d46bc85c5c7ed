"""The CUDA kernels' index arithmetic, run on the host (no GPU needed).

tests/cuda_emulation/*.cpp include the kernels' torch-free fragment headers
(csrc/kernels/cuda/*_fragment.h) as they are, emulate every lane of every warp
and the tensor-core instructions from the PTX ISA's fragment layouts, and
compare with a dense product. This checks which element each lane loads and
where each result lands; it does not check the CUDA code around it (shared
memory, barriers, launches), which only a GPU run does (tests/test_cuda.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CXX = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")


@pytest.mark.skipif(CXX is None, reason="no host C++ compiler (c++ / g++ / $CXX)")
@pytest.mark.parametrize("source", ["bitmap_mma_emulation.cpp"])
def test_cuda_fragment_emulation(source, tmp_path):
    exe = tmp_path / Path(source).stem
    subprocess.run(
        [CXX, "-std=c++17", "-O2", "-Wall", "-Werror", f"-I{ROOT / 'csrc'}",
         str(ROOT / "tests" / "cuda_emulation" / source), "-o", str(exe)],
        check=True, capture_output=True, text=True)
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert " 0 failures" in run.stdout, run.stdout
