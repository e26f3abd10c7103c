// The console's static files: precompressed siblings are sent as they are, with the right
// Content-Encoding, and only to clients that accept that encoding.
#include "server/console_files.h"
#include "server/http_compression.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "testing.h"

namespace anju::server {
namespace {

namespace fs = std::filesystem;

void Write(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}

class ConsoleFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = anju::testing::TempDir("console_files");
    Write(dir_ / "index.html", "<html>登录</html>");
    // The siblings' bytes are markers, not real compressed data: the test checks which file
    // was sent (a client would fail to decode them, this one does not decode).
    Write(dir_ / "assets/app-1234.js", std::string(4000, 'a'));
    Write(dir_ / "assets/app-1234.js.gz", "GZ-BYTES");
    Write(dir_ / "assets/app-1234.js.br", "BR-BYTES");
    Write(dir_ / "assets/only-gz.css", std::string(3000, 'c'));
    Write(dir_ / "assets/only-gz.css.gz", "GZ-CSS");
    ASSERT_TRUE(ServeConsole(http_, dir_));
    port_ = http_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { http_.listen_after_bind(); });
    while (!http_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  void TearDown() override {
    http_.stop();
    if (thread_.joinable()) thread_.join();
  }
  httplib::Result Get(const std::string& path, const std::string& accept) {
    httplib::Client c("127.0.0.1", port_);
    c.set_decompress(false);
    httplib::Headers h;
    if (!accept.empty()) h.emplace("Accept-Encoding", accept);
    return c.Get(path, h);
  }

  fs::path dir_;
  httplib::Server http_;
  int port_ = 0;
  std::thread thread_;
};

TEST_F(ConsoleFilesTest, SendsThePrecompressedSiblingTheClientAccepts) {
  auto br = Get("/assets/app-1234.js", "gzip, deflate, br");
  ASSERT_TRUE(br);
  EXPECT_EQ(br->status, 200);
  EXPECT_EQ(br->get_header_value("Content-Encoding"), "br");
  EXPECT_EQ(br->body, "BR-BYTES");
  EXPECT_EQ(br->get_header_value("Content-Type"), "text/javascript");
  EXPECT_EQ(br->get_header_value_count("Content-Type"), 1u);
  EXPECT_NE(br->get_header_value("Cache-Control").find("immutable"), std::string::npos);

  auto gz = Get("/assets/app-1234.js", "gzip");
  ASSERT_TRUE(gz);
  EXPECT_EQ(gz->get_header_value("Content-Encoding"), "gzip");
  EXPECT_EQ(gz->body, "GZ-BYTES");

  // Only a gzip sibling: a brotli-and-gzip client gets gzip.
  auto css = Get("/assets/only-gz.css", "br, gzip");
  ASSERT_TRUE(css);
  EXPECT_EQ(css->get_header_value("Content-Encoding"), "gzip");
  EXPECT_EQ(css->body, "GZ-CSS");
}

TEST_F(ConsoleFilesTest, PlainClientsGetTheFileItself) {
  // (httplib's own on-the-fly compression matches codings by substring, so "gzip;q=0" is not
  // a case this layer can promise.)
  for (const std::string accept : {"", "identity"}) {
    auto r = Get("/assets/app-1234.js", accept);
    ASSERT_TRUE(r) << accept;
    EXPECT_EQ(r->status, 200) << accept;
    EXPECT_FALSE(r->has_header("Content-Encoding")) << accept;
    EXPECT_TRUE(r->body == std::string(4000, 'a')) << accept;
  }
}

TEST_F(ConsoleFilesTest, IndexIsRevalidatedAndMissingFilesAre404) {
  auto index = Get("/", "");
  ASSERT_TRUE(index);
  EXPECT_EQ(index->status, 200);
  EXPECT_NE(index->body.find("登录"), std::string::npos);
  EXPECT_EQ(index->get_header_value("Cache-Control"), "no-cache");
  auto missing = Get("/assets/nope.js", "gzip");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  auto escape = Get("/../etc/passwd", "gzip");
  ASSERT_TRUE(escape);
  EXPECT_NE(escape->status, 200);
}

TEST(ConsoleFiles, RefusesAMissingDirectory) {
  httplib::Server http;
  EXPECT_FALSE(ServeConsole(http, anju::testing::TempDir("console_none") / "absent"));
}

}  // namespace
}  // namespace anju::server

namespace anju::server {
namespace {

TEST(HttpCompression, AcceptEncodingTokens) {
  EXPECT_TRUE(AcceptsEncoding("gzip, deflate, br", "br"));
  EXPECT_TRUE(AcceptsEncoding("gzip, deflate, br", "gzip"));
  EXPECT_TRUE(AcceptsEncoding(" gzip;q=0.5 ", "gzip"));
  EXPECT_FALSE(AcceptsEncoding("gzip;q=0", "gzip"));
  EXPECT_FALSE(AcceptsEncoding("gzip; q=0.000", "gzip"));
  EXPECT_FALSE(AcceptsEncoding("brotli", "br"));
  EXPECT_FALSE(AcceptsEncoding("x-gzip", "gzip"));
  EXPECT_FALSE(AcceptsEncoding("", "gzip"));
}

// The reply path of the API router: large JSON is gzip-compressed by us (and decodes to the
// same bytes), small JSON and binary bodies are left as they are.
TEST(HttpCompression, RouterRepliesAreGzippedWhenLargeAndAccepted) {
  httplib::Server http;
  const std::string big = "{\"items\":[" + std::string(20000, '1') + "]}";
  http.Get("/big", [&](const httplib::Request& req, httplib::Response& res) {
    SetBodyCompressed(req, res, big, "application/json");
  });
  http.Get("/small", [&](const httplib::Request& req, httplib::Response& res) {
    SetBodyCompressed(req, res, "{\"ok\":true}", "application/json");
  });
  http.Get("/jpeg", [&](const httplib::Request& req, httplib::Response& res) {
    SetBodyCompressed(req, res, std::string(5000, '\xff'), "image/jpeg");
  });
  const int port = http.bind_to_any_port("127.0.0.1");
  std::thread t([&] { http.listen_after_bind(); });
  while (!http.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(2));

  httplib::Client raw("127.0.0.1", port);
  raw.set_decompress(false);
  auto gz = raw.Get("/big", {{"Accept-Encoding", "gzip, deflate, br"}});
  ASSERT_TRUE(gz);
  EXPECT_EQ(gz->get_header_value("Content-Encoding"), "gzip");
  EXPECT_LT(gz->body.size(), big.size() / 10);
  EXPECT_EQ(gz->get_header_value_count("Content-Type"), 1u);

  httplib::Client decoding("127.0.0.1", port);  // decompresses, as browsers do
  auto decoded = decoding.Get("/big", {{"Accept-Encoding", "gzip"}});
  ASSERT_TRUE(decoded);
  EXPECT_TRUE(decoded->body == big);

  auto plain = raw.Get("/big", {{"Accept-Encoding", "br"}});  // br only: sent as is
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->has_header("Content-Encoding"));
  EXPECT_TRUE(plain->body == big);

  auto small = raw.Get("/small");
  ASSERT_TRUE(small);
  EXPECT_EQ(small->body, "{\"ok\":true}");
  auto jpeg = raw.Get("/jpeg", {{"Accept-Encoding", "gzip"}});
  ASSERT_TRUE(jpeg);
  EXPECT_FALSE(jpeg->has_header("Content-Encoding"));
  EXPECT_EQ(jpeg->body.size(), 5000u);
  http.stop();
  t.join();
}

}  // namespace
}  // namespace anju::server
