#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <random>

#include "core/error.h"
#include "store/gallery.h"
#include "testing.h"

namespace anju::store {
namespace {

using ::anju::testing::Name;

namespace fs = std::filesystem;
constexpr size_t kDim = 512;
const std::string kVer = "test-model@1";

std::vector<float> RandomUnit(std::mt19937& rng) {
  std::normal_distribution<float> g;
  std::vector<float> v(kDim);
  double n = 0;
  for (auto& x : v) x = g(rng), n += double(x) * x;
  for (auto& x : v) x = float(x / std::sqrt(n));
  return v;
}

using ::anju::testing::CodeOf;

void RawSql(const fs::path& file, const char* sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  sqlite3_close(db);
}

struct Fixture : ::testing::Test {
  fs::path dir = testing::TempDir("gallery");
  fs::path file = dir / "gallery.db";
  crypto::DataKey key = crypto::DataKey::Generate();
  std::mt19937 rng{3};
  std::map<match::TemplateId, std::pair<std::string, std::vector<float>>> added;
  void Fill(int persons, int per_person) {
    auto g = Gallery::Create(file, key, kVer);
    for (int p = 0; p < persons; ++p)
      for (int t = 0; t < per_person; ++t) {
        auto v = RandomUnit(rng);
        std::string id = Name("ID", 1000 + p);
        added[g->Add(id, v)] = {id, v};
      }
  }
};

TEST_F(Fixture, RoundTrip) {
  Fill(20, 3);
  {
    auto g = Gallery::Open(file, key, kVer);
    EXPECT_EQ(g->RemoveIdentity("ID1003"), 3u);
    std::erase_if(added, [](auto& e) { return e.second.first == "ID1003"; });
    auto first = added.begin()->first;
    EXPECT_TRUE(g->RemoveTemplate(first));
    EXPECT_FALSE(g->RemoveTemplate(first));
    added.erase(first);
  }
  auto g = Gallery::Open(file, key, kVer);
  auto info = g->info();
  EXPECT_EQ(info.templates, added.size());
  EXPECT_EQ(info.identities, 19u);
  EXPECT_EQ(info.key_id, key.id());
  auto all = g->LoadAll();
  ASSERT_EQ(all.size(), added.size());
  for (auto& t : all) {
    ASSERT_TRUE(added.count(t.id));
    EXPECT_EQ(t.identity, added[t.id].first);
    EXPECT_EQ(t.feature,
              DecodeFeature(EncodeFeature(added[t.id].second), kDim));  // exact int8 round trip
    double dot = 0;
    for (size_t d = 0; d < kDim; ++d) dot += double(t.feature[d]) * added[t.id].second[d];
    EXPECT_GT(dot, 0.999);
  }
  match::FeatureIndex index({.model_version = kVer});
  EXPECT_EQ(g->LoadInto(index), added.size());
  auto& [id0, pv] = *added.begin();
  auto r = index.Search(pv.second, kVer, {.k = 1});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].person, pv.first);
  EXPECT_EQ(r[0].best_template, id0);
  // New ids are never reused after a removal.
  EXPECT_GT(g->Add("ID9999", RandomUnit(rng)), added.rbegin()->first);
}

TEST_F(Fixture, RejectsNamesAndBadInput) {
  auto g = Gallery::Create(file, key, kVer);
  EXPECT_EQ(CodeOf([&] { g->Add("张三", RandomUnit(rng)); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf([&] { g->Add("zhang san", RandomUnit(rng)); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf([&] { g->Add("A1", std::vector<float>(10)); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf([&] { Gallery::Create(file, key, kVer); }), ErrorCode::kInvalidArgument);
}

TEST_F(Fixture, WrongKeyRefused) {
  Fill(3, 1);
  EXPECT_EQ(CodeOf([&] { Gallery::Open(file, crypto::DataKey::Generate()); }), ErrorCode::kCrypto);
}

TEST_F(Fixture, OtherModelVersionRefused) {
  Fill(3, 1);
  EXPECT_EQ(CodeOf([&] { Gallery::Open(file, key, "other-model@2"); }),
            ErrorCode::kInvalidArgument);
}

TEST_F(Fixture, TruncatedRefused) {
  Fill(200, 1);  // ~500 KB
  auto size = fs::file_size(file);
  for (double frac : {0.5, 0.9}) {
    fs::copy_file(file, dir / "t.db", fs::copy_options::overwrite_existing);
    fs::resize_file(dir / "t.db", uintmax_t(double(size) * frac));
    auto code = CodeOf([&] { Gallery::Open(dir / "t.db", key)->LoadAll(); });
    EXPECT_EQ(code, ErrorCode::kCorrupt);
  }
  fs::copy_file(file, dir / "t.db", fs::copy_options::overwrite_existing);
  fs::resize_file(dir / "t.db", 50);
  EXPECT_EQ(CodeOf([&] { Gallery::Open(dir / "t.db", key)->LoadAll(); }), ErrorCode::kCorrupt);
}

TEST_F(Fixture, TamperedRowRefused) {
  Fill(10, 2);
  // Flip one bit of one sealed feature code.
  fs::copy_file(file, dir / "a.db");
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir / "a.db").c_str(), &db), SQLITE_OK);
    sqlite3_stmt* s = nullptr;
    sqlite3_prepare_v2(db, "SELECT code FROM templates WHERE id = 5", -1, &s, nullptr);
    ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
    auto p = static_cast<const uint8_t*>(sqlite3_column_blob(s, 0));
    std::vector<uint8_t> code(p, p + sqlite3_column_bytes(s, 0));
    sqlite3_finalize(s);
    code[100] ^= 1;
    sqlite3_prepare_v2(db, "UPDATE templates SET code = ? WHERE id = 5", -1, &s, nullptr);
    sqlite3_bind_blob(s, 1, code.data(), int(code.size()), SQLITE_TRANSIENT);
    ASSERT_EQ(sqlite3_step(s), SQLITE_DONE);
    sqlite3_finalize(s);
    sqlite3_close(db);
  }
  EXPECT_EQ(CodeOf([&] { Gallery::Open(dir / "a.db", key)->LoadAll(); }), ErrorCode::kCrypto);
  // Move a template to another identity.
  fs::copy_file(file, dir / "b.db");
  RawSql(dir / "b.db", "UPDATE templates SET identity = 'ID1001' WHERE id = 1");
  EXPECT_EQ(CodeOf([&] { Gallery::Open(dir / "b.db", key)->LoadAll(); }), ErrorCode::kCrypto);
  // Swap two rows' codes.
  fs::copy_file(file, dir / "c.db");
  RawSql(dir / "c.db",
         "UPDATE templates SET code = (SELECT code FROM templates WHERE id = 2) WHERE id = 3");
  EXPECT_NE(CodeOf([&] { Gallery::Open(dir / "c.db", key)->LoadAll(); }), ErrorCode::kInternal);
  // Delete a row behind anju's back.
  fs::copy_file(file, dir / "d.db");
  RawSql(dir / "d.db", "DELETE FROM templates WHERE id = 4");
  EXPECT_EQ(CodeOf([&] { Gallery::Open(dir / "d.db", key)->LoadAll(); }), ErrorCode::kCorrupt);
  // Change the recorded model version.
  fs::copy_file(file, dir / "e.db");
  RawSql(dir / "e.db", "UPDATE meta SET value = CAST('x' AS BLOB) WHERE key = 'model_version'");
  EXPECT_EQ(CodeOf([&] { Gallery::Open(dir / "e.db", key)->LoadAll(); }), ErrorCode::kCrypto);
}

TEST_F(Fixture, RandomByteDamageNeverLoadsSilentlyWrong) {
  Fill(30, 1);
  std::string bytes;
  {
    std::ifstream in(file, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::mt19937 r(5);
  int refused = 0, trials = 40;
  for (int i = 0; i < trials; ++i) {
    std::string b = bytes;
    size_t pos = std::uniform_int_distribution<size_t>(0, b.size() - 1)(r);
    b[pos] = char(b[pos] ^ 0x5a);
    {
      std::ofstream out(dir / "x.db", std::ios::binary | std::ios::trunc);
      out << b;
    }
    try {
      auto all = Gallery::Open(dir / "x.db", key)->LoadAll();
      // Loaded: the damage hit unused space; the content must be exactly what was stored.
      ASSERT_EQ(all.size(), added.size());
      for (auto& t : all)
        EXPECT_EQ(t.feature, DecodeFeature(EncodeFeature(added[t.id].second), kDim));
    } catch (const Error&) {
      ++refused;
    }
  }
  std::printf("    %d/%d random byte flips refused, the rest hit unused space\n", refused, trials);
}

TEST_F(Fixture, Load20000Templates) {
  {
    auto g = Gallery::Create(file, key, kVer);
    std::vector<std::string> ids;
    std::vector<std::vector<float>> fs_;
    for (int i = 0; i < 20000; ++i) ids.push_back(Name("P", i)), fs_.push_back(RandomUnit(rng));
    std::vector<Gallery::NewTemplate> items;
    for (int i = 0; i < 20000; ++i) items.emplace_back(ids[i], fs_[i]);
    auto t0 = std::chrono::steady_clock::now();
    g->AddBatch(items);
    std::printf("    enrolled 20000 templates in one transaction in %.3f s\n",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  auto t0 = std::chrono::steady_clock::now();
  auto g = Gallery::Open(file, key, kVer);
  match::FeatureIndex index({.model_version = kVer});
  size_t n = g->LoadInto(index);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "    opened + verified + decrypted + indexed %zu templates in %.3f s (%.1f MB file)\n", n, s,
      double(fs::file_size(file)) / 1e6);
  EXPECT_EQ(n, 20000u);
#if !defined(__SANITIZE_ADDRESS__)
  // The target is "well under a second" (BENCHMARKS.md); the bound here leaves room for a
  // machine shared with other builds.
  EXPECT_LT(s, 2.5);
#endif
}

}  // namespace
}  // namespace anju::store
