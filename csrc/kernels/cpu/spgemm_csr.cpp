// CSR SpGEMM on the CPU (Gustavson, row by row): row i of C = sum over the
// entries (i, c) of A of A[i, c] * row c of B.
//
// fp32/fp16/bf16, csr_spgemm_rows: one pass per row accumulates the products in
// fp32 and writes the row (sorted columns, values) to the part buffer; A and B
// are read once. Two accumulators (chosen by the glue through the workspace,
// sddmm_spgemm.h):
//   dense: acc[n] (zero between rows) plus an occupancy flag of one byte per
//     column. The product loop is branch-free (whether a column is new is
//     unpredictable: a branch there mispredicts about half the time): it adds
//     the product to acc[j], sets the flag and appends j to the row's column
//     list in the workspace (advancing only when the flag was clear). A byte,
//     not a bit, per column there: the columns of one row of B ascend, so with
//     a bit each several consecutive products shared a 64-bit word and waited
//     on each other's read-modify-write through store forwarding.
//     The row is then read off in column order through a bitmap built from
//     its column list (one read-modify-write per column of C, not per
//     product), walking its words between the row's smallest and largest
//     column (ctz) and clearing them, the flags and acc, so the columns come
//     out sorted without a sort; a row with few entries spread over a wide
//     range sorts its short column list instead. A row with many products
//     against n (n <= 8 flops(i)) keeps no column list: its products only
//     store their flag, and the flags are read off 64 at a time with vector
//     compares (dense_row_marked<true>).
//   hash: open addressing with linear probing in a table of 2^s >= 2 * min(n,
//     flops(i)) slots, cleared per row, so its cost follows the row's work
//     rather than n (very wide C); its columns are sorted.
// float64 uses csr_spgemm_symbolic (below: marker or hash, counts only) and
// float64.cpp's numeric pass.
//
// No std algorithm is used here: the sort below lives in this ISA's namespace
// (isa.h, the COMDAT rule).
#include "kernels/cpu/sddmm_spgemm.h"
#include "kernels/cpu/simd.h"

SK_CPU_NAMESPACE_BEGIN

// ---------------------------------------------------------------------------
// Sorting the columns of one row (introsort: quicksort with a median-of-three
// pivot, heapsort past a depth limit, insertion sort for short ranges).
// ---------------------------------------------------------------------------
template <typename I>
static inline void swap_values(I& a, I& b) {
  const I t = a;
  a = b;
  b = t;
}

template <typename I>
static void insertion_sort(I* a, int64_t n) {
  for (int64_t i = 1; i < n; ++i) {
    const I v = a[i];
    int64_t j = i;
    for (; j > 0 && a[j - 1] > v; --j) a[j] = a[j - 1];
    a[j] = v;
  }
}

template <typename I>
static void sift_down(I* a, int64_t root, int64_t n) {
  for (int64_t child = 2 * root + 1; child < n; child = 2 * root + 1) {
    if (child + 1 < n && a[child] < a[child + 1]) ++child;
    if (!(a[root] < a[child])) return;
    swap_values(a[root], a[child]);
    root = child;
  }
}

template <typename I>
static void heap_sort(I* a, int64_t n) {
  for (int64_t s = n / 2 - 1; s >= 0; --s) sift_down(a, s, n);
  for (int64_t e = n - 1; e > 0; --e) {
    swap_values(a[0], a[e]);
    sift_down(a, 0, e);
  }
}

static inline int floor_log2(uint64_t v) {
  int r = 0;
  while (v >>= 1) ++r;
  return r;
}

template <typename I>
static void intro_sort(I* a, int64_t n, int depth) {
  while (n > 16) {
    if (depth-- == 0) {
      heap_sort(a, n);
      return;
    }
    // Median of three at the floor middle, then Hoare's partition: both parts
    // are non-empty, [0, j] <= pivot <= [j + 1, n).
    const int64_t mid = (n - 1) / 2;
    if (a[mid] < a[0]) swap_values(a[mid], a[0]);
    if (a[n - 1] < a[0]) swap_values(a[n - 1], a[0]);
    if (a[n - 1] < a[mid]) swap_values(a[n - 1], a[mid]);
    const I pivot = a[mid];
    int64_t i = -1, j = n;
    for (;;) {
      do ++i; while (a[i] < pivot);
      do --j; while (a[j] > pivot);
      if (i >= j) break;
      swap_values(a[i], a[j]);
    }
    // Recurse into the smaller part, loop on the larger (O(log n) stack).
    const int64_t left = j + 1, right = n - left;
    if (left < right) {
      intro_sort(a, left, depth);
      a += left;
      n = right;
    } else {
      intro_sort(a + left, right, depth);
      n = left;
    }
  }
  insertion_sort(a, n);
}

template <typename I>
static void sort_columns(I* a, int64_t n) {
  if (n > 1) intro_sort(a, n, 2 * floor_log2(uint64_t(n)));
}

// ---------------------------------------------------------------------------
// Hash table geometry: 2^bits slots, bits >= 1.
// ---------------------------------------------------------------------------
struct HashShape {
  int64_t size;  // 2^bits
  int shift;     // 64 - bits
};

static inline HashShape hash_shape(int64_t min_slots) {
  int bits = 1;
  while ((int64_t(1) << bits) < min_slots) ++bits;
  return HashShape{int64_t(1) << bits, 64 - bits};
}

// Fibonacci hashing: the top bits of col * 2^64 / phi.
static inline int64_t hash_slot(int64_t col, int shift) {
  return int64_t((uint64_t(col) * 0x9E3779B97F4A7C15ull) >> shift);
}

template <typename IA, typename IB>
static inline int64_t row_flops(const CsrSpgemmPatternArgs<IA, IB>& a, int64_t i) {
  int64_t f = 0;
  for (int64_t p = int64_t(a.a_row_ptr[i]); p < int64_t(a.a_row_ptr[i + 1]); ++p) {
    const int64_t c = int64_t(a.a_col_idx[p]);
    f += int64_t(a.b_row_ptr[c + 1]) - int64_t(a.b_row_ptr[c]);
  }
  return f;
}

// Slots of the hash table for row i: 2 * min(n, flops(i)), at least 2.
template <typename IA, typename IB>
static inline HashShape row_hash_shape(const CsrSpgemmPatternArgs<IA, IB>& a, int64_t i) {
  const int64_t f = row_flops(a, i);
  return hash_shape(2 * (f < a.n ? f : a.n));
}

// ---------------------------------------------------------------------------
// Entry points.
// ---------------------------------------------------------------------------
template <typename IA, typename IB>
void csr_spgemm_row_flops(const CsrSpgemmPatternArgs<IA, IB>& a, int64_t* flops, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) flops[i] = row_flops(a, i);
}

template <typename IA, typename IB>
void csr_spgemm_symbolic(const CsrSpgemmPatternArgs<IA, IB>& a, const SpgemmWorkspace& ws, int64_t* row_nnz,
                         int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    const int64_t pa0 = int64_t(a.a_row_ptr[i]), pa1 = int64_t(a.a_row_ptr[i + 1]);
    int64_t count = 0;
    if (ws.marker != nullptr) {
      int64_t* marker = ws.marker;
      for (int64_t pa = pa0; pa < pa1; ++pa) {
        const int64_t c = int64_t(a.a_col_idx[pa]);
        const int64_t pb1 = int64_t(a.b_row_ptr[c + 1]);
        for (int64_t pb = int64_t(a.b_row_ptr[c]); pb < pb1; ++pb) {
          const int64_t j = int64_t(a.b_col_idx[pb]);
          if (marker[j] != i) {
            marker[j] = i;
            ++count;
          }
        }
      }
    } else if (pa1 > pa0) {
      const HashShape hs = row_hash_shape(a, i);
      const int64_t mask = hs.size - 1;
      int64_t* keys = ws.keys;
      for (int64_t s = 0; s < hs.size; ++s) keys[s] = -1;
      for (int64_t pa = pa0; pa < pa1; ++pa) {
        const int64_t c = int64_t(a.a_col_idx[pa]);
        const int64_t pb1 = int64_t(a.b_row_ptr[c + 1]);
        for (int64_t pb = int64_t(a.b_row_ptr[c]); pb < pb1; ++pb) {
          const int64_t j = int64_t(a.b_col_idx[pb]);
          for (int64_t s = hash_slot(j, hs.shift);; s = (s + 1) & mask) {
            if (keys[s] == j) break;
            if (keys[s] < 0) {
              keys[s] = j;
              ++count;
              break;
            }
          }
        }
      }
    }
    row_nnz[i] = count;
  }
}

// Row i of C with the dense accumulator into cols / vals (room for
// min(n, flops(i)) entries); returns its entry count.
template <typename T, typename IA, typename IB, typename IC>
static inline int64_t dense_row(const CsrSpgemmRowsArgs<T, IA, IB, IC>& args, const SpgemmRowWorkspace& ws,
                                int64_t i, IC* cols, T* vals) {
  const CsrSpgemmPatternArgs<IA, IB>& a = args.pattern;
  // local restrict copies: the stores below cannot change them, so they stay
  // in registers (without, the loop reloaded pointers and spilled)
  uint8_t* __restrict seen = ws.seen;
  uint64_t* __restrict bits = ws.bits;
  float* __restrict acc = ws.acc;
  int64_t* __restrict list = ws.list;
  const IB* __restrict b_cols = a.b_col_idx;
  const T* __restrict b_vals = args.b_values;
  int64_t count = 0;
  const int64_t pa1 = int64_t(a.a_row_ptr[i + 1]);
  for (int64_t pa = int64_t(a.a_row_ptr[i]); pa < pa1; ++pa) {
    const int64_t c = int64_t(a.a_col_idx[pa]);
    const float av = to_float(args.a_values[pa]);
    const int64_t pb1 = int64_t(a.b_row_ptr[c + 1]);
    for (int64_t pb = int64_t(a.b_row_ptr[c]); pb < pb1; ++pb) {
      const int64_t j = int64_t(b_cols[pb]);
      const int64_t was = seen[j];
      seen[j] = 1;
      acc[j] += av * to_float(b_vals[pb]);
      list[count] = j;  // kept only when new: count advances then
      count += 1 - was;
    }
  }
  if (count == 0) return 0;
  // Reading the row off a bitmap costs a load per word of the columns it
  // spans; sorting the column list about count * log2(count) compares: take
  // the cheaper. The span is all of [0, n) unless that many words cost more
  // than the sort, and only then is the row's own [lo, hi] looked up.
  const int64_t sort_cost = 2 * count * (floor_log2(uint64_t(count)) + 1);
  int64_t first_word = 0, last_word = (a.n - 1) >> 6;
  if (sort_cost < last_word + 1) {
    uint64_t lo = uint64_t(list[0]), hi = lo;  // smallest and largest column of the row
    for (int64_t q = 1; q < count; ++q) {
      const uint64_t j = uint64_t(list[q]);
      lo = j < lo ? j : lo;
      hi = j > hi ? j : hi;
    }
    first_word = int64_t(lo >> 6);
    last_word = int64_t(hi >> 6);
  }
  if (sort_cost < last_word - first_word + 1) {
    sort_columns(list, count);
    for (int64_t q = 0; q < count; ++q) {
      const int64_t j = list[q];
      cols[q] = IC(j);
      vals[q] = from_float<T>(acc[j]);
      acc[j] = 0.f;
      seen[j] = 0;
    }
    return count;
  }
  for (int64_t q = 0; q < count; ++q) bits[uint64_t(list[q]) >> 6] |= uint64_t(1) << (uint64_t(list[q]) & 63);
  int64_t q = 0;
  for (int64_t w = first_word; w <= last_word; ++w) {
    uint64_t word = bits[w];
    if (word == 0) continue;
    bits[w] = 0;
    do {
      const int64_t j = (w << 6) + __builtin_ctzll(word);
      word &= word - 1;
      cols[q] = IC(j);
      vals[q] = from_float<T>(acc[j]);
      acc[j] = 0.f;
      seen[j] = 0;
      ++q;
    } while (word != 0);
  }
  return q;
}

// 64 occupancy flags (bytes, 0 or 1) as the bits of a word, flag c at bit c.
static inline uint64_t flag_word(const uint8_t* f) {
#if defined(__AVX512BW__)
  const __m512i v = _mm512_loadu_si512(reinterpret_cast<const void*>(f));
  return uint64_t(_mm512_test_epi8_mask(v, v));
#elif defined(__AVX2__)
  // a flag's bit 0 shifted to its byte's sign bit (16-bit lanes: the low
  // byte's bit 7 does not reach the high byte)
  const __m256i lo = _mm256_slli_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(f)), 7);
  const __m256i hi = _mm256_slli_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(f + 32)), 7);
  return uint64_t(uint32_t(_mm256_movemask_epi8(lo))) | (uint64_t(uint32_t(_mm256_movemask_epi8(hi))) << 32);
#else
  uint64_t w = 0;
  for (int q = 0; q < 8; ++q) {
    uint64_t x;
    std::memcpy(&x, f + 8 * q, 8);
    // bytes b0..b7 in {0, 1}: the product's top byte is b0 + 2 b1 + ... + 128 b7
    w |= ((x * 0x0102040810204080ull) >> 56) << (8 * q);
  }
  return w;
#endif
}

// Row i of C with the dense accumulator, each product marking its column
// without reading anything back and no column list; the row is then read off
// its marks 64 columns at a time, in column order, clearing them and acc.
//   kFlags false (direct): a bit of the bitmap per product, for a B whose rows
//     hold fewer than one entry per 64 columns on average (consecutive products
//     of a B row then seldom share a bitmap word, so their read-modify-writes
//     seldom wait on each other) and a row with at least half as many products
//     as n has words (reading all the words off is then cheap).
//   kFlags true: a flag byte stored per product (stores to one byte do not
//     wait on each other, unlike a bit's read-modify-write), for a row with
//     many products against n (n <= kFlagScanMaxColsPerProduct * flops(i));
//     the flags are read 64 at a time (flag_word), so seen must be padded with
//     zeros to a multiple of 64 bytes.
template <bool kFlags, typename T, typename IA, typename IB, typename IC>
static inline int64_t dense_row_marked(const CsrSpgemmRowsArgs<T, IA, IB, IC>& args, const SpgemmRowWorkspace& ws,
                                       int64_t i, IC* cols, T* vals) {
  const CsrSpgemmPatternArgs<IA, IB>& a = args.pattern;
  uint8_t* __restrict seen = ws.seen;
  uint64_t* __restrict bits = ws.bits;
  float* __restrict acc = ws.acc;
  const IB* __restrict b_cols = a.b_col_idx;
  const T* __restrict b_vals = args.b_values;
  const int64_t pa1 = int64_t(a.a_row_ptr[i + 1]);
  for (int64_t pa = int64_t(a.a_row_ptr[i]); pa < pa1; ++pa) {
    const int64_t c = int64_t(a.a_col_idx[pa]);
    const float av = to_float(args.a_values[pa]);
    const int64_t pb1 = int64_t(a.b_row_ptr[c + 1]);
    for (int64_t pb = int64_t(a.b_row_ptr[c]); pb < pb1; ++pb) {
      const uint64_t j = uint64_t(b_cols[pb]);
      acc[j] += av * to_float(b_vals[pb]);
      if constexpr (kFlags)
        seen[j] = 1;
      else
        bits[j >> 6] |= uint64_t(1) << (j & 63);
    }
  }
  int64_t q = 0;
  const int64_t words = (a.n + 63) >> 6;
  for (int64_t w = 0; w < words; ++w) {
    uint64_t word = kFlags ? flag_word(seen + (w << 6)) : bits[w];
    if (word == 0) continue;
    if constexpr (kFlags)
      std::memset(seen + (w << 6), 0, 64);
    else
      bits[w] = 0;
    do {
      const int64_t j = (w << 6) + __builtin_ctzll(word);
      word &= word - 1;
      cols[q] = IC(j);
      vals[q] = from_float<T>(acc[j]);
      acc[j] = 0.f;
      ++q;
    } while (word != 0);
  }
  return q;
}

// Row i of C with the hash accumulator into cols / vals; returns its entry count.
template <typename T, typename IA, typename IB, typename IC>
static inline int64_t hash_row(const CsrSpgemmRowsArgs<T, IA, IB, IC>& args, const SpgemmRowWorkspace& ws,
                               int64_t i, IC* cols, T* vals) {
  const CsrSpgemmPatternArgs<IA, IB>& a = args.pattern;
  const int64_t f = args.flops[i + 1] - args.flops[i];
  const HashShape hs = hash_shape(2 * (f < a.n ? f : a.n));
  const int64_t mask = hs.size - 1;
  int64_t* keys = ws.keys;
  float* hv = ws.vals;
  for (int64_t s = 0; s < hs.size; ++s) keys[s] = -1;
  const int64_t pa1 = int64_t(a.a_row_ptr[i + 1]);
  for (int64_t pa = int64_t(a.a_row_ptr[i]); pa < pa1; ++pa) {
    const int64_t c = int64_t(a.a_col_idx[pa]);
    const float av = to_float(args.a_values[pa]);
    const int64_t pb1 = int64_t(a.b_row_ptr[c + 1]);
    for (int64_t pb = int64_t(a.b_row_ptr[c]); pb < pb1; ++pb) {
      const int64_t j = int64_t(a.b_col_idx[pb]);
      const float v = av * to_float(args.b_values[pb]);
      for (int64_t s = hash_slot(j, hs.shift);; s = (s + 1) & mask) {
        if (keys[s] == j) {
          hv[s] += v;
          break;
        }
        if (keys[s] < 0) {
          keys[s] = j;
          hv[s] = v;
          break;
        }
      }
    }
  }
  int64_t count = 0;
  for (int64_t s = 0; s < hs.size; ++s)
    if (keys[s] >= 0) cols[count++] = IC(keys[s]);
  sort_columns(cols, count);
  for (int64_t q = 0; q < count; ++q) {
    const int64_t j = int64_t(cols[q]);
    int64_t s = hash_slot(j, hs.shift);
    while (keys[s] != j) s = (s + 1) & mask;
    vals[q] = from_float<T>(hv[s]);
  }
  return count;
}

// The dense accumulator reads a row off its flags (dense_row_marked<true>) when n is at
// most this many times the row's products: the scan costs about 10
// instructions per 64 columns (AVX2), the column list it saves about 4 per
// product and 7 per entry.
constexpr int64_t kFlagScanMaxColsPerProduct = 8;

template <typename T, typename IA, typename IB, typename IC>
void csr_spgemm_rows(const CsrSpgemmRowsArgs<T, IA, IB, IC>& args, const SpgemmRowWorkspace& ws, int64_t begin,
                     int64_t end, int64_t* next_row, int64_t* used) {
  const int64_t n = args.pattern.n;
  // B's rows average fewer than one entry per 64 columns (dense_row_marked<false>)
  const bool sparse_b_rows =
      64.0 * double(args.pattern.b_row_ptr[args.pattern.k]) < double(args.pattern.k) * double(n);
  const int64_t words = (n + 63) >> 6;
  int64_t u = *used;
  int64_t i = begin;
  for (; i < end; ++i) {
    const int64_t f = args.flops[i + 1] - args.flops[i];
    if (f == 0) {
      args.row_nnz[i] = 0;
      continue;
    }
    const int64_t most = args.c_ptr != nullptr ? args.c_ptr[i + 1] - args.c_ptr[i] : (f < n ? f : n);
    if (most > args.capacity - u) break;
    int64_t count;
    if (ws.bits == nullptr)
      count = hash_row(args, ws, i, args.cols + u, args.vals + u);
    else if (sparse_b_rows && words <= 2 * f)
      count = dense_row_marked<false>(args, ws, i, args.cols + u, args.vals + u);
    else if (n <= kFlagScanMaxColsPerProduct * f)
      count = dense_row_marked<true>(args, ws, i, args.cols + u, args.vals + u);
    else
      count = dense_row(args, ws, i, args.cols + u, args.vals + u);
    args.row_nnz[i] = count;
    u += count;
  }
  *next_row = i;
  *used = u;
}

#define SK_INSTANTIATE_PATTERN(IA, IB)                                                                      \
  template void csr_spgemm_row_flops<IA, IB>(const CsrSpgemmPatternArgs<IA, IB>&, int64_t*, int64_t, int64_t); \
  template void csr_spgemm_symbolic<IA, IB>(const CsrSpgemmPatternArgs<IA, IB>&, const SpgemmWorkspace&,      \
                                            int64_t*, int64_t, int64_t);
SK_INSTANTIATE_PATTERN(int32_t, int32_t)
SK_INSTANTIATE_PATTERN(int32_t, int64_t)
SK_INSTANTIATE_PATTERN(int64_t, int32_t)
SK_INSTANTIATE_PATTERN(int64_t, int64_t)
#undef SK_INSTANTIATE_PATTERN

// C's indices are int64 when either input's are, else int32.
#define SK_INSTANTIATE_NUMERIC(T, IA, IB, IC)                                                   \
  template void csr_spgemm_rows<T, IA, IB, IC>(const CsrSpgemmRowsArgs<T, IA, IB, IC>&,                 \
                                               const SpgemmRowWorkspace&, int64_t, int64_t, int64_t*, int64_t*);
#define SK_INSTANTIATE_NUMERIC_ALL(T)                   \
  SK_INSTANTIATE_NUMERIC(T, int32_t, int32_t, int32_t)  \
  SK_INSTANTIATE_NUMERIC(T, int32_t, int64_t, int64_t)  \
  SK_INSTANTIATE_NUMERIC(T, int64_t, int32_t, int64_t)  \
  SK_INSTANTIATE_NUMERIC(T, int64_t, int64_t, int64_t)
SK_INSTANTIATE_NUMERIC_ALL(float)
SK_INSTANTIATE_NUMERIC_ALL(half_t)
SK_INSTANTIATE_NUMERIC_ALL(bf16_t)
#undef SK_INSTANTIATE_NUMERIC_ALL
#undef SK_INSTANTIATE_NUMERIC

SK_CPU_NAMESPACE_END
