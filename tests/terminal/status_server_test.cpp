// The terminal's status page over HTTPS: a self-signed certificate made at
// first start in the data directory, trusted by clients as their CA file, kept across
// restarts; plain HTTP only when asked for (development).
#include "terminal/status_server.h"

#include <httplib.h>

#include "crypto/tls_cert.h"
#include "terminal/terminal_config.h"
#include "testing.h"

namespace anju::terminal {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

json HealthyStatus() {
  return {{"camera", {{"state", "connected"}}}, {"uptime_s", 7}};
}

TEST(StatusServerTest, HttpsWithTheSelfSignedCertificateAsCa) {
  const fs::path dir = anju::testing::TempDir("status-tls");
  StatusServer s("127.0.0.1:0", HealthyStatus, dir / "tls");
  s.Start();
  ASSERT_EQ(s.url().rfind("https://127.0.0.1:", 0), 0u);
  ASSERT_TRUE(fs::exists(dir / "tls" / "status.crt"));
  EXPECT_TRUE(s.cert_created());
  EXPECT_EQ(s.fingerprint(), crypto::CertFingerprint(s.cert_file()));
  EXPECT_EQ(fs::status(dir / "tls" / "status.key").permissions() &
                (fs::perms::group_all | fs::perms::others_all),
            fs::perms::none);

  httplib::SSLClient ok("127.0.0.1", s.port());
  ok.set_ca_cert_path(s.cert_file().c_str());
  ok.enable_server_certificate_verification(true);
  auto r = ok.Get("/healthz");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(json::parse(r->body)["status"], "ok");
  auto page = ok.Get("/");
  ASSERT_TRUE(page);
  EXPECT_NE(page->body.find("/status.json"), std::string::npos);

  // Plain HTTP on the same port gets no valid HTTP answer.
  httplib::Client plain("127.0.0.1", s.port());
  plain.set_read_timeout(3, 0);
  auto bad = plain.Get("/healthz");
  EXPECT_TRUE(!bad || bad->status != 200);

  // A client that does not trust the certificate refuses the connection.
  httplib::SSLClient untrusting("127.0.0.1", s.port());
  untrusting.enable_server_certificate_verification(true);
  EXPECT_FALSE(untrusting.Get("/healthz"));

  // Restart: the same certificate (same fingerprint), not a new one.
  const std::string fp = s.fingerprint();
  s.Stop();
  StatusServer again("127.0.0.1:0", HealthyStatus, dir / "tls");
  again.Start();
  EXPECT_FALSE(again.cert_created());
  EXPECT_EQ(again.fingerprint(), fp);
  httplib::SSLClient after("127.0.0.1", again.port());
  after.set_ca_cert_path(again.cert_file().c_str());
  after.enable_server_certificate_verification(true);
  auto r2 = after.Get("/status.json");
  ASSERT_TRUE(r2);
  EXPECT_EQ(json::parse(r2->body)["uptime_s"], 7);
}

TEST(StatusServerTest, PlainHttpOnlyWhenAskedFor) {
  StatusServer s("127.0.0.1:0", HealthyStatus);
  s.Start();
  EXPECT_EQ(s.url().rfind("http://", 0), 0u);
  EXPECT_TRUE(s.cert_file().empty());
  httplib::Client c(s.url());
  auto r = c.Get("/healthz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST(StatusServerTest, ConfigDefaultsToTls) {
  const auto on = TerminalConfig::Parse(R"({"data_dir": "/d", "camera": "/dev/video0"})");
  EXPECT_TRUE(on.status_tls);
  const auto off =
      TerminalConfig::Parse(R"({"data_dir": "/d", "camera": "/dev/video0", "status_tls": false})");
  EXPECT_FALSE(off.status_tls);
}

}  // namespace
}  // namespace anju::terminal
