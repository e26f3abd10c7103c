// Test helpers: evaluation data lives outside the repo (../shared/data or
// $ANJU_DATA_DIR); tests that need it skip with a visible message when it is absent.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"

namespace anju::testing {

// DataDir()/sub, or empty when the data set is not present.
std::filesystem::path DataPath(const std::string& sub = "");
// A fresh empty directory under the system temp dir; the caller removes it.
std::filesystem::path TempDir(const std::string& name);

// Runs f, which must throw anju::Error; returns its code (and prints the message, so
// test logs show what a user would read).
inline ErrorCode CodeOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    std::printf("    refused [%s]: %s\n", ErrorCodeName(e.code()), e.what());
    return e.code();
  }
  ADD_FAILURE() << "expected an anju::Error";
  return ErrorCode::kInternal;
}

// The reason code of the anju::Error F throws ("" when it throws none or has none).
inline std::string ReasonOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.reason();
  }
  return "";
}

// "prefix" + i: identity codes and template ids for tests.
inline std::string Name(const char* prefix, long long i) {
  return prefix + std::to_string(i);
}

// A random L2-normalised feature (Gaussian components, seeded): stands in for an enrolled
// face where only the index, the storage or the protocol is under test.
std::vector<float> RandomUnitFeature(uint32_t seed, size_t dim = 512);

// Writes zeros into FILE until the file system refuses (a full disk); returns the bytes
// written.
size_t FillDisk(const std::filesystem::path& file);

}  // namespace anju::testing

#define ANJU_REQUIRE_DATA(var, sub)                                 \
  const std::filesystem::path var = ::anju::testing::DataPath(sub); \
  if (var.empty())                                                  \
  GTEST_SKIP() << "evaluation data '" << (sub)                      \
               << "' not found (set ANJU_DATA_DIR or put shared/data beside the checkout)"
