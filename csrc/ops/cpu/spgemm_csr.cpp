// CPU glue for sparse::csr_spgemm: checks -> validation of A and B -> row flops
// -> symbolic pass -> prefix sum -> numeric pass (kernels/cpu/spgemm_csr.cpp).
//
// C = A [m, k] @ B [k, n]. C's columns are sorted and distinct within each row;
// C is the structural product: every (i, j) reached by some product
// A[i, c] * B[c, j] is stored, also when the products cancel to 0 (no value
// test, so the pattern depends only on A's and B's patterns). A and B may have
// unsorted rows and duplicate columns (summed). C's indices are int64 when
// either input's are, else int32 (ValueError when nnz(C) needs more).
//
// fp32/fp16/bf16: flops per row -> rows split into parts by flops (a few per
// thread, taken dynamically) -> C allocated for its bound, sum over rows of min(n, flops(i))
// entries, part p's region starting at the bound of the rows before it -> one
// pass per part into its region (kernels/cpu/spgemm_csr.cpp: csr_spgemm_rows)
// -> prefix sum of the row counts -> parts 1.. moved down to their place ->
// C's tensors shrunk to nnz (resize_ keeps the storage). A and B are read
// once, no second Gustavson pass, no part buffer: fresh pages cost about as
// much as the arithmetic here, and the bound's unused tail is never touched.
// When the bound is past int32 (int32 output) or past kMaxBoundBytes, a
// symbolic pass counts C exactly first and the parts write in place
// (SPARSEKERNELS_SPGEMM_EXACT=1 forces this; for tests).
//
// float64 (CPU): the same flops pass, a symbolic pass, the prefix sum, then a
// simple numeric pass in double (kernels/cpu/float64.cpp: a row's products
// sorted by column).
//
// Accumulator per parallel part: dense (fp32 array of n entries + occupancy
// flags, a byte each, and bitmap) when n <= 2^20 and n is at most 8x the part's products, else a
// per-row hash table sized by the row's products.
// SPARSEKERNELS_SPGEMM_ACCUMULATOR=dense|hash forces one (read per call; for
// tests and benchmarks).
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include <ATen/Parallel.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif
#include <torch/library.h>

#include "core/checks.h"
#include "core/cpu_isa.h"
#include "core/dispatch.h"
#include "core/output.h"
#include "core/validate.h"
#include "kernels/cpu/float64.h"
#include "kernels/cpu/sddmm_spgemm.h"
#include "ops/cpu/row_split.h"

namespace sk {
namespace {

constexpr const char* kOp = "sparse::csr_spgemm";
constexpr int64_t kDenseAccumulatorMaxCols = int64_t(1) << 20;
// C is allocated for its bound (sum over rows of min(n, flops(i)) entries) up
// to this many bytes, else for its exact size after a symbolic pass.
constexpr int64_t kMaxBoundBytes = int64_t(1) << 31;
// Row parts: at least kMinPartFlops products each (~1 ms: below that a
// second thread rarely pays for its wake-up on a loaded machine), up to
// kPartsPerThread per thread (one part on one thread: there is nothing to
// balance, and every part after the first is moved down to its place after
// the pass); the row flops pass runs in parallel from kParallelFlopsMinNnz
// entries of A.
constexpr int64_t kMinPartFlops = int64_t(1) << 18;
constexpr int64_t kPartsPerThread = 4;
constexpr int64_t kParallelFlopsMinNnz = int64_t(1) << 20;

enum class Accumulator { automatic, dense, hash };

Accumulator accumulator_choice() {
  const char* env = std::getenv("SPARSEKERNELS_SPGEMM_ACCUMULATOR");
  if (env == nullptr || *env == '\0' || std::strcmp(env, "auto") == 0) return Accumulator::automatic;
  if (std::strcmp(env, "dense") == 0) return Accumulator::dense;
  if (std::strcmp(env, "hash") == 0) return Accumulator::hash;
  TORCH_CHECK_VALUE(false, kOp, ": SPARSEKERNELS_SPGEMM_ACCUMULATOR must be auto, dense or hash, got '", env, "'");
}

bool use_dense(Accumulator choice, int64_t n, int64_t part_flops) {
  return choice == Accumulator::dense ||
         (choice == Accumulator::automatic && n <= kDenseAccumulatorMaxCols && n <= 8 * part_flops);
}

// A power of two >= 2 * min(n, flops(i)) for every row i of [begin, end).
int64_t hash_capacity(int64_t n, const int64_t* flops, int64_t begin, int64_t end) {
  int64_t bound = 0;
  for (int64_t i = begin; i < end; ++i) bound = std::max(bound, std::min(n, flops[i + 1] - flops[i]));
  int64_t size = 2;
  while (size < 2 * bound) size *= 2;
  return size;
}

// Scratch of the symbolic pass (float64 path and the int32 overflow check) for
// one parallel part (rows [begin, end)); flops is the prefix sum of the row
// products (flops[i + 1] - flops[i] = products of row i).
struct SymbolicScratch {
  std::unique_ptr<int64_t[]> marker, keys;
  cpu::SpgemmWorkspace ws{nullptr, nullptr, 0};

  SymbolicScratch(Accumulator choice, int64_t n, const int64_t* flops, int64_t begin, int64_t end) {
    if (use_dense(choice, n, flops[end] - flops[begin])) {
      marker.reset(new int64_t[n]);
      std::fill_n(marker.get(), n, int64_t(-1));
      ws.marker = marker.get();
      return;
    }
    ws.hash_capacity = hash_capacity(n, flops, begin, end);
    keys.reset(new int64_t[ws.hash_capacity]);
    ws.keys = keys.get();
  }
};

// The accumulators of the one-pass kernel (csr_spgemm_rows), one per thread and
// kept between calls, so that a call allocates nothing but its output: the
// dense one's flags, bitmap and acc are zero when allocated and the kernel
// leaves them zero (every row it starts it finishes and clears); its list and
// the hash table's arrays may hold anything. They grow to the widest n / the
// largest table a thread has needed (at n = 2^20, the dense accumulator's
// limit, 13 MiB).
struct ThreadAccumulators {
  std::unique_ptr<uint8_t[]> seen;
  std::unique_ptr<uint64_t[]> bits;
  std::unique_ptr<float[]> acc, hash_vals;
  std::unique_ptr<int64_t[]> list, keys;
  int64_t dense_n = 0, hash_slots = 0;

  void reserve_dense(int64_t n) {
    if (n <= dense_n) return;
    seen.reset(new uint8_t[(n + 63) / 64 * 64]());  // padded: the kernel reads 64 flags at a time
    bits.reset(new uint64_t[(n + 63) / 64]());
    acc.reset(new float[n]());
    list.reset(new int64_t[n + 1]);
    dense_n = n;
  }
  void reserve_hash(int64_t slots) {
    if (slots <= hash_slots) return;
    keys.reset(new int64_t[slots]);
    hash_vals.reset(new float[slots]);
    hash_slots = slots;
  }
};

ThreadAccumulators& thread_accumulators() {
  static thread_local ThreadAccumulators t;
  return t;
}

// The accumulator of one parallel part (rows [begin, end)), on the calling
// thread's arrays: a part must be finished before its thread starts another.
struct RowScratch {
  cpu::SpgemmRowWorkspace ws{nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 0};

  RowScratch(Accumulator choice, int64_t n, const int64_t* flops, int64_t begin, int64_t end) {
    ThreadAccumulators& t = thread_accumulators();
    if (use_dense(choice, n, flops[end] - flops[begin])) {
      t.reserve_dense(n);
      ws.seen = t.seen.get();
      ws.bits = t.bits.get();
      ws.acc = t.acc.get();
      ws.list = t.list.get();
      return;
    }
    ws.hash_capacity = hash_capacity(n, flops, begin, end);
    t.reserve_hash(ws.hash_capacity);
    ws.keys = t.keys.get();
    ws.vals = t.hash_vals.get();
  }
};

// Asks for 2 MiB pages over the 2 MiB-aligned interior of a fresh output
// buffer (Linux, transparent huge pages in "madvise" mode): C is written once,
// and faulting its pages in 4 KiB at a time cost as much as computing it
// (measured: ~1 ms per MiB on the 2-core EPYC). Only a hint: a no-op elsewhere
// or when THP is off.
void advise_huge_pages(void* data, int64_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t(2) << 20;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + uintptr_t(bytes)) & ~(kHuge - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)data;
  (void)bytes;
#endif
}

// SPARSEKERNELS_SPGEMM_EXACT=1 forces the exact sizing (symbolic pass first)
// whatever the bound: for tests of that path.
bool exact_sizing_forced() {
  const char* env = std::getenv("SPARSEKERNELS_SPGEMM_EXACT");
  return env != nullptr && std::strcmp(env, "1") == 0;
}

// dispatch_value_type plus float64 (CPU), whose numeric pass is the simple
// double kernel (kernels/cpu/float64.h); flops and the symbolic pass read only
// the patterns and serve every value type.
template <typename F>
decltype(auto) dispatch_spgemm_value_type(const at::Tensor& values, F&& f) {
  if (is_cpu_float64(values)) return f(double{});
  return dispatch_value_type(values.scalar_type(), kOp, std::forward<F>(f));
}

// Scratch of the float64 numeric pass for rows [begin, end): room for the
// products of the part's longest row.
struct ScratchF64 {
  std::unique_ptr<int64_t[]> cols;
  std::unique_ptr<double[]> vals;
  cpu::SpgemmF64Workspace ws{nullptr, nullptr, 0};

  ScratchF64(const int64_t* flops, int64_t begin, int64_t end) {
    int64_t most = 1;
    for (int64_t i = begin; i < end; ++i) most = std::max(most, flops[i + 1] - flops[i]);
    cols.reset(new int64_t[most]);
    vals.reset(new double[most]);
    ws = {cols.get(), vals.get(), most};
  }
};

void validate_operand(const char* op, const at::Tensor& row_ptr, const at::Tensor& col_idx,
                      const at::Tensor& values, int64_t cols) {
  TORCH_CHECK_VALUE(row_ptr.dim() == 1 && row_ptr.numel() >= 1, op,
                    ": 'row_ptr' must be a 1-D tensor with rows + 1 >= 1 entries, got shape ", row_ptr.sizes());
  validate_csr(op, row_ptr, col_idx, values, row_ptr.numel() - 1, cols);
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> csr_spgemm_cpu(const at::Tensor& a_row_ptr,
                                                              const at::Tensor& a_col_idx,
                                                              const at::Tensor& a_values,
                                                              const at::Tensor& b_row_ptr,
                                                              const at::Tensor& b_col_idx,
                                                              const at::Tensor& b_values, int64_t n) {
  SK_CHECK_SAME_DTYPE(kOp, a_values, b_values);
  SK_CHECK_SAME_DEVICE(kOp, a_values, b_values);
  TORCH_CHECK_VALUE(n >= 0, kOp, ": 'n' (columns of B) must be non-negative, got ", n);
  TORCH_CHECK_VALUE(b_row_ptr.dim() == 1 && b_row_ptr.numel() >= 1, kOp,
                    ": 'b_row_ptr' must be a 1-D tensor with k + 1 >= 1 entries, got shape ", b_row_ptr.sizes());
  const int64_t k = b_row_ptr.numel() - 1;
  // validate_csr names its arguments row_ptr / col_idx / values: say which operand.
  validate_operand("sparse::csr_spgemm, operand A (a_row_ptr, a_col_idx, a_values)", a_row_ptr, a_col_idx,
                   a_values, k);
  validate_operand("sparse::csr_spgemm, operand B (b_row_ptr, b_col_idx, b_values)", b_row_ptr, b_col_idx,
                   b_values, n);
  const int64_t m = a_row_ptr.numel() - 1;
  const bool wide = a_row_ptr.scalar_type() == at::kLong || b_row_ptr.scalar_type() == at::kLong;
  const at::ScalarType c_index = wide ? at::kLong : at::kInt;
  const Accumulator choice = accumulator_choice();

  return dispatch_spgemm_value_type(a_values, [&](auto vtag) {
    using T = decltype(vtag);
    return dispatch_index_type(a_row_ptr.scalar_type(), kOp, [&](auto atag) {
      using IA = decltype(atag);
      return dispatch_index_type(b_row_ptr.scalar_type(), kOp, [&](auto btag) {
        using IB = decltype(btag);
        using IC = std::conditional_t<std::is_same_v<IA, int64_t> || std::is_same_v<IB, int64_t>, int64_t, int32_t>;
        const cpu::CsrSpgemmPatternArgs<IA, IB> pattern{a_row_ptr.data_ptr<IA>(), a_col_idx.data_ptr<IA>(),
                                                        b_row_ptr.data_ptr<IB>(), b_col_idx.data_ptr<IB>(),
                                                        m, k, n};
        // flops[i] = products of rows [0, i); c_ptr[i] = entries of C in rows [0, i).
        // flops[i] = products of rows [0, i).
        std::vector<int64_t> flops(m + 1, 0);
        int64_t* fl = flops.data();
        // Serial unless A is large: a parallel region costs a wake-up of every
        // thread, which on a loaded machine can be a scheduler time slice.
        if (a_col_idx.numel() >= kParallelFlopsMinNnz) {
          at::parallel_for(0, m, 2048, [&](int64_t begin, int64_t end) {
            SK_CPU_CALL(csr_spgemm_row_flops, pattern, fl + 1, begin, end);
          });
        } else {
          SK_CPU_CALL(csr_spgemm_row_flops, pattern, fl + 1, 0, m);
        }
        for (int64_t i = 0; i < m; ++i) fl[i + 1] += fl[i];
        // Cost of rows [0, i): their products plus a little per row. Several
        // parts per thread, taken dynamically (below): a thread that shares its
        // core with another process does less of the work.
        const std::vector<int64_t> bounds =
            m > 0 ? split_rows_by_cost(m, kMinPartFlops, [&](int64_t i) { return fl[i] + i; },
                                       at::get_num_threads() > 1 ? kPartsPerThread : 1)
                  : std::vector<int64_t>{0, 0};
        // Distinct columns of each row of C: rows [0, i) hold c_ptr[i] entries.
        auto count_rows = [&](int64_t* c_ptr) {
          c_ptr[0] = 0;
          parallel_for_row_parts(bounds, [&](int64_t begin, int64_t end) {
            const SymbolicScratch s(choice, n, fl, begin, end);
            SK_CPU_CALL(csr_spgemm_symbolic, pattern, s.ws, c_ptr + 1, begin, end);
          });
          for (int64_t i = 0; i < m; ++i) c_ptr[i + 1] += c_ptr[i];
        };
        auto check_index_range = [&](int64_t nnz) {
          TORCH_CHECK_VALUE(wide || nnz <= std::numeric_limits<int32_t>::max(), kOp, ": the product has ", nnz,
                            " stored entries, more than int32 indices can address; pass A's or B's indices as "
                            "int64 (e.g. a_row_ptr.long(), a_col_idx.long()) to get int64 output indices");
        };
        if (m == 0 || fl[m] == 0) {
          at::Tensor c_row_ptr = empty_output({m + 1}, a_row_ptr.options().dtype(c_index));
          c_row_ptr.zero_();
          return std::make_tuple(c_row_ptr, at::empty({0}, a_row_ptr.options().dtype(c_index)),
                                 at::empty({0}, a_values.options()));
        }

        at::Tensor c_row_ptr, c_col_idx, c_values;
        if constexpr (std::is_same_v<T, double>) {
          std::vector<int64_t> c_ptr(m + 1);
          count_rows(c_ptr.data());
          const int64_t nnz = c_ptr[m];
          check_index_range(nnz);
          c_row_ptr = empty_output({m + 1}, a_row_ptr.options().dtype(c_index));
          c_col_idx = empty_output({nnz}, a_row_ptr.options().dtype(c_index));
          c_values = empty_output({nnz}, a_values.options());
          IC* crp = c_row_ptr.data_ptr<IC>();
          for (int64_t i = 0; i <= m; ++i) crp[i] = IC(c_ptr[i]);
          const cpu::CsrSpgemmArgs<T, IA, IB, IC> args{pattern,
                                                       data_as<const T>(a_values),
                                                       data_as<const T>(b_values),
                                                       crp,
                                                       c_col_idx.data_ptr<IC>(),
                                                       data_as<T>(c_values)};
          parallel_for_row_parts(bounds, [&](int64_t begin, int64_t end) {
            const ScratchF64 s(fl, begin, end);
            SK_CPU_CALL(csr_spgemm_numeric_f64, args, s.ws, begin, end);
          });
        } else {
          // Where part p writes: exact offsets (c_ptr of a symbolic pass) when C's
          // bound is past int32 (the index check needs the exact count) or past
          // kMaxBoundBytes; else offsets by the bound, and the parts move down after.
          const int64_t parts = int64_t(bounds.size()) - 1;
          std::vector<int64_t> start(parts + 1, 0);
          for (int64_t p = 0; p < parts; ++p) {
            int64_t most = 0;
            for (int64_t i = bounds[p]; i < bounds[p + 1]; ++i) most += std::min(n, fl[i + 1] - fl[i]);
            start[p + 1] = start[p] + most;
          }
          const int64_t entry_bytes = int64_t(sizeof(IC) + sizeof(T));
          const bool exact = exact_sizing_forced() ||
              (!wide && start[parts] > std::numeric_limits<int32_t>::max()) || start[parts] > kMaxBoundBytes / entry_bytes;
          std::vector<int64_t> c_ptr;
          if (exact) {
            c_ptr.resize(m + 1);
            count_rows(c_ptr.data());
            check_index_range(c_ptr[m]);
            for (int64_t p = 0; p <= parts; ++p) start[p] = c_ptr[bounds[p]];
          }
          c_col_idx = empty_output({start[parts]}, a_row_ptr.options().dtype(c_index));
          c_values = empty_output({start[parts]}, a_values.options());
          IC* cci = c_col_idx.data_ptr<IC>();
          T* cv = data_as<T>(c_values);
          advise_huge_pages(cci, start[parts] * int64_t(sizeof(IC)));
          advise_huge_pages(cv, start[parts] * int64_t(sizeof(T)));
          std::vector<int64_t> row_nnz(m), part_used(parts);
          std::atomic<int64_t> next_part{0};
          const int64_t workers = std::min<int64_t>(parts, at::get_num_threads());
          at::parallel_for(0, workers, 1, [&](int64_t, int64_t) {
            for (int64_t p = next_part++; p < parts; p = next_part++) {
              const int64_t begin = bounds[p], end = bounds[p + 1];
              const RowScratch s(choice, n, fl, begin, end);
              const cpu::CsrSpgemmRowsArgs<T, IA, IB, IC> args{pattern,
                                                               data_as<const T>(a_values),
                                                               data_as<const T>(b_values),
                                                               fl,
                                                               cci + start[p],
                                                               cv + start[p],
                                                               start[p + 1] - start[p],
                                                               row_nnz.data(),
                                                               exact ? c_ptr.data() : nullptr};
              int64_t next = begin, used = 0;
              SK_CPU_CALL(csr_spgemm_rows, args, s.ws, begin, end, &next, &used);
              TORCH_CHECK(next == end, kOp, ": internal error: a part's rows did not fit their region");
              part_used[p] = used;
            }
          });
          c_row_ptr = empty_output({m + 1}, a_row_ptr.options().dtype(c_index));
          IC* crp = c_row_ptr.data_ptr<IC>();
          int64_t nnz = 0;
          crp[0] = 0;
          for (int64_t i = 0; i < m; ++i) {
            nnz += row_nnz[i];
            crp[i + 1] = IC(nnz);
          }
          check_index_range(nnz);
          if (!exact) {
            // Part p's rows belong at crp[bounds[p]] <= start[p]: move them down, in
            // order (a destination may overlap the previous part's source).
            for (int64_t p = 1; p < parts; ++p) {
              const int64_t to = int64_t(crp[bounds[p]]), used = part_used[p];
              if (used == 0 || to == start[p]) continue;
              std::memmove(cci + to, cci + start[p], size_t(used) * sizeof(IC));
              std::memmove(cv + to, cv + start[p], size_t(used) * sizeof(T));
            }
            // Shrinking keeps the storage: its unused tail was never written,
            // so its pages were never touched.
            c_col_idx.resize_({nnz});
            c_values.resize_({nnz});
          }
        }
        return std::make_tuple(c_row_ptr, c_col_idx, c_values);
      });
    });
  });
}

TORCH_LIBRARY_IMPL(sparse, CPU, m) { m.impl("csr_spgemm", &csr_spgemm_cpu); }

}  // namespace sk
