#include "match/kernels.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace anju::match {
namespace {

// ---------------------------------------------------------------- portable
void DotsF32Portable(const float* probes, int nprobes, const float* rows, size_t nrows, size_t dim,
                     float* out) {
  for (size_t r = 0; r < nrows; ++r) {
    const float* row = rows + r * dim;
    for (int p = 0; p < nprobes; ++p) {
      const float* q = probes + p * dim;
      float s = 0.f;
      for (size_t d = 0; d < dim; ++d) s += row[d] * q[d];
      out[p * nrows + r] = s;
    }
  }
}

void DotsI8Portable(const int16_t* probes, int nprobes, const int8_t* rows, size_t nrows,
                    size_t dim, int32_t* out) {
  for (size_t r = 0; r < nrows; ++r) {
    const int8_t* row = rows + r * dim;
    for (int p = 0; p < nprobes; ++p) {
      const int16_t* q = probes + p * dim;
      int32_t s = 0;
      for (size_t d = 0; d < dim; ++d) s += int32_t(row[d]) * int32_t(q[d]);
      out[p * nrows + r] = s;
    }
  }
}

// ---------------------------------------------------------------- AVX2 + FMA
__attribute__((target("avx2,fma"))) inline float HsumPs(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
  return _mm_cvtss_f32(lo);
}

__attribute__((target("avx2,fma"))) inline int32_t HsumEpi32(__m256i v) {
  __m128i lo = _mm256_castsi256_si128(v), hi = _mm256_extracti128_si256(v, 1);
  lo = _mm_add_epi32(lo, hi);
  lo = _mm_add_epi32(lo, _mm_shuffle_epi32(lo, _MM_SHUFFLE(1, 0, 3, 2)));
  lo = _mm_add_epi32(lo, _mm_shuffle_epi32(lo, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(lo);
}

template <int P>
__attribute__((target("avx2,fma"))) void DotsF32Avx2T(const float* probes, const float* rows,
                                                      size_t nrows, size_t dim, float* out) {
  for (size_t r = 0; r < nrows; ++r) {
    const float* row = rows + r * dim;
    __m256 a0[P], a1[P];
    for (int p = 0; p < P; ++p) a0[p] = a1[p] = _mm256_setzero_ps();
    size_t d = 0;
    for (; d + 16 <= dim; d += 16) {
      __m256 x0 = _mm256_loadu_ps(row + d), x1 = _mm256_loadu_ps(row + d + 8);
      for (int p = 0; p < P; ++p) {
        a0[p] = _mm256_fmadd_ps(x0, _mm256_loadu_ps(probes + p * dim + d), a0[p]);
        a1[p] = _mm256_fmadd_ps(x1, _mm256_loadu_ps(probes + p * dim + d + 8), a1[p]);
      }
    }
    for (int p = 0; p < P; ++p) {
      float s = HsumPs(_mm256_add_ps(a0[p], a1[p]));
      for (size_t t = d; t < dim; ++t) s += row[t] * probes[p * dim + t];
      out[p * nrows + r] = s;
    }
  }
}

template <int P>
__attribute__((target("avx2,fma"))) void DotsI8Avx2T(const int16_t* probes, const int8_t* rows,
                                                     size_t nrows, size_t dim, int32_t* out) {
  for (size_t r = 0; r < nrows; ++r) {
    const int8_t* row = rows + r * dim;
    __m256i a0[P], a1[P];
    for (int p = 0; p < P; ++p) a0[p] = a1[p] = _mm256_setzero_si256();
    size_t d = 0;
    for (; d + 32 <= dim; d += 32) {
      __m256i x0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + d)));
      __m256i x1 =
          _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + d + 16)));
      for (int p = 0; p < P; ++p) {
        const int16_t* q = probes + p * dim + d;
        a0[p] = _mm256_add_epi32(
            a0[p], _mm256_madd_epi16(x0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q))));
        a1[p] = _mm256_add_epi32(
            a1[p],
            _mm256_madd_epi16(x1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 16))));
      }
    }
    for (int p = 0; p < P; ++p) {
      int32_t s = HsumEpi32(_mm256_add_epi32(a0[p], a1[p]));
      for (size_t t = d; t < dim; ++t) s += int32_t(row[t]) * int32_t(probes[p * dim + t]);
      out[p * nrows + r] = s;
    }
  }
}

void DotsF32Avx2(const float* probes, int nprobes, const float* rows, size_t nrows, size_t dim,
                 float* out) {
  switch (nprobes) {
    case 1:
      return DotsF32Avx2T<1>(probes, rows, nrows, dim, out);
    case 2:
      return DotsF32Avx2T<2>(probes, rows, nrows, dim, out);
    case 3:
      return DotsF32Avx2T<3>(probes, rows, nrows, dim, out);
    default:
      return DotsF32Avx2T<4>(probes, rows, nrows, dim, out);
  }
}

void DotsI8Avx2(const int16_t* probes, int nprobes, const int8_t* rows, size_t nrows, size_t dim,
                int32_t* out) {
  switch (nprobes) {
    case 1:
      return DotsI8Avx2T<1>(probes, rows, nrows, dim, out);
    case 2:
      return DotsI8Avx2T<2>(probes, rows, nrows, dim, out);
    case 3:
      return DotsI8Avx2T<3>(probes, rows, nrows, dim, out);
    default:
      return DotsI8Avx2T<4>(probes, rows, nrows, dim, out);
  }
}

const Kernels kPortable{DotsF32Portable, DotsI8Portable, "portable"};
const Kernels kAvx2{DotsF32Avx2, DotsI8Avx2, "avx2"};

}  // namespace

const Kernels& PortableKernels() {
  return kPortable;
}

const Kernels& BestKernels() {
  static const Kernels* best = [] {
    const char* off = std::getenv("ANJU_NO_SIMD");
    if (off && *off && std::strcmp(off, "0") != 0) return &kPortable;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &kAvx2;
    return &kPortable;
  }();
  return *best;
}

float QuantizeInt8(std::span<const float> v, int8_t* code) {
  float max_abs = 0.f;
  for (float x : v) max_abs = std::max(max_abs, std::fabs(x));
  if (max_abs == 0.f) {
    std::fill(code, code + v.size(), int8_t{0});
    return 0.f;
  }
  const float scale = max_abs / 127.f, inv = 127.f / max_abs;
  for (size_t i = 0; i < v.size(); ++i)
    code[i] = static_cast<int8_t>(std::clamp(std::lrint(v[i] * inv), -127L, 127L));
  return scale;
}

}  // namespace anju::match
