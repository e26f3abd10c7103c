// A real anju-server on 127.0.0.1 (ephemeral port) in a temp data directory, an admin
// HTTP client and devices registered through the real protocol (protocol::DeviceClient).
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "crypto/sm2.h"
#include "protocol/device_client.h"
#include "server/server.h"

namespace anju::server::testing {

struct TestDevice {
  std::string id;
  crypto::Sm2Key key;
  std::optional<protocol::Registration> reg;
  std::unique_ptr<protocol::DeviceClient> client;
};

struct ApiResult {
  int status = 0;
  nlohmann::json body;
};

// A logged-in user's session token and user object.
struct Session {
  std::string token;
  nlohmann::json user;
};

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // (Re)starts the server on dir_ (a fresh port each time).
  void StartServer(const SecurityPolicy& security = {});
  // Options a fixture sets before every start (e.g. the per-site calibration's delay).
  virtual void Configure(ServerOptions&) {}
  void StopServer() { server_.reset(); }

  // Admin call with the token; BODY null = no body.
  ApiResult Api(const std::string& method, const std::string& path,
                const nlohmann::json& body = nullptr);
  // Raw request (any body, any headers), no token unless given.
  httplib::Result Raw(const std::string& method, const std::string& path, const std::string& body,
                      const httplib::Headers& headers = {},
                      const std::string& content_type = "application/json");
  httplib::Headers AdminHeaders() const;
  // An HTTPS client of the server that trusts its self-signed certificate.
  std::unique_ptr<httplib::Client> Client() const;
  // Device-protocol client options that trust the server's certificate.
  protocol::ClientOptions ClientOpts() const;

  // Call with a session or API token.
  ApiResult As(const std::string& token, const std::string& method, const std::string& path,
               const nlohmann::json& body = nullptr);
  // POST /api/v1/auth/login with the TOTP code when the user has one (tracked here).
  ApiResult Login(const std::string& username, const std::string& password);
  // Logs USERNAME in and completes the first-login steps (a new password; TOTP enrolment
  // for administrators); the returned session can use every permission of the user's roles.
  Session Ready(const std::string& username);
  // A bearer token holding ROLES: a fresh API token made by the security administrator for
  // integration roles, the built-in administrator's session for an administrator role.
  std::string RoleToken(const std::vector<std::string>& roles);
  // Admin call as the system administrator (the bootstrap token carries integration roles
  // only: operator and installer).
  ApiResult SysApi(const std::string& method, const std::string& path,
                   const nlohmann::json& body = nullptr);
  // A new user with ROLES (sysadmin creates, secadmin grants), logged in and ready.
  Session UserWithRoles(const std::string& username, const std::vector<std::string>& roles);
  // The next TOTP code for USERNAME that the server has not seen yet.
  std::string NextTotp(const std::string& username);

  std::map<std::string, std::string> passwords_;  // current password per username
  std::map<std::string, std::vector<uint8_t>> totp_secret_;
  std::map<std::string, int64_t> totp_step_;  // last step used per username
  std::map<std::string, Session> ready_;      // cached Ready() sessions

  TestDevice RegisterDevice(const std::string& name, int doors = 1);
  // A person with consent, in access group GROUP (created on first use) whose doors are
  // every door of DEVICE_ID.
  void CreatePerson(const std::string& code, const std::string& name);
  void GiveConsent(const std::string& code);
  int64_t CreateGroupOn(const std::string& device_id, const std::string& name = "all");
  void AddToGroup(int64_t group, const std::vector<std::string>& codes);
  // A random L2-normalised feature (seeded), imported through POST /persons/{code}/features.
  static std::vector<float> RandomFeature(uint32_t seed);
  static std::string FeatureBase64(const std::vector<float>& f);
  std::vector<float> ImportFeature(const std::string& code, uint32_t seed);

  std::filesystem::path dir_;
  std::unique_ptr<Server> server_;
};

// The bytes of a file (test photos).
std::string ReadFile(const std::filesystem::path& p);
// The photos of PERSON in an LFW-style tree (LFW/<person>/<images>), sorted.
std::vector<std::filesystem::path> PhotosOf(const std::filesystem::path& lfw,
                                            const std::string& person);
// {"image": base64 of BYTES}: the JSON upload body of the photo routes.
nlohmann::json ImageBody(const std::string& bytes);

// Loops GET /api/v1/device/gallery until more = false; returns the last answer's version
// and appends every change to CHANGES.
int64_t SyncAll(protocol::DeviceClient& client, int64_t since, int limit,
                std::vector<nlohmann::json>* changes, int max_batches = 1000);

}  // namespace anju::server::testing
