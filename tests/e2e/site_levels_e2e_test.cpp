// Per-site levels from anju-server to anju-terminal on loopback (docs/matching.md, "Per-site
// calibration"; docs/device-protocol.md, gallery "thresholds"): a real server calibrates a
// crowded site after its residents are enrolled, a real terminal placed at that site receives
// the levels with gallery sync, decides with them, and keeps them across a restart without the
// server (R3.1.2.7).
#include <gtest/gtest.h>
#include <httplib.h>

#include <cmath>
#include <opencv2/imgcodecs.hpp>
#include <random>
#include <thread>

#include "crypto/bytes.h"
#include "server/server.h"
#include "terminal/site_levels.h"
#include "terminal/terminal.h"
#include "testing.h"

namespace anju {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

template <typename F>
bool Eventually(F done, std::chrono::milliseconds timeout) {
  const auto end = Clock::now() + timeout;
  while (Clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

// Residents scoring about 0.64 against each other (see tests/server/site_calibration_test.cpp).
std::string CrowdFeature(const std::vector<float>& common, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  std::vector<float> n(common.size()), f(common.size());
  float nn = 0, ff = 0;
  for (float& x : n) x = g(rng), nn += x * x;
  for (size_t i = 0; i < f.size(); ++i) {
    f[i] = 0.8f * common[i] + 0.6f * n[i] / std::sqrt(nn);
    ff += f[i] * f[i];
  }
  for (float& x : f) x /= std::sqrt(ff);
  return crypto::ToBase64(
      crypto::ByteView(reinterpret_cast<const uint8_t*>(f.data()), f.size() * sizeof(float)));
}

TEST(EndToEnd, SiteLevelsReachTheSitesTerminalAndSurviveARestart) {
  const fs::path root = testing::TempDir("e2e-site-levels");
  server::ServerOptions so;
  so.data_dir = root / "server";
  so.port = 0;
  so.retention_interval_s = 0;
  so.site_calibration.delay_ms = 100;
  auto srv = std::make_unique<server::Server>(so);
  if (srv->model_version().empty()) GTEST_SKIP() << "face models not installed";
  srv->Start();
  httplib::Client c(srv->url());
  c.set_ca_cert_path(srv->tls_cert_file().c_str());
  c.enable_server_certificate_verification(true);
  c.set_read_timeout(60, 0);
  const httplib::Headers h = {{"Authorization", "Bearer " + srv->admin_token()}};
  auto call = [&](const std::string& method, const std::string& path, const json& body) {
    const std::string b = body.is_null() ? "" : body.dump();
    auto r = method == "GET"     ? c.Get(path, h)
             : method == "PATCH" ? c.Patch(path, h, b, "application/json")
                                 : c.Post(path, h, b, "application/json");
    EXPECT_TRUE(r) << method << " " << path;
    if (!r) return json();
    EXPECT_LT(r->status, 300) << method << " " << path << ": " << r->body;
    return r->body.empty() ? json() : json::parse(r->body);
  };
  // The site and its 60 residents.
  int64_t parent = 0, site = 0, household = 0;
  for (const auto& [table, fk] :
       std::vector<std::pair<std::string, std::string>>{{"sites", ""},
                                                        {"buildings", "site_id"},
                                                        {"units", "building_id"},
                                                        {"rooms", "unit_id"},
                                                        {"households", "room_id"}}) {
    json body = {{"name", "e2e " + table}};
    if (!fk.empty()) body[fk] = parent;
    parent = call("POST", "/api/v1/" + table, body)["id"].get<int64_t>();
    if (table == "sites") site = parent;
    household = parent;
  }
  const auto common = testing::RandomUnitFeature(99);
  json persons = json::array();
  for (int i = 0; i < 60; ++i)
    persons.push_back({{"code", "E" + std::to_string(i)},
                       {"name", "住户"},
                       {"consent", {{"notice_version", "2026-01"}, {"purpose", "门禁通行"}}},
                       {"features", {CrowdFeature(common, 5000 + i)}}});
  call("POST", "/api/v1/persons/batch", {{"persons", persons}, {"accept_duplicates", true}});
  for (int i = 0; i < 60; ++i)
    call("POST", "/api/v1/households/" + std::to_string(household) + "/members",
         {{"person", "E" + std::to_string(i)}, {"role", "tenant"}});
  json levels;
  ASSERT_TRUE(Eventually(
      [&] {
        levels = call("GET", "/api/v1/sites/" + std::to_string(site) + "/thresholds", nullptr);
        return levels["source"] == "site" && levels["persons"] == 60 && levels["pending"] == false;
      },
      std::chrono::seconds(60)))
      << levels;
  const float site_normal = levels["levels"]["normal"]["threshold"];
  const float base_normal = levels["levels"]["normal"]["base"];
  ASSERT_GT(site_normal, base_normal) << levels;

  // A terminal placed at the site.
  const auto dev = srv->CreateDevice("e2e-gate", 1);
  call("PATCH", "/api/v1/devices/" + dev.device_id, {{"site_id", site}});
  const fs::path frames = root / "idle";
  fs::create_directories(frames);
  cv::imwrite((frames / "00001.png").string(), cv::Mat(120, 120, CV_8UC3, cv::Scalar(60, 60, 60)));
  terminal::TerminalConfig tc;
  tc.data_dir = root / "terminal";
  tc.camera = "dir:" + frames.string() + "?fps=10";
  tc.name = "e2e-gate";
  tc.server_url = srv->url();
  tc.enrolment_code = dev.enrolment_code;
  tc.server_ca_file = srv->tls_cert_file();
  tc.poll = std::chrono::milliseconds(200);
  tc.heartbeat = std::chrono::milliseconds(1000);
  float file_normal = 0;
  {
    terminal::Terminal t(tc);
    file_normal = t.pipeline().thresholds().at(match::SecurityLevel::kNormal).threshold;
    EXPECT_FLOAT_EQ(file_normal, base_normal);
    t.Start();
    ASSERT_TRUE(Eventually(
        [&] {
          return t.pipeline().thresholds().at(match::SecurityLevel::kNormal).threshold ==
                 site_normal;
        },
        std::chrono::seconds(30)))
        << "terminal normal level "
        << t.pipeline().thresholds().at(match::SecurityLevel::kNormal).threshold << ", site "
        << site_normal;
    for (const char* l : {"high", "low"})
      EXPECT_FLOAT_EQ(t.pipeline().thresholds().at(match::ParseLevel(l)).threshold,
                      std::max(levels["levels"][l]["threshold"].get<float>(),
                               levels["levels"][l]["base"].get<float>()));
    EXPECT_TRUE(fs::exists(terminal::SiteLevelsFile(tc.data_dir)));
  }
  // Restarted without the server: the site's levels still apply.
  srv.reset();
  tc.enrolment_code.clear();
  terminal::Terminal t(tc);
  EXPECT_FLOAT_EQ(t.pipeline().thresholds().at(match::SecurityLevel::kNormal).threshold,
                  site_normal);
  std::error_code ec;
  fs::remove_all(root, ec);
}

}  // namespace
}  // namespace anju
