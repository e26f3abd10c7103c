// The device protocol as served (docs/device-protocol.md, R3.3.3.1): registration with a
// one-time code, SM2-signed requests (wrong key, unknown device, replayed nonce and clock
// skew refused), signed responses, the per-device gallery synced in batches and resumed,
// move-out / consent withdrawal producing removals with per-device confirmation times,
// commands, heartbeat and event upload.
#include <set>
#include <thread>

#include "crypto/bytes.h"
#include "protocol/api_error.h"
#include "protocol/device_auth.h"
#include "protocol/feature_codec.h"
#include "server_test_support.h"
#include "testing.h"

namespace anju::server::testing {
namespace {

using nlohmann::json;

TEST_F(ServerTest, RegistrationCodeWorksOnceOnly) {
  const auto created = Api("POST", "/api/v1/devices", {{"name", "3号楼1单元"}, {"doors", 2}});
  ASSERT_EQ(created.status, 201);
  const std::string code = created.body["enrolment_code"];
  const auto key = crypto::Sm2Key::Generate();
  protocol::RegisterRequest req;
  req.enrolment_code = code;
  req.name = "3号楼1单元";
  req.model_version = server_->model_version();
  req.doors = 2;
  const auto reg = protocol::DeviceClient::Register(server_->url(), key, req, ClientOpts());
  EXPECT_EQ(reg.device_id, created.body["device_id"]);
  EXPECT_EQ(reg.server_public_key.PublicPem().empty(), false);
  // Reuse of the code, an unknown code: 403 enrolment_code_invalid.
  for (const std::string& c : {code, std::string("AAAA-BBBB-CCCC")}) {
    req.enrolment_code = c;
    try {
      protocol::DeviceClient::Register(server_->url(), crypto::Sm2Key::Generate(), req,
                                       ClientOpts());
      ADD_FAILURE() << "registration with " << c << " accepted";
    } catch (const protocol::ApiError& e) {
      EXPECT_EQ(e.status(), 403);
      EXPECT_EQ(e.code(), "enrolment_code_invalid");
    }
  }
  // A model version the server does not use: 409.
  const auto other = Api("POST", "/api/v1/devices", {{"name", "x"}});
  req.enrolment_code = other.body["enrolment_code"];
  req.model_version = "some-other-model/1";
  try {
    protocol::DeviceClient::Register(server_->url(), crypto::Sm2Key::Generate(), req, ClientOpts());
    ADD_FAILURE() << "foreign model version accepted";
  } catch (const protocol::ApiError& e) {
    EXPECT_EQ(e.status(), 409);
  }
  // Health is visible to the admin.
  const auto dev = Api("GET", "/api/v1/devices/" + reg.device_id);
  EXPECT_EQ(dev.body["status"], "active");
  EXPECT_EQ(dev.body["doors"], 2);
}

TEST_F(ServerTest, SignedRequestsAreCheckedAndAnswersSigned) {
  auto dev = RegisterDevice("gate");
  // A good call.
  auto ok = dev.client->Call("GET", "/api/v1/device/commands");
  EXPECT_EQ(ok.status, 200);

  auto raw = [&](const protocol::SignedHeaders& h, const std::string& path) {
    auto c = Client();
    auto res = c->Get(path, {{protocol::kHeaderDevice, h.device},
                             {protocol::kHeaderTime, h.time},
                             {protocol::kHeaderNonce, h.nonce},
                             {protocol::kHeaderSignature, h.signature}});
    EXPECT_TRUE(res);
    // Errors are signed by the server too.
    EXPECT_TRUE(protocol::VerifyResponse(dev.reg->server_public_key, h.device, h.nonce, res->status,
                                         res->body,
                                         res->get_header_value(protocol::kHeaderSignature)));
    const json j = json::parse(res->body);
    return std::pair{res->status,
                     j.contains("error") ? j["error"]["code"].get<std::string>() : std::string()};
  };
  const std::string path = "/api/v1/device/commands";
  // Signed with another key.
  auto h = protocol::SignRequest(crypto::Sm2Key::Generate(), dev.id, "GET", path, "");
  EXPECT_EQ(raw(h, path), (std::pair{401, std::string("unauthenticated")}));
  // Signed for another path than the one requested.
  h = protocol::SignRequest(dev.key, dev.id, "GET", "/api/v1/device/gallery?since=0", "");
  EXPECT_EQ(raw(h, path).first, 401);
  // Unknown device.
  h = protocol::SignRequest(dev.key, "dev-00000000", "GET", path, "");
  EXPECT_EQ(raw(h, path), (std::pair{401, std::string("unauthenticated")}));
  // Clock 10 minutes off.
  h = protocol::SignRequest(dev.key, dev.id, "GET", path, "", protocol::NowMs() - 10 * 60 * 1000);
  EXPECT_EQ(raw(h, path), (std::pair{401, std::string("clock_skew")}));
  // Replay: the first use passes, the same nonce again is refused.
  h = protocol::SignRequest(dev.key, dev.id, "GET", path, "");
  EXPECT_EQ(raw(h, path).first, 200);
  EXPECT_EQ(raw(h, path), (std::pair{401, std::string("replayed")}));
  // No headers at all.
  EXPECT_EQ(Client()->Get(path)->status, 401);
  // A revoked device is refused.
  ASSERT_EQ(Api("POST", "/api/v1/devices/" + dev.id + "/revoke").status, 200);
  EXPECT_EQ(dev.client->Call("GET", path).status, 401);
}

TEST_F(ServerTest, GallerySyncInBatchesIsResumableAndSealed) {
  auto dev = RegisterDevice("gate");
  auto other = RegisterDevice("other building");
  const int64_t group = CreateGroupOn(dev.id);
  // 600 people through the bulk endpoint, in two requests, straight into the group.
  constexpr int kPeople = 600;
  std::vector<std::string> codes;
  std::map<std::string, std::vector<float>> features;
  for (int half = 0; half < 2; ++half) {
    json persons = json::array();
    for (int i = half * kPeople / 2; i < (half + 1) * kPeople / 2; ++i) {
      const std::string code = anju::testing::Name("P", 1000 + i);
      features[code] = RandomFeature(uint32_t(i + 1));
      persons.push_back({{"code", code},
                         {"name", "住户" + std::to_string(i)},
                         {"consent", {{"notice_version", "2026-01"}, {"purpose", "门禁"}}},
                         {"features", {FeatureBase64(features[code])}},
                         {"access_groups", {group}}});
      codes.push_back(code);
    }
    if (half == 1) {  // a bad person is skipped, the others stay
      persons.push_back({{"code", "BAD"}, {"name", "x"}, {"features", {"AAAA"}}});
      persons.push_back({{"code", "DUP"},
                         {"name", "x"},
                         {"consent", {{"notice_version", "1"}, {"purpose", "p"}}},
                         {"features", {FeatureBase64(features[codes[0]])}}});
    }
    const auto r = Api("POST", "/api/v1/persons/batch", {{"persons", persons}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body["created"], kPeople / 2);
    if (half == 1) {
      EXPECT_EQ(r.body["results"][kPeople / 2]["error"]["code"], "consent_required");
      EXPECT_EQ(r.body["results"][kPeople / 2 + 1]["error"]["code"], "duplicate_face");
    }
  }
  EXPECT_EQ(Api("GET", "/api/v1/persons/BAD").status, 404);
  // Batches of 25, interrupted after two; a new client resumes from the stored version.
  std::vector<json> changes;
  int64_t version = SyncAll(*dev.client, 0, 25, &changes, 2);
  EXPECT_EQ(changes.size(), 50u);
  protocol::DeviceClient resumed(server_->url(), dev.id, dev.key, dev.reg->server_public_key,
                                 ClientOpts());
  version = SyncAll(resumed, version, 25, &changes);
  std::set<std::string> seen;
  for (const auto& c : changes) {
    ASSERT_EQ(c["op"], "upsert");
    const std::string p = c["person"];
    seen.insert(p);
    ASSERT_EQ(c["templates"].size(), 1u);
    // Sealed for this device and this person only.
    const auto f = protocol::OpenFeature(dev.reg->data_key, p,
                                         c["templates"][0]["feature"].get<std::string>());
    float dot = 0;
    for (size_t k = 0; k < f.size(); ++k) dot += f[k] * features[p][k];
    EXPECT_GT(dot, 0.99f);  // int8 transport code
    if (p == codes[0]) {
      EXPECT_EQ(anju::testing::CodeOf([&] {
                  protocol::OpenFeature(other.reg->data_key, p,
                                        c["templates"][0]["feature"].get<std::string>());
                }),
                ErrorCode::kCrypto);
    }
    // Masked, never the name: "住户7" → "住*7".
    EXPECT_EQ(c["display_name"].get<std::string>().find("住*"), 0u);
    EXPECT_EQ(c["display_name"].get<std::string>().find("户"), std::string::npos);
    EXPECT_TRUE(c["rules"]["windows"].empty());
  }
  EXPECT_EQ(seen.size(), size_t(kPeople));
  // Up to date: nothing more; the other device (no doors in the group) got nothing.
  const json again =
      dev.client->CallJson("GET", "/api/v1/device/gallery?since=" + std::to_string(version));
  EXPECT_TRUE(again["changes"].empty());
  EXPECT_FALSE(again["more"].get<bool>());
  std::vector<json> none;
  SyncAll(*other.client, 0, 100, &none);
  EXPECT_TRUE(none.empty());

  // A rules change reaches the device as upserts with the new windows.
  ASSERT_EQ(
      Api("PATCH", "/api/v1/access-groups/" + std::to_string(group),
          {{"windows",
            json::array({{{"days", {1, 2, 3, 4, 5}}, {"start", "06:00"}, {"end", "23:30"}}})}})
          .status,
      200);
  std::vector<json> updated;
  SyncAll(*dev.client, version, 500, &updated);
  ASSERT_EQ(updated.size(), size_t(kPeople));
  EXPECT_EQ(updated[0]["rules"]["windows"][0]["start"], "06:00");
  // Bad windows are refused.
  EXPECT_EQ(Api("PATCH", "/api/v1/access-groups/" + std::to_string(group),
                {{"windows", json::array({{{"days", {1}}, {"start", "25:00"}, {"end", "23:30"}}})}})
                .status,
            400);
  // limit above 500 is refused.
  EXPECT_EQ(dev.client->Call("GET", "/api/v1/device/gallery?since=0&limit=501").status, 400);
}

TEST_F(ServerTest, MoveOutRemovesFromDevicesWithConfirmationTimes) {
  auto a = RegisterDevice("east gate");
  auto b = RegisterDevice("west gate");
  const int64_t ga = CreateGroupOn(a.id, "east");
  const int64_t gb = CreateGroupOn(b.id, "west");
  for (const char* code : {"P1", "P2"}) {
    CreatePerson(code, "住户");
    GiveConsent(code);
    ImportFeature(code, code[1]);
  }
  AddToGroup(ga, {"P1", "P2"});
  AddToGroup(gb, {"P1"});
  std::vector<json> ca, cb;
  const int64_t va = SyncAll(*a.client, 0, 100, &ca);
  const int64_t vb = SyncAll(*b.client, 0, 100, &cb);
  ASSERT_EQ(ca.size(), 2u);
  ASSERT_EQ(cb.size(), 1u);

  const auto moved = Api("POST", "/api/v1/persons/P1/move-out", {{"note", "合同到期"}});
  ASSERT_EQ(moved.status, 200) << moved.body;
  auto removals = Api("GET", "/api/v1/persons/P1/removals");
  ASSERT_EQ(removals.body["removals"].size(), 2u);
  EXPECT_FALSE(removals.body["all_confirmed"].get<bool>());
  for (const auto& r : removals.body["removals"]) {
    EXPECT_EQ(r["reason"], "moved_out");
    EXPECT_TRUE(r["confirmed_ms"].is_null());
  }
  // Device A fetches the removal, then asks from the new version: confirmed.
  std::vector<json> ra;
  const int64_t va2 = SyncAll(*a.client, va, 100, &ra);
  ASSERT_EQ(ra.size(), 1u);
  EXPECT_EQ(ra[0]["op"], "remove");
  EXPECT_EQ(ra[0]["person"], "P1");
  EXPECT_EQ(ra[0]["reason"], "moved_out");
  a.client->CallJson("GET", "/api/v1/device/gallery?since=" + std::to_string(va2));
  removals = Api("GET", "/api/v1/persons/P1/removals");
  int confirmed = 0;
  for (const auto& r : removals.body["removals"]) {
    if (r["device_id"] == a.id) {
      EXPECT_FALSE(r["confirmed_ms"].is_null());
      ++confirmed;
    }
    if (r["device_id"] == b.id) {
      EXPECT_TRUE(r["confirmed_ms"].is_null());
    }
  }
  EXPECT_EQ(confirmed, 1);
  std::vector<json> rb;
  const int64_t vb2 = SyncAll(*b.client, vb, 100, &rb);
  b.client->CallJson("GET", "/api/v1/device/gallery?since=" + std::to_string(vb2));
  EXPECT_TRUE(Api("GET", "/api/v1/persons/P1/removals").body["all_confirmed"].get<bool>());
  // The archive keeps the person (history) but no biometrics.
  const auto p = Api("GET", "/api/v1/persons/P1");
  EXPECT_EQ(p.body["status"], "moved_out");
  EXPECT_TRUE(p.body["photos"].empty());
  // A full resync no longer includes P1.
  std::vector<json> full;
  SyncAll(*a.client, 0, 100, &full);
  ASSERT_EQ(full.size(), 1u);
  EXPECT_EQ(full[0]["person"], "P2");
  // Consent withdrawal does the same for P2.
  ASSERT_EQ(Api("POST", "/api/v1/persons/P2/consents/withdraw", json::object()).status, 200);
  std::vector<json> rw;
  SyncAll(*a.client, va2, 100, &rw);
  ASSERT_EQ(rw.size(), 1u);
  EXPECT_EQ(rw[0]["reason"], "consent_withdrawn");
  // Enrolment without consent is refused now (R1.0.3.1).
  std::vector<float> unit(512, 0.f);
  unit[0] = 1.f;
  const auto refused = Api(
      "POST", "/api/v1/persons/P2/features",
      {{"feature", crypto::ToBase64(crypto::ByteView(reinterpret_cast<const uint8_t*>(unit.data()),
                                                     unit.size() * sizeof(float)))},
       {"model_version", server_->model_version()}});
  EXPECT_EQ(refused.status, 409);
  EXPECT_EQ(refused.body["error"]["code"], "consent_required");
}

TEST_F(ServerTest, CommandsHeartbeatAndHealth) {
  auto dev = RegisterDevice("gate", 2);
  ASSERT_EQ(Api("POST", "/api/v1/devices/" + dev.id + "/commands",
                {{"type", "open_door"}, {"door", 1}, {"duration_ms", 5000}})
                .status,
            201);
  ASSERT_EQ(Api("POST", "/api/v1/devices/" + dev.id + "/commands",
                {{"type", "notice"}, {"text_zh", "停水通知"}, {"text_en", "water off"}})
                .status,
            201);
  EXPECT_EQ(Api("POST", "/api/v1/devices/" + dev.id + "/commands", {{"type", "reboot"}}).status,
            400);
  json cmds = dev.client->CallJson("GET", "/api/v1/device/commands");
  ASSERT_EQ(cmds["commands"].size(), 2u);
  EXPECT_EQ(cmds["commands"][0]["type"], "open_door");
  EXPECT_EQ(cmds["commands"][0]["door"], 1);
  const json hb = {{"software_version", "0.2.0"}, {"gallery_version", 0},  {"outbox_count", 3},
                   {"outbox_bytes", 120000},      {"camera", "connected"}, {"uptime_s", 60}};
  const json hb_answer = dev.client->CallJson("POST", "/api/v1/device/heartbeat", &hb);
  EXPECT_EQ(hb_answer["commands_pending"], 2);
  const json ack = {{"ids", {cmds["commands"][0]["id"]}}};
  EXPECT_EQ(dev.client->CallJson("POST", "/api/v1/device/commands/ack", &ack)["acked"], 1);
  EXPECT_EQ(dev.client->CallJson("POST", "/api/v1/device/commands/ack", &ack)["acked"], 0);
  cmds = dev.client->CallJson("GET", "/api/v1/device/commands");
  ASSERT_EQ(cmds["commands"].size(), 1u);
  EXPECT_EQ(cmds["commands"][0]["type"], "notice");
  const auto health = Api("GET", "/api/v1/devices");
  ASSERT_EQ(health.body["items"].size(), 1u);
  const auto& h = health.body["items"][0];
  EXPECT_EQ(h["software_version"], "0.2.0");
  EXPECT_EQ(h["heartbeat"]["outbox_count"], 3);
  EXPECT_TRUE(h["online"].get<bool>());
  EXPECT_EQ(h["commands_pending"], 1);
  // Unknown heartbeat fields are refused (signed 400).
  const json bad = {{"outbox_cnt", 1}};
  EXPECT_EQ(dev.client->Call("POST", "/api/v1/device/heartbeat", bad.dump()).status, 400);
}

TEST_F(ServerTest, EventUploadIsIdempotentAndQueryable) {
  auto dev = RegisterDevice("gate");
  const int64_t now = protocol::NowMs();
  json events = json::array();
  for (int i = 0; i < 20; ++i)
    events.push_back({{"id", "00000000-0000-4000-8000-0000000000" + std::to_string(10 + i)},
                      {"kind", "access"},
                      {"created_ms", now - 1000 + i},
                      {"payload",
                       {{"time_ms", now - 1000 + i},
                        {"door", 0},
                        {"decision", i % 5 ? "open" : "stranger"},
                        {"reason", "matched"},
                        {"person", i % 5 ? json("P1") : json(nullptr)},
                        {"score", 0.8}}}});
  for (int i = 0; i < 20; i += 5)  // a stranger's alarm travels as its own record
    events.push_back({{"id", "00000000-0000-4000-8000-0000000000" + std::to_string(50 + i)},
                      {"kind", "alarm"},
                      {"created_ms", now - 1000 + i},
                      {"payload",
                       {{"time_ms", now - 1000 + i},
                        {"door", 0},
                        {"alarm_type", "stranger"},
                        {"severity", "minor"}}}});
  const json body = {{"events", events}};
  const json first = dev.client->CallJson("POST", "/api/v1/device/events", &body);
  EXPECT_EQ(first["stored"].size(), 24u);
  const json second = dev.client->CallJson("POST", "/api/v1/device/events", &body);
  EXPECT_EQ(second["stored"].size(), 0u);
  EXPECT_EQ(second["duplicates"].size(), 24u);
  const auto page = Api("GET", "/api/v1/events?limit=5&decision=open");
  ASSERT_EQ(page.status, 200) << page.body;
  EXPECT_EQ(page.body["total"], 16);
  EXPECT_EQ(page.body["items"].size(), 5u);
  // Bulk CSV goes through an approved export (security_test); no direct download.
  EXPECT_EQ(Raw("GET", "/api/v1/events.csv?kind=access", "", AdminHeaders())->status, 404);
  EXPECT_EQ(Api("GET", "/api/v1/events?limit=5000").status, 400);
  const json unknown = {{"events", json::array()}, {"extra", 1}};
  EXPECT_EQ(dev.client->Call("POST", "/api/v1/device/events", unknown.dump()).status, 400);

  // Stranger alarms (R3.2.1.1): new → acknowledged → closed, who and when.
  const auto alarms = Api("GET", "/api/v1/alarms?state=new");
  ASSERT_EQ(alarms.status, 200) << alarms.body;
  ASSERT_EQ(alarms.body["total"], 4);
  const std::string alarm = std::to_string(alarms.body["items"][0]["id"].get<int64_t>());
  EXPECT_EQ(Api("POST", "/api/v1/alarms/" + alarm + "/state", {{"state", "closed"}}).status, 409);
  const auto ack = Api("POST", "/api/v1/alarms/" + alarm + "/state",
                       {{"state", "acknowledged"}, {"note", "保安已到场"}});
  ASSERT_EQ(ack.status, 200) << ack.body;
  EXPECT_EQ(ack.body["acknowledged_by"], "token:bootstrap");
  EXPECT_EQ(Api("POST", "/api/v1/alarms/" + alarm + "/state", {{"state", "closed"}}).status, 200);
  EXPECT_EQ(Api("GET", "/api/v1/alarms?state=new").body["total"], 3);
  EXPECT_EQ(Api("GET", "/api/v1/alarms?state=open").status, 400);
  EXPECT_EQ(Api("POST", "/api/v1/alarms/999/state", {{"state", "closed"}}).status, 404);
  // Retention on demand answers its report (nothing is old enough here).
  const auto ret = SysApi("POST", "/api/v1/admin/retention/run");
  ASSERT_EQ(ret.status, 200) << ret.body;
  EXPECT_EQ(ret.body["events_deleted"], 0);
  EXPECT_EQ(Api("GET", "/api/v1/events").body["total"], 24);
}

}  // namespace
}  // namespace anju::server::testing
