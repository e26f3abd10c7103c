// The HTTP front (server/http/): the request model, and a real anju-server on loopback probed
// by real TCP and TLS clients — idle and slow clients, oversized chunked bodies, per-address
// caps, 2,000 kept-alive connections, one Content-Encoding on compressed errors — and the
// camera listener (GA/T 1400 only, plain HTTP or TLS 1.2, allow-list), in process and as the
// anju-server program. Figures (latency under hostile clients, RSS) are in
// `anju bench http-hostile`, not here: these tests assert behaviour and bounds.
#include <gtest/gtest.h>
#include <httplib.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "protocol/viid.h"
#include "server/http/address_list.h"
#include "server/http/message.h"
#include "server/http/raw_client.h"
#include "server/http/router.h"
#include "server/server.h"
#include "testing.h"

namespace anju::server::http {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;

// ---------------------------------------------------------------- the model

TEST(HttpMessage, TargetIsSplitAndDecoded) {
  Request r;
  r.target = "/api/v1/persons/%E7%8E%8B%20x?limit=5&name=a+b%26c&flag&=x&limit=9";
  ParseTarget(r);
  EXPECT_EQ(r.path, "/api/v1/persons/王 x");
  EXPECT_EQ(r.Param("limit"), "5");  // the first of repeated parameters
  EXPECT_EQ(r.Param("name"), "a b&c");
  EXPECT_EQ(r.Param("flag"), "");
  EXPECT_FALSE(r.Param("absent"));
  // A malformed escape is kept as it is; '+' is a space only in the query.
  EXPECT_EQ(PercentDecode("a%zz+%4", false), "a%zz+%4");
  EXPECT_EQ(PercentDecode("a+b", true), "a b");
}

TEST(HttpMessage, HeaderNamesIgnoreCase) {
  Request r;
  r.headers.emplace("content-TYPE", "multipart/form-data; boundary=x");
  EXPECT_EQ(r.Header("Content-Type"), "multipart/form-data; boundary=x");
  EXPECT_TRUE(r.IsMultipartFormData());
  EXPECT_TRUE(r.HasHeader("CONTENT-type"));
  EXPECT_EQ(r.Header("Accept"), "");
  Response res;
  res.Set("Content-Encoding", "gzip");
  res.Set("content-encoding", "br");
  EXPECT_EQ(res.headers.count("CONTENT-ENCODING"), 1u);
  EXPECT_EQ(res.Header("Content-Encoding"), "br");
}

TEST(HttpMessage, MultipartFilesAndFields) {
  const std::string body =
      "preamble\r\n"
      "--XyZ\r\n"
      "Content-Disposition: form-data; name=\"image\"; filename=\"a;b.jpg\"\r\n"
      "Content-Type: image/jpeg\r\n"
      "\r\n"
      "\xff\xd8\r\n--not-the-boundary\r\n\xff\xd9\r\n"
      "--XyZ\r\n"
      "content-disposition: form-data; name=accept_duplicate\r\n"
      "\r\n"
      "true\r\n"
      "--XyZ--\r\n";
  const auto parts = ParseMultipart("multipart/form-data; boundary=\"XyZ\"", body);
  ASSERT_TRUE(parts);
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].name, "image");
  EXPECT_EQ((*parts)[0].filename, "a;b.jpg");
  EXPECT_EQ((*parts)[0].content_type, "image/jpeg");
  EXPECT_EQ((*parts)[0].content, "\xff\xd8\r\n--not-the-boundary\r\n\xff\xd9");
  EXPECT_EQ((*parts)[1].name, "accept_duplicate");
  EXPECT_EQ((*parts)[1].content, "true");
  Request r;
  r.form = *parts;
  ASSERT_TRUE(r.Part("accept_duplicate"));
  EXPECT_FALSE(r.Part("missing"));
}

TEST(HttpMessage, MalformedMultipartIsRefused) {
  const std::string ok = "--b\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nv\r\n--b--";
  EXPECT_TRUE(ParseMultipart("multipart/form-data; boundary=b", ok));
  EXPECT_FALSE(ParseMultipart("multipart/form-data", ok));              // no boundary
  EXPECT_FALSE(ParseMultipart("multipart/form-data; boundary=c", ok));  // other boundary
  EXPECT_FALSE(ParseMultipart("multipart/form-data; boundary=b",        // not closed
                              "--b\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nv"));
  EXPECT_FALSE(ParseMultipart("multipart/form-data; boundary=b",  // no name
                              "--b\r\nContent-Type: text/plain\r\n\r\nv\r\n--b--"));
  EXPECT_FALSE(ParseMultipart("multipart/form-data; boundary=b",  // header line
                              "--b\r\nno colon here\r\n\r\nv\r\n--b--"));
  EXPECT_FALSE(ParseMultipart("multipart/form-data; boundary=b", ""));
}

TEST(HttpAddressList, AddressesAndNetworks) {
  const auto list = AddressList::Parse({"192.0.2.7", "10.1.0.0/16", "2001:db8::/32", "::1"});
  EXPECT_TRUE(list.Contains("192.0.2.7"));
  EXPECT_FALSE(list.Contains("192.0.2.8"));
  EXPECT_TRUE(list.Contains("10.1.255.3"));
  EXPECT_FALSE(list.Contains("10.2.0.1"));
  EXPECT_TRUE(list.Contains("::ffff:10.1.2.3"));  // IPv4-mapped, as a dual-stack socket gives
  EXPECT_TRUE(list.Contains("2001:db8:1::5"));
  EXPECT_FALSE(list.Contains("2001:db9::5"));
  EXPECT_TRUE(list.Contains("::1"));
  EXPECT_FALSE(list.Contains("not an address"));
  EXPECT_TRUE(AddressList().empty());
  for (const char* bad : {"10.0.0.0/33", "example.org", "10.0.0.0/", "::/129", "10.0.0.0/8x"})
    EXPECT_EQ(anju::testing::CodeOf([&] { AddressList::Parse({bad}); }),
              ErrorCode::kInvalidArgument)
        << bad;
  EXPECT_EQ(ParseTlsMode("tls12"), TlsMode::kTls12);
  EXPECT_EQ(anju::testing::CodeOf([] { ParseTlsMode("ssl3"); }), ErrorCode::kInvalidArgument);
}

TEST(HttpRouter, MatchesInOrderWithParametersInsideSegments) {
  Router router;
  auto echo = [](const std::string& tag) {
    return [tag](server::Request& r) {
      json j = {{"route", tag}, {"listener", ListenerName(r.http.listener)}};
      for (const auto& [k, v] : r.path) j[k] = v;
      return Reply::Json(j);
    };
  };
  router.Add("GET", "/api/v1/events/stream", "t", Auth::kNone, "s", echo("stream"));
  router.Add("GET", "/api/v1/events/{id}", "t", Auth::kNone, "s", echo("event"));
  router.Add("GET", "/api/v1/captures/{id}/clip/{n}.jpg", "t", Auth::kNone, "s", echo("clip"));
  router.Add("POST", "/VIID/System/Register", "t", Auth::kNone, "s", echo("register"));
  router.Install({});
  auto call = [&](const std::string& method, const std::string& target,
                  Listener l = Listener::kMain) -> std::optional<json> {
    Request req;
    req.method = method;
    req.target = target;
    req.listener = l;
    ParseTarget(req);
    auto res = router.Dispatch(req);
    if (!res) return std::nullopt;
    return json::parse(res->body);
  };
  EXPECT_EQ((*call("GET", "/api/v1/events/stream"))["route"], "stream");  // first added wins
  EXPECT_EQ((*call("GET", "/api/v1/events/42"))["id"], "42");
  const auto clip = call("GET", "/api/v1/captures/c%2D7/clip/3.jpg");
  ASSERT_TRUE(clip);
  EXPECT_EQ((*clip)["id"], "c-7");
  EXPECT_EQ((*clip)["n"], "3");
  EXPECT_FALSE(call("GET", "/api/v1/captures/c7/clip/.jpg"));
  EXPECT_FALSE(call("GET", "/api/v1/captures/c7/clip/3.png"));
  EXPECT_FALSE(call("GET", "/api/v1/events/"));
  EXPECT_FALSE(call("POST", "/api/v1/events/42"));
  EXPECT_EQ((*call("HEAD", "/api/v1/events/42"))["route"], "event");
  // The camera listener reaches GA/T 1400 routes only.
  EXPECT_FALSE(call("GET", "/api/v1/events/42", Listener::kCamera));
  EXPECT_EQ((*call("POST", "/VIID/System/Register", Listener::kCamera))["listener"], "camera");
}

// ---------------------------------------------------------------- a real server

bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (cond()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return cond();
}

class HttpFrontTest : public ::testing::Test {
 protected:
  void TearDown() override {
    server_.reset();
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  void Start(ServerOptions o = {}) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = anju::testing::TempDir(std::string("http-front-") + info->name());
    o.data_dir = dir_ / "data";
    o.model_dir = dir_ / "no-models";  // the front is under test, not the face engine
    o.port = 0;
    o.retention_interval_s = 0;
    server_ = std::make_unique<Server>(o);
    server_->Start();
  }
  RawClientOptions Tls(const std::string& source = "") const {
    RawClientOptions o;
    o.port = server_->port();
    o.source = source;
    return o;
  }
  RawClientOptions Tcp(const std::string& source = "") const {
    RawClientOptions o = Tls(source);
    o.handshake = false;
    return o;
  }
  // GET /healthz on a fresh TLS connection; the status, 0 when there was no answer.
  int Healthz(const std::string& source = "") const {
    std::string err;
    auto c = RawClient::Connect(Tls(source), &err);
    if (!c) return 0;
    if (!c->Send(RawClient::Get("/healthz"))) return 0;
    const auto r = c->Read();
    return r ? r->status : 0;
  }
  std::unique_ptr<RawClient> MustConnect(const RawClientOptions& o) {
    std::string err;
    auto c = RawClient::Connect(o, &err);
    EXPECT_TRUE(c) << "connect from " << (o.source.empty() ? "any" : o.source) << ": " << err;
    return c;
  }

  fs::path dir_;
  std::unique_ptr<Server> server_;
};

TEST_F(HttpFrontTest, IdleAndSlowHeaderClientsDoNotStarveHealthz) {
  ServerOptions o;
  o.http_limits.header_timeout = 300s;  // held for the whole test: nothing is dropped early
  Start(o);
  std::vector<std::unique_ptr<RawClient>> idle, slow;
  // 1,000 idle TCP connections from 8 loopback addresses (125 each, under the per-address cap).
  for (int i = 0; i < 1000; ++i) {
    idle.push_back(MustConnect(Tcp("127.0.0." + std::to_string(10 + i % 8))));
    ASSERT_TRUE(idle.back());
  }
  // 50 TLS clients that stop half-way through their request header.
  for (int i = 0; i < 50; ++i) {
    slow.push_back(MustConnect(Tls()));
    ASSERT_TRUE(slow.back());
    ASSERT_TRUE(slow.back()->Send("GET /healthz HTTP/1.1\r\nHost: an"));
  }
  ASSERT_TRUE(WaitFor([&] { return server_->http_stats().open >= 1050; }, 60s))
      << server_->http_stats().open << " connections open";
  for (int i = 0; i < 20; ++i) EXPECT_EQ(Healthz(), 200) << "request " << i;
  // Nothing was dropped to make room: every hostile connection is still held.
  EXPECT_GE(server_->http_stats().open, 1050u);
  EXPECT_EQ(server_->http_stats().refused_per_address, 0u);
  for (auto& c : slow) EXPECT_FALSE(c->WaitClosed(1ms));
}

TEST_F(HttpFrontTest, HeaderDeadlineDropsASlowClient) {
  ServerOptions o;
  o.http_limits.header_timeout = 1s;
  Start(o);
  auto c = MustConnect(Tls());
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->Send("GET /healthz HTTP/1.1\r\nHost: anju\r\nX-Slow: "));
  // One byte every 100 ms for up to 10 s: a header that would take far past the deadline.
  bool dropped = false;
  for (int i = 0; i < 100 && !dropped; ++i) dropped = !c->Send("a") || c->WaitClosed(100ms);
  EXPECT_TRUE(dropped) << "the slow client was not dropped";
  EXPECT_FALSE(c->Read()) << "the slow client got an answer";
  // (Counted when the server's handler for the closed read runs, just after the close.)
  EXPECT_TRUE(WaitFor([&] { return server_->http_stats().timed_out >= 1; }, 5s));
  // A connection that never even starts its TLS handshake is dropped as well.
  auto silent = MustConnect(Tcp());
  ASSERT_TRUE(silent);
  EXPECT_TRUE(silent->WaitClosed(10s));
  EXPECT_TRUE(WaitFor([&] { return server_->http_stats().timed_out >= 2; }, 5s));
  EXPECT_EQ(Healthz(), 200);
}

TEST_F(HttpFrontTest, ChunkedBodyOverTheLimitIsRefusedWithBoundedMemory) {
  Start();
  ASSERT_EQ(Healthz(), 200);  // warm up the paths a request takes
  const size_t before = ResidentBytes();
  ASSERT_GT(before, 0u);
  auto c = MustConnect(Tls());
  ASSERT_TRUE(c);
  ASSERT_TRUE(
      c->Send("POST /api/v1/auth/login HTTP/1.1\r\nHost: anju\r\nContent-Type: "
              "application/json\r\nTransfer-Encoding: chunked\r\n\r\n"));
  const std::string data(64 << 10, 'a');
  const std::string chunk = "10000\r\n" + data + "\r\n";
  size_t peak = before, sent = 0;
  bool broken = false;
  for (int i = 0; i < 1024 && !broken; ++i) {  // 64 MiB
    broken = !c->Send(chunk);
    if (!broken) sent += data.size();
    if (i % 16 == 0) peak = std::max(peak, ResidentBytes());
  }
  if (!broken) c->Send("0\r\n\r\n");
  const auto reply = c->Read();
  peak = std::max(peak, ResidentBytes());
  std::printf("    sent %zu MiB before the server stopped reading; %s; RSS +%zu MiB\n", sent >> 20,
              reply ? ("answer " + std::to_string(reply->status)).c_str() : "connection closed",
              (peak - before) >> 20);
  // Refused: 413 with the JSON error, or the connection closed. Never handled.
  if (reply) {
    EXPECT_EQ(reply->status, 413);
    EXPECT_EQ(json::parse(reply->body)["error"]["code"], "too_large");
  }
#if defined(__SANITIZE_ADDRESS__)
  // Under AddressSanitizer freed memory sits in its quarantine and every allocation carries
  // redzones, so resident memory says nothing about what the server kept; the release build
  // checks the bound.
  (void)peak;
  (void)before;
#else
  EXPECT_LT(peak - before, size_t(64) << 20);
#endif
  EXPECT_GE(server_->http_stats().refused_body, 1u);
  EXPECT_EQ(Healthz(), 200);
}

TEST_F(HttpFrontTest, ConnectionsAreCappedPerSourceAddress) {
  ServerOptions o;
  o.http_limits.max_connections_per_address = 8;
  Start(o);
  std::vector<std::unique_ptr<RawClient>> held;
  for (int i = 0; i < 8; ++i) {
    held.push_back(MustConnect(Tcp("127.0.0.3")));
    ASSERT_TRUE(held.back());
  }
  ASSERT_TRUE(WaitFor([&] { return server_->http_stats().open >= 8; }, 10s));
  // The ninth from the same address is closed at once; the eight stay.
  auto ninth = MustConnect(Tcp("127.0.0.3"));
  ASSERT_TRUE(ninth);
  EXPECT_TRUE(ninth->WaitClosed(10s));
  EXPECT_EQ(server_->http_stats().refused_per_address, 1u);
  for (auto& c : held) EXPECT_FALSE(c->WaitClosed(1ms));
  EXPECT_EQ(Healthz("127.0.0.3"), 0);  // still full
  // Other addresses are served meanwhile.
  EXPECT_EQ(Healthz("127.0.0.4"), 200);
  // A slot that frees is taken again.
  held.pop_back();
  EXPECT_TRUE(WaitFor([&] { return Healthz("127.0.0.3") == 200; }, 10s));
}

TEST_F(HttpFrontTest, TwoThousandKeptAliveConnectionsAreAllServed) {
  ServerOptions o;
  o.http_limits.header_timeout = 300s;
  o.http_limits.idle_timeout = 300s;
  Start(o);
  constexpr int kConnections = 2000;
  std::vector<std::unique_ptr<RawClient>> conns;
  for (int i = 0; i < kConnections; ++i) {
    // 200 per address, under the default cap of 256.
    conns.push_back(MustConnect(Tls("127.0.0." + std::to_string(20 + i % 10))));
    ASSERT_TRUE(conns.back()) << "connection " << i;
  }
  for (int round = 0; round < 2; ++round) {
    for (auto& c : conns) ASSERT_TRUE(c->Send(RawClient::Get("/healthz")));
    int ok = 0;
    for (auto& c : conns) {
      const auto r = c->Read();
      ok += r && r->status == 200;
    }
    EXPECT_EQ(ok, kConnections) << "round " << round;
    EXPECT_GE(server_->http_stats().open, size_t(kConnections)) << "round " << round;
  }
  // Both rounds on the same connections: nothing was closed and reopened.
  EXPECT_EQ(server_->http_stats().accepted, uint64_t(kConnections));
  EXPECT_EQ(server_->http_stats().requests, uint64_t(2 * kConnections));
}

TEST_F(HttpFrontTest, CompressedErrorHasOneContentEncodingAndTheRealBody) {
  Start();
  const std::string code(1500, 'Q');  // the 404 message names it: over 1 KiB, so gzipped
  httplib::Client raw(server_->url());
  raw.enable_server_certificate_verification(false);
  raw.set_decompress(false);
  const httplib::Headers h = {{"Authorization", "Bearer " + server_->admin_token()},
                              {"Accept-Encoding", "gzip, deflate, br"}};
  auto r = raw.Get("/api/v1/persons/" + code, h);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->get_header_value_count("Content-Encoding"), 1u);
  EXPECT_EQ(r->get_header_value("Content-Encoding"), "gzip");
  EXPECT_EQ(r->get_header_value_count("Content-Type"), 1u);
  EXPECT_LT(r->body.size(), 1000u);
  httplib::Client decoding(server_->url());
  decoding.enable_server_certificate_verification(false);
  auto d = decoding.Get("/api/v1/persons/" + code, h);
  ASSERT_TRUE(d);
  const json body = json::parse(d->body);
  EXPECT_EQ(body["error"]["code"], "not_found");
  EXPECT_NE(body["error"]["message"].get<std::string>().find(code), std::string::npos);
}

TEST_F(HttpFrontTest, CameraListenerServesOnlyGaT1400OverPlainHttp) {
  ServerOptions o;
  o.camera_listen = "127.0.0.1:0";
  Start(o);
  ASSERT_GT(server_->camera_port(), 0);
  EXPECT_EQ(server_->camera_url(), "http://127.0.0.1:" + std::to_string(server_->camera_port()));
  httplib::Client cam("127.0.0.1", server_->camera_port());
  const std::string reg = protocol::viid::MakeSystemObject(protocol::viid::SystemObject::kRegister,
                                                           "31000000001190000001")
                              .dump();
  auto r = cam.Post(protocol::viid::kPathRegister, reg, "application/VIID+JSON");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 401);
  EXPECT_TRUE(r->get_header_value("WWW-Authenticate").starts_with("Digest "))
      << r->get_header_value("WWW-Authenticate");
  // Nothing but GA/T 1400 there, whoever asks.
  const httplib::Headers admin = {{"Authorization", "Bearer " + server_->admin_token()}};
  for (const char* path : {"/api/v1/persons", "/healthz", "/api/openapi.json", "/"}) {
    auto x = cam.Get(path, admin);
    ASSERT_TRUE(x) << path;
    EXPECT_EQ(x->status, 404) << path;
  }
  // The main API stays TLS 1.3 only, and serves what the camera listener does not.
  RawClientOptions t12 = Tls();
  t12.max_tls = TlsVersion::kTls12;
  EXPECT_FALSE(RawClient::Connect(t12));
  auto t13 = MustConnect(Tls());
  ASSERT_TRUE(t13);
  EXPECT_EQ(t13->tls_version(), "TLSv1.3");
  ASSERT_TRUE(t13->Send(RawClient::Get(
      "/api/v1/persons", "Authorization: Bearer " + server_->admin_token() + "\r\n")));
  const auto persons = t13->Read();
  ASSERT_TRUE(persons);
  EXPECT_EQ(persons->status, 200);
  httplib::Client plain("127.0.0.1", server_->port());
  plain.set_connection_timeout(5);
  plain.set_read_timeout(5);
  EXPECT_FALSE(plain.Get("/healthz"));
}

TEST_F(HttpFrontTest, CameraListenerTls12AndSourceAllowList) {
  ServerOptions o;
  o.camera_listen = "127.0.0.1:0";
  o.camera_tls = TlsMode::kTls12;
  o.camera_allow_from = {"127.0.0.5", "10.0.0.0/8"};
  Start(o);
  EXPECT_EQ(server_->camera_url().rfind("https://", 0), 0u);
  RawClientOptions cam = Tls("127.0.0.5");
  cam.port = server_->camera_port();
  cam.max_tls = TlsVersion::kTls12;  // a camera without TLS 1.3
  auto c = MustConnect(cam);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->tls_version(), "TLSv1.2");
  const std::string reg = protocol::viid::MakeSystemObject(protocol::viid::SystemObject::kRegister,
                                                           "31000000001190000002")
                              .dump();
  ASSERT_TRUE(
      c->Send("POST /VIID/System/Register HTTP/1.1\r\nHost: anju\r\nContent-Type: "
              "application/VIID+JSON\r\nContent-Length: " +
              std::to_string(reg.size()) + "\r\n\r\n" + reg));
  const auto r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_TRUE(r->Header("WWW-Authenticate").starts_with("Digest "));
  // Not on the allow-list: closed before any TLS.
  cam.source = "127.0.0.6";
  std::string err;
  EXPECT_FALSE(RawClient::Connect(cam, &err));
  EXPECT_EQ(server_->http_stats().refused_source, 1u);
  // The main listener keeps refusing TLS 1.2.
  RawClientOptions main12 = Tls("127.0.0.5");
  main12.max_tls = TlsVersion::kTls12;
  EXPECT_FALSE(RawClient::Connect(main12));
}

TEST_F(HttpFrontTest, BadCameraListenConfigIsRefused) {
  ServerOptions o;
  EXPECT_EQ(anju::testing::CodeOf([&] {
              o.ApplyConfig({{"camera_tls", "tls10"}});
            }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(anju::testing::CodeOf([&] {
              o.ApplyConfig({{"camera_allow_from", json::array({"10.0.0.0/99"})}});
            }),
            ErrorCode::kInvalidArgument);
  o.ApplyConfig({{"camera_listen", "127.0.0.1:0"},
                 {"camera_tls", "tls13"},
                 {"camera_allow_from", json::array({"192.0.2.0/24"})},
                 {"max_connections_per_address", 4},
                 {"header_timeout_s", 3}});
  EXPECT_EQ(o.camera_listen, "127.0.0.1:0");
  EXPECT_EQ(o.camera_tls, TlsMode::kTls13);
  EXPECT_EQ(o.http_limits.max_connections_per_address, 4u);
  EXPECT_EQ(o.http_limits.header_timeout, 3s);
  o.camera_listen = "no-port";
  o.data_dir = anju::testing::TempDir("http-front-bad-listen");
  o.model_dir = o.data_dir / "no-models";
  o.port = 0;
  Server s(o);
  EXPECT_EQ(anju::testing::CodeOf([&] { s.Start(); }), ErrorCode::kInvalidArgument);
  std::error_code ec;
  fs::remove_all(o.data_dir, ec);
}

// The acceptance as an operator would run it: the anju-server program with --listen and
// --camera-listen, a plain-HTTP camera, the main API on TLS 1.3.
TEST(AnjuServerProgram, CameraListenFlag) {
#ifndef ANJU_SERVER_BIN
  GTEST_SKIP() << "anju-server is not built";
#else
  const fs::path dir = anju::testing::TempDir("http-front-program");
  fs::create_directories(dir / "no-models");
  {
    std::ofstream(dir / "config.json")
        << json{{"model_dir", (dir / "no-models").string()}, {"retention_interval_s", 0}}.dump();
  }
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(out[1], 1);
    close(out[0]);
    const std::string data = (dir / "data").string(), config = (dir / "config.json").string();
    execl(ANJU_SERVER_BIN, ANJU_SERVER_BIN, "--data-dir", data.c_str(), "--config", config.c_str(),
          "--listen", "127.0.0.1:0", "--camera-listen", "127.0.0.1:0", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  // Read the banner until both addresses are printed.
  std::string banner;
  int main_port = 0, camera_port = 0;
  const auto until = std::chrono::steady_clock::now() + 60s;
  // The port after the first "MARKER:", once its digits are complete.
  auto port_after = [&](const std::string& marker) {
    const size_t at = banner.find(marker + ":");
    if (at == std::string::npos) return 0;
    size_t end = at + marker.size() + 1;
    while (end < banner.size() && std::isdigit(static_cast<unsigned char>(banner[end]))) ++end;
    return end < banner.size() ? std::atoi(banner.c_str() + at + marker.size() + 1) : 0;
  };
  while ((!main_port || !camera_port) && std::chrono::steady_clock::now() < until) {
    pollfd p{out[0], POLLIN, 0};
    if (poll(&p, 1, 1000) <= 0) continue;
    char buf[4096];
    const ssize_t n = read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    banner.append(buf, size_t(n));
    main_port = port_after("https://127.0.0.1");
    camera_port = port_after("http://127.0.0.1");
  }
  auto stop = [&] {
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    close(out[0]);
    std::error_code ec;
    fs::remove_all(dir, ec);
  };
  if (!main_port || !camera_port) {
    stop();
    FAIL() << "no addresses in the banner:\n" << banner;
  }
  httplib::Client cam("127.0.0.1", camera_port);
  auto r = cam.Post("/VIID/System/Register",
                    protocol::viid::MakeSystemObject(protocol::viid::SystemObject::kRegister,
                                                     "31000000001190000003")
                        .dump(),
                    "application/VIID+JSON");
  EXPECT_TRUE(r && r->status == 401 &&
              r->get_header_value("WWW-Authenticate").starts_with("Digest "));
  auto persons = cam.Get("/api/v1/persons");
  EXPECT_TRUE(persons && persons->status == 404);
  RawClientOptions t;
  t.port = main_port;
  t.max_tls = TlsVersion::kTls12;
  EXPECT_FALSE(RawClient::Connect(t));
  t.max_tls = TlsVersion::kAny;
  std::string err;
  auto c = RawClient::Connect(t, &err);
  EXPECT_TRUE(c) << err;
  if (c) {
    EXPECT_EQ(c->tls_version(), "TLSv1.3");
    c->Send(RawClient::Get("/healthz"));
    const auto h = c->Read();
    EXPECT_TRUE(h && h->status == 200);
  }
  stop();
#endif
}

}  // namespace
}  // namespace anju::server::http
