// The console's static files: precompressed siblings are sent as they are, with the right
// Content-Encoding, and only to clients that accept that encoding. Served by the real HTTP front
// (server/http/http_server.h) on loopback, read by an httplib client.
#include "server/http/console_files.h"
#include "server/http/compression.h"
#include "server/http/http_server.h"
#include "server/http/router.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>

#include "testing.h"

namespace anju::server::http {
namespace {

namespace fs = std::filesystem;

// A plain-HTTP front on an ephemeral loopback port answering with HANDLER.
struct Front {
  explicit Front(RequestHandler handler) : server(Limits{}, std::move(handler)) {
    ListenerConfig l;
    l.tls = TlsMode::kOff;
    port = server.Listen(l);
    server.Start();
  }
  HttpServer server;
  int port = 0;
};

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
    ASSERT_TRUE(files_.Mount(dir_));
    front_ = std::make_unique<Front>([this](Request& req) {
      if (auto r = files_.Serve(req)) return std::move(*r);
      return ErrorResponse(404, "not_found", "no such file");
    });
  }
  void TearDown() override { front_.reset(); }
  httplib::Result Get(const std::string& path, const std::string& accept) {
    httplib::Client c("127.0.0.1", front_->port);
    c.set_decompress(false);
    httplib::Headers h;
    if (!accept.empty()) h.emplace("Accept-Encoding", accept);
    return c.Get(path, h);
  }

  fs::path dir_;
  ConsoleFiles files_;
  std::unique_ptr<Front> front_;
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
  for (const std::string accept : {"", "identity", "gzip;q=0, br;q=0"}) {
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
  for (const std::string escape : {"/../etc/passwd", "/assets/../../etc/passwd",
                                   "/%2e%2e/etc/passwd", "/assets/..%2f..%2fetc/passwd"}) {
    auto r = Get(escape, "gzip");
    ASSERT_TRUE(r) << escape;
    EXPECT_EQ(r->status, 404) << escape;
  }
  // HEAD: the headers of the GET, no body.
  httplib::Client c("127.0.0.1", front_->port);
  auto head = c.Head("/assets/app-1234.js");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_TRUE(head->body.empty());
}

TEST(ConsoleFiles, RefusesAMissingDirectory) {
  ConsoleFiles files;
  EXPECT_FALSE(files.Mount(anju::testing::TempDir("console_none") / "absent"));
  Request req;
  req.method = "GET";
  req.path = "/index.html";
  EXPECT_FALSE(files.Serve(req));
}

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
  const std::string big = "{\"items\":[" + std::string(20000, '1') + "]}";
  Front front([&](Request& req) {
    Response res;
    if (req.path == "/big") SetBodyCompressed(req, res, big, "application/json");
    if (req.path == "/small") SetBodyCompressed(req, res, "{\"ok\":true}", "application/json");
    if (req.path == "/jpeg") SetBodyCompressed(req, res, std::string(5000, '\xff'), "image/jpeg");
    return res;
  });
  const int port = front.port;

  httplib::Client raw("127.0.0.1", port);
  raw.set_decompress(false);
  auto gz = raw.Get("/big", {{"Accept-Encoding", "gzip, deflate, br"}});
  ASSERT_TRUE(gz);
  EXPECT_EQ(gz->get_header_value("Content-Encoding"), "gzip");
  EXPECT_EQ(gz->get_header_value_count("Content-Encoding"), 1u);
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
}

}  // namespace
}  // namespace anju::server::http
