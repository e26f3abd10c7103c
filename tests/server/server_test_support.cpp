#include "server_test_support.h"

#include <random>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <thread>

#include "crypto/bytes.h"
#include "crypto/totp.h"
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

void ServerTest::StartServer(const SecurityPolicy& security) {
  server_.reset();
  ServerOptions o;
  o.security = security;
  o.data_dir = dir_;
  o.port = 0;
  o.retention_interval_s = 0;  // tests run retention explicitly
  Configure(o);
  server_ = std::make_unique<Server>(o);
  server_->Start();
  for (const auto& [user, password] : server_->initial_passwords()) passwords_[user] = password;
  ready_.clear();
}

ApiResult ServerTest::As(const std::string& token, const std::string& method,
                         const std::string& path, const json& body) {
  auto res = Raw(method, path, body.is_null() ? std::string() : body.dump(),
                 {{"Authorization", "Bearer " + token}});
  if (!res) {
    ADD_FAILURE() << method << " " << path << ": " << httplib::to_string(res.error());
    return {};
  }
  ApiResult r{res->status, nullptr};
  if (!res->body.empty() && res->get_header_value("Content-Type").find("json") != std::string::npos)
    r.body = json::parse(res->body);
  return r;
}

std::string ServerTest::NextTotp(const std::string& username) {
  const auto& secret = totp_secret_.at(username);
  int64_t now = int64_t(std::time(nullptr)) / 30;
  int64_t step = std::max(now, totp_step_[username] + 1);
  // The server accepts one step ahead; beyond that, wait for the clock.
  while (step > now + 1) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    now = int64_t(std::time(nullptr)) / 30;
  }
  totp_step_[username] = step;
  return crypto::Hotp(secret, uint64_t(step));
}

ApiResult ServerTest::Login(const std::string& username, const std::string& password) {
  json body = {{"username", username}, {"password", password}};
  if (totp_secret_.count(username)) body["totp"] = NextTotp(username);
  auto res = Raw("POST", "/api/v1/auth/login", body.dump());
  if (!res) return {};
  return {res->status, json::parse(res->body)};
}

Session ServerTest::Ready(const std::string& username) {
  if (auto it = ready_.find(username); it != ready_.end()) return it->second;
  auto login = Login(username, passwords_.at(username));
  EXPECT_EQ(login.status, 200) << username << ": " << login.body;
  Session s{login.body.value("token", ""), login.body["user"]};
  if (s.user.value("must_change_password", false)) {
    static int n = 0;
    const std::string fresh = "Nw-Pa55word-" + std::to_string(++n);
    const auto changed = As(s.token, "POST", "/api/v1/auth/password",
                            {{"old_password", passwords_[username]}, {"new_password", fresh}});
    EXPECT_EQ(changed.status, 200) << changed.body;
    passwords_[username] = fresh;
  }
  if (s.user.value("totp_required", false) && !s.user.value("totp_enabled", false)) {
    const auto setup = As(s.token, "POST", "/api/v1/auth/totp/setup");
    EXPECT_EQ(setup.status, 200) << setup.body;
    totp_secret_[username] = crypto::FromBase32(setup.body["secret"].get<std::string>());
    totp_step_[username] = 0;
    const auto ok =
        As(s.token, "POST", "/api/v1/auth/totp/confirm", {{"code", NextTotp(username)}});
    EXPECT_EQ(ok.status, 200) << ok.body;
  }
  const auto me = As(s.token, "GET", "/api/v1/auth/me");
  EXPECT_EQ(me.status, 200);
  s.user = me.body;
  ready_[username] = s;
  return s;
}

std::string ServerTest::RoleToken(const std::vector<std::string>& roles) {
  // API tokens carry integration roles only (R4.2.1.1); an administrator's role is held by
  // the built-in administrator's session instead.
  for (const auto& [role, user] : std::vector<std::pair<std::string, std::string>>{
           {"sysadmin", "admin"}, {"secadmin", "secadmin"}, {"auditadmin", "auditadmin"}})
    if (std::find(roles.begin(), roles.end(), role) != roles.end()) {
      EXPECT_EQ(roles.size(), 1u) << "an administrator role is held alone";
      return Ready(user).token;
    }
  static int n = 0;
  const auto sec = Ready("secadmin");
  const auto made = As(sec.token, "POST", "/api/v1/tokens",
                       {{"name", "test-" + std::to_string(++n)}, {"roles", roles}});
  EXPECT_EQ(made.status, 201) << made.body;
  return made.body.value("token", "");
}

ApiResult ServerTest::SysApi(const std::string& method, const std::string& path,
                             const json& body) {
  return As(Ready("admin").token, method, path, body);
}

Session ServerTest::UserWithRoles(const std::string& username,
                                  const std::vector<std::string>& roles) {
  const auto sys = Ready("admin");
  static int n = 0;
  const std::string pw = "Fi-1stPass-" + std::to_string(++n);
  const auto made = As(sys.token, "POST", "/api/v1/users",
                       {{"username", username}, {"display_name", username}, {"password", pw}});
  EXPECT_EQ(made.status, 201) << made.body;
  passwords_[username] = pw;
  const auto sec = Ready("secadmin");
  const auto granted =
      As(sec.token, "PUT", "/api/v1/users/" + username + "/roles", {{"roles", roles}});
  if (granted.status == 202) {
    // Granting secadmin waits for a second administrator.
    const auto id = granted.body["request"]["id"].get<int64_t>();
    const auto cosigned = As(Ready("auditadmin").token, "POST",
                             "/api/v1/admin-changes/" + std::to_string(id) + "/approve", json::object());
    EXPECT_EQ(cosigned.status, 200) << cosigned.body;
  } else {
    EXPECT_EQ(granted.status, 200) << granted.body;
  }
  return Ready(username);
}

std::unique_ptr<httplib::Client> ServerTest::Client() const {
  auto c = std::make_unique<httplib::Client>(server_->url());
  c->set_ca_cert_path(server_->tls_cert_file().c_str());
  c->enable_server_certificate_verification(true);
  c->set_read_timeout(60, 0);
  return c;
}

protocol::ClientOptions ServerTest::ClientOpts() const {
  protocol::ClientOptions o;
  o.ca_file = server_->tls_cert_file().string();
  return o;
}

httplib::Headers ServerTest::AdminHeaders() const {
  return {{"Authorization", "Bearer " + server_->admin_token()}};
}

httplib::Result ServerTest::Raw(const std::string& method, const std::string& path,
                                const std::string& body, const httplib::Headers& headers,
                                const std::string& content_type) {
  auto c = Client();
  if (method == "GET") return c->Get(path, headers);
  if (method == "POST") return c->Post(path, headers, body, content_type);
  if (method == "PUT") return c->Put(path, headers, body, content_type);
  if (method == "PATCH") return c->Patch(path, headers, body, content_type);
  return c->Delete(path, headers, body, content_type);
}

ApiResult ServerTest::Api(const std::string& method, const std::string& path, const json& body) {
  return As(server_->admin_token(), method, path, body);
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
  d.reg.emplace(protocol::DeviceClient::Register(server_->url(), d.key, req, ClientOpts()));
  d.id = d.reg->device_id;
  EXPECT_EQ(d.id, created.body["device_id"]);
  d.client = std::make_unique<protocol::DeviceClient>(server_->url(), d.id, d.key,
                                                      d.reg->server_public_key, ClientOpts());
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

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

std::vector<std::filesystem::path> PhotosOf(const std::filesystem::path& lfw,
                                            const std::string& person) {
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::directory_iterator(lfw / person)) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

nlohmann::json ImageBody(const std::string& bytes) {
  return {{"image", crypto::ToBase64(crypto::AsBytes(bytes))}};
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
