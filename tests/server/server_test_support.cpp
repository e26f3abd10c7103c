#include "server_test_support.h"

#include <random>

#include "crypto/bytes.h"
#include "testing.h"

namespace anju::server::testing {

namespace fs = std::filesystem;
using nlohmann::json;

void ServerTest::SetUp() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  dir_ = anju::testing::TempDir(std::string("server-") + info->name());
  StartServer();
}

void ServerTest::TearDown() {
  server_.reset();
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

void ServerTest::StartServer() {
  server_.reset();
  ServerOptions o;
  o.data_dir = dir_;
  o.port = 0;
  o.retention_interval_s = 0;  // tests run retention explicitly
  server_ = std::make_unique<Server>(o);
  server_->Start();
}

httplib::Headers ServerTest::AdminHeaders() const {
  return {{"Authorization", "Bearer " + server_->admin_token()}};
}

httplib::Result ServerTest::Raw(const std::string& method, const std::string& path,
                                const std::string& body, const httplib::Headers& headers,
                                const std::string& content_type) {
  httplib::Client c(server_->url());
  c.set_read_timeout(60, 0);
  if (method == "GET") return c.Get(path, headers);
  if (method == "POST") return c.Post(path, headers, body, content_type);
  if (method == "PUT") return c.Put(path, headers, body, content_type);
  if (method == "PATCH") return c.Patch(path, headers, body, content_type);
  return c.Delete(path, headers, body, content_type);
}

ApiResult ServerTest::Api(const std::string& method, const std::string& path, const json& body) {
  auto res = Raw(method, path, body.is_null() ? std::string() : body.dump(), AdminHeaders());
  if (!res) {
    ADD_FAILURE() << method << " " << path << ": " << httplib::to_string(res.error());
    return {};
  }
  ApiResult r{res->status, nullptr};
  if (!res->body.empty() && res->get_header_value("Content-Type").find("json") != std::string::npos)
    r.body = json::parse(res->body);
  return r;
}

TestDevice ServerTest::RegisterDevice(const std::string& name, int doors) {
  const auto created = Api("POST", "/api/v1/devices", {{"name", name}, {"doors", doors}});
  EXPECT_EQ(created.status, 201) << created.body;
  TestDevice d{"", crypto::Sm2Key::Generate(), std::nullopt, nullptr};
  protocol::RegisterRequest req;
  req.enrolment_code = created.body["enrolment_code"];
  req.name = name;
  req.software_version = "test";
  req.model_version = server_->model_version();
  req.doors = doors;
  d.reg.emplace(protocol::DeviceClient::Register(server_->url(), d.key, req));
  d.id = d.reg->device_id;
  EXPECT_EQ(d.id, created.body["device_id"]);
  d.client = std::make_unique<protocol::DeviceClient>(server_->url(), d.id, d.key,
                                                      d.reg->server_public_key);
  return d;
}

void ServerTest::CreatePerson(const std::string& code, const std::string& name) {
  const auto r = Api("POST", "/api/v1/persons", {{"code", code}, {"name", name}});
  ASSERT_EQ(r.status, 201) << r.body;
}

void ServerTest::GiveConsent(const std::string& code) {
  const auto r = Api("POST", "/api/v1/persons/" + code + "/consents",
                     {{"notice_version", "2026-01"},
                      {"purpose", "门禁通行 / building access"},
                      {"evidence_file", "scan-" + code + ".pdf"}});
  ASSERT_EQ(r.status, 201) << r.body;
}

int64_t ServerTest::CreateGroupOn(const std::string& device_id, const std::string& name) {
  const auto g = Api("POST", "/api/v1/access-groups", {{"name", name}});
  EXPECT_EQ(g.status, 201) << g.body;
  const int64_t id = g.body["id"];
  const auto d = Api("PUT", "/api/v1/access-groups/" + std::to_string(id) + "/doors",
                     {{"doors", json::array({{{"device_id", device_id}, {"door", 0}}})}});
  EXPECT_EQ(d.status, 200) << d.body;
  return id;
}

void ServerTest::AddToGroup(int64_t group, const std::vector<std::string>& codes) {
  const auto r =
      Api("POST", "/api/v1/access-groups/" + std::to_string(group) + "/members", {{"add", codes}});
  ASSERT_EQ(r.status, 200) << r.body;
}

std::vector<float> ServerTest::RandomFeature(uint32_t seed) {
  return anju::testing::RandomUnitFeature(seed);
}

std::string ServerTest::FeatureBase64(const std::vector<float>& f) {
  return crypto::ToBase64(
      crypto::ByteView(reinterpret_cast<const uint8_t*>(f.data()), f.size() * sizeof(float)));
}

std::vector<float> ServerTest::ImportFeature(const std::string& code, uint32_t seed) {
  const auto f = RandomFeature(seed);
  const auto r = Api("POST", "/api/v1/persons/" + code + "/features",
                     {{"feature", FeatureBase64(f)}, {"model_version", server_->model_version()}});
  EXPECT_EQ(r.status, 201) << r.body;
  return f;
}

int64_t SyncAll(protocol::DeviceClient& client, int64_t since, int limit,
                std::vector<json>* changes, int max_batches) {
  for (int i = 0; i < max_batches; ++i) {
    const json page =
        client.CallJson("GET", "/api/v1/device/gallery?since=" + std::to_string(since) +
                                   "&limit=" + std::to_string(limit));
    for (const auto& c : page["changes"]) changes->push_back(c);
    since = page["version"];
    if (!page["more"].get<bool>()) break;
  }
  return since;
}

}  // namespace anju::server::testing
