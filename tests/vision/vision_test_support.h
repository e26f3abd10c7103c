// Shared fixtures for the vision tests: the models and one engine, loaded once per
// test binary (loading takes ~0.3 s), and small helpers for the evaluation data.
#pragma once

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "testing.h"
#include "vision/engine.h"
#include "vision/model_set.h"

namespace anju::vision::test {

// The installed default models (scripts/setup), verified, loaded once.
std::shared_ptr<const ModelSet> Models();
// One engine with default options, shared by the tests (gtest runs them on one thread).
FaceEngine& Engine();

// anju::testing::TempDir(name), removed again when the guard goes out of scope (model
// copies are 15 MB; tests/common's TempDir itself leaves its directories behind).
class ScopedTempDir {
 public:
  explicit ScopedTempDir(const std::string& name) : path_(anju::testing::TempDir(name)) {}
  ~ScopedTempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// lfw/lfw/<name>/<name>_<NNNN>.jpg under the data root `lfw` (= DataPath("lfw")).
std::filesystem::path LfwFile(const std::filesystem::path& lfw, const std::string& name, int n);
std::vector<uint8_t> ReadBytes(const std::filesystem::path& path);
void WriteBytes(const std::filesystem::path& path, const std::vector<uint8_t>& bytes);

// Feature of the most prominent face; fails the test (and returns an empty feature)
// when no face is found.
Feature EmbedLargest(FaceEngine& engine, const cv::Mat& bgr);

// The first `n` NUAA frames of a subset list (client_train_subset.txt → ClientRaw/...),
// taking every `step`-th line so that several subjects are covered.
std::vector<std::filesystem::path> NuaaFrames(const std::filesystem::path& nuaa, bool live, int n,
                                              int step);

// Success when f() throws anju::Error with `code`; a readable failure otherwise.
template <class F>
::testing::AssertionResult ThrowsAnjuError(F&& f, ErrorCode code, const char* text) {
  try {
    f();
  } catch (const Error& e) {
    if (e.code() == code) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << text << " threw " << ErrorCodeName(e.code()) << " instead of " << ErrorCodeName(code)
           << ": " << e.what();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << text << " threw a non-anju exception: " << e.what();
  }
  return ::testing::AssertionFailure() << text << " did not throw";
}

}  // namespace anju::vision::test

// EXPECT_THROW for anju::Error with a given code; accepts `<< message` like EXPECT_*.
#define EXPECT_ANJU_ERROR(expr, code) \
  EXPECT_TRUE(::anju::vision::test::ThrowsAnjuError([&] { (void)(expr); }, (code), #expr))
