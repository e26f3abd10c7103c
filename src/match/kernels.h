// Dot-product kernels behind FeatureIndex: fp32 and int8 (per-vector scale), several
// probes against a block of gallery rows so that each row is read from memory once per
// probe group. AVX2/FMA versions are chosen at run time when the CPU has them; the
// portable versions are used otherwise (and by tests, to check the SIMD ones).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace anju::match {

// Probes per kernel call (the kernels take 1..kMaxProbes probes).
inline constexpr int kMaxProbes = 4;

// out[p * nrows + r] = dot(probes[p], rows[r]) for p < nprobes, r < nrows.
// probes: nprobes × dim, rows: nrows × dim, both row-major.
using DotsF32Fn = void (*)(const float* probes, int nprobes, const float* rows, size_t nrows,
                           size_t dim, float* out);
// Same on int8 codes; probes are given widened to int16 (nprobes × dim) so that the
// AVX2 kernel multiplies with vpmaddwd without saturation. Results are exact int32.
using DotsI8Fn = void (*)(const int16_t* probes, int nprobes, const int8_t* rows, size_t nrows,
                          size_t dim, int32_t* out);

struct Kernels {
  DotsF32Fn dots_f32;
  DotsI8Fn dots_i8;
  const char* name;  // "avx2" or "portable"
};

// The best kernels for this CPU (decided once). ANJU_NO_SIMD=1 forces the portable ones.
const Kernels& BestKernels();
const Kernels& PortableKernels();

// Symmetric int8 quantisation with one scale per vector: v ≈ scale · code, |code| ≤ 127.
// Returns the scale (0 for an all-zero vector).
float QuantizeInt8(std::span<const float> v, int8_t* code);

}  // namespace anju::match
