"""Build sparsekernels: setup.py drives CMake (CMakeLists.txt), which finds Torch.

Environment:
  SPARSEKERNELS_CUDA=auto|on|off   auto: build CUDA when torch has CUDA and nvcc exists
  SPARSEKERNELS_CUDA_ARCHS="80;90a" CUDA archs (CMake list syntax)
  MAX_JOBS=N                        parallel compile jobs
  SPARSEKERNELS_BUILD_TYPE=Release  CMake build type
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name: str):
        super().__init__(name, sources=[])


def _torch_has_cuda() -> bool:
    import torch

    return torch.version.cuda is not None


def _cuda_mode() -> bool:
    mode = os.environ.get("SPARSEKERNELS_CUDA", "auto").lower()
    if mode not in ("auto", "on", "off"):
        raise RuntimeError(f"SPARSEKERNELS_CUDA must be auto, on or off, got {mode!r}")
    nvcc = shutil.which("nvcc") or (
        Path(os.environ.get("CUDA_HOME", "/usr/local/cuda")) / "bin" / "nvcc"
    )
    has_nvcc = Path(nvcc).exists() if nvcc else False
    if mode == "off":
        return False
    if mode == "on":
        if not _torch_has_cuda():
            raise RuntimeError(
                "SPARSEKERNELS_CUDA=on but the installed torch has no CUDA "
                "(torch.version.cuda is None); install a CUDA build of torch or use auto/off"
            )
        if not has_nvcc:
            raise RuntimeError("SPARSEKERNELS_CUDA=on but nvcc was not found (PATH or CUDA_HOME)")
        return True
    return _torch_has_cuda() and has_nvcc


class CMakeBuild(build_ext):
    def build_extension(self, ext: CMakeExtension) -> None:
        import torch

        out = Path(self.get_ext_fullpath(ext.name)).resolve()
        out.parent.mkdir(parents=True, exist_ok=True)
        build_type = os.environ.get("SPARSEKERNELS_BUILD_TYPE", "Release")
        build_dir = ROOT / "build" / f"cmake-py{sys.version_info.major}{sys.version_info.minor}"
        build_dir.mkdir(parents=True, exist_ok=True)
        use_cuda = _cuda_mode()
        args = [
            f"-DCMAKE_BUILD_TYPE={build_type}",
            f"-DPython3_EXECUTABLE={sys.executable}",
            f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}",
            f"-DSK_OUTPUT_FILE={out}",
            f"-DSK_WITH_CUDA={'ON' if use_cuda else 'OFF'}",
            f"-DSK_CUDA_ARCHS={os.environ.get('SPARSEKERNELS_CUDA_ARCHS', '80;90a')}",
        ]
        if shutil.which("ninja"):
            args.append("-GNinja")
        subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build_dir), *args], check=True)
        jobs = os.environ.get("MAX_JOBS", str(os.cpu_count() or 1))
        subprocess.run(
            ["cmake", "--build", str(build_dir), "--parallel", jobs], check=True
        )


setup(
    name="sparsekernels",
    version="0.1.0",
    description="Sparse kernels (SpMM, SDDMM, SpGEMM, sparse attention) as torch custom ops",
    python_requires=">=3.10",
    package_dir={"": "python"},
    packages=find_packages("python"),
    ext_modules=[CMakeExtension("sparsekernels._C")],
    cmdclass={"build_ext": CMakeBuild},
    install_requires=["torch>=2.4", "numpy"],
    extras_require={
        "test": ["pytest", "hypothesis", "scipy"],
        "bench": ["scipy", "rich", "matplotlib"],
    },
    zip_safe=False,
)
