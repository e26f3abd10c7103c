// GA/T 1400 objects and HTTP Digest (src/protocol/viid.h): round trips, the RFC 2617
// example, and malformed input refused with Error(kInvalidArgument), never a crash.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "core/error.h"
#include "crypto/bytes.h"
#include "protocol/viid.h"
#include "testing.h"

namespace anju::protocol::viid {
namespace {

using nlohmann::json;
using testing::CodeOf;

std::vector<uint8_t> FakeJpeg(size_t n = 64) {
  std::vector<uint8_t> b(n, 0x42);
  b[0] = 0xFF, b[1] = 0xD8, b[2] = 0xFF, b[3] = 0xE0;
  return b;
}

FaceObject SampleFace(const std::string& id) {
  FaceObject f;
  f.face_id = id;
  f.device_id = "34020000001190000001";
  f.left_top_x = 10, f.left_top_y = 20, f.right_btm_x = 110, f.right_btm_y = 140;
  f.face_appear_time = "20261125120000";
  SubImageInfo crop;
  crop.type = kImageTypeFace;
  crop.shot_time = "20261125120001";
  crop.width = 112, crop.height = 112;
  crop.data = FakeJpeg();
  SubImageInfo scene = crop;
  scene.type = kImageTypeScene;
  scene.data = FakeJpeg(200);
  f.images = {crop, scene};
  return f;
}

TEST(ViidTime, FormatAndParseInBeijingTime) {
  // 2026-11-25 00:00:00 UTC is 08:00 in Beijing.
  const int64_t ms = 1795564800000;
  EXPECT_EQ(FormatTime(ms), "20261125080000");
  EXPECT_EQ(ParseTime("20261125080000"), ms);
  EXPECT_EQ(ParseTime("20261125080000123"), ms + 123);
  EXPECT_EQ(FormatTime(ms, 0), "20261125000000");
  EXPECT_EQ(ParseTime("20240229235959", 0), 1709251199000);
  for (const char* bad : {"", "2026112508000", "2026-11-25 08:00", "20261325080000",
                          "20230229120000", "20261125250000", "2026112508000x"})
    EXPECT_EQ(CodeOf([&] { ParseTime(bad); }), ErrorCode::kInvalidArgument) << bad;
}

TEST(ViidObjects, FaceListRoundTrips) {
  FaceList list;
  list.faces = {SampleFace("F1"), SampleFace("F2")};
  const std::string text = ToJson(list).dump();
  const ParsedFaceList p = ParseFaceList(text);
  ASSERT_TRUE(p.errors.empty());
  ASSERT_EQ(p.list.faces.size(), 2u);
  const FaceObject& f = p.list.faces[1];
  EXPECT_EQ(f.face_id, "F2");
  EXPECT_EQ(f.device_id, "34020000001190000001");
  EXPECT_EQ(f.right_btm_y, 140);
  ASSERT_NE(f.Image(kImageTypeFace), nullptr);
  EXPECT_EQ(f.Image(kImageTypeFace)->data, FakeJpeg());
  EXPECT_EQ(f.Image(kImageTypeScene)->data.size(), 200u);
  EXPECT_EQ(f.Image(kImageTypeFace)->device_id, f.device_id);  // inherited
}

TEST(ViidObjects, VendorVariantsAreAccepted) {
  // Numbers as strings, one image as an object, unknown attributes, wrapped base64.
  std::string b64 = crypto::ToBase64(FakeJpeg(90));
  b64.insert(40, "\r\n");
  const json j = {
      {"FaceListObject",
       {{"FaceObject",
         {{{"FaceID", "340200000011900000010220261125120000000010600001"},
           {"DeviceID", "34020000001190000001"},
           {"InfoKind", "1"},
           {"LeftTopX", "5"},
           {"IsDriver", 0},
           {"GenderCode", "1"},
           {"SubImageList",
            {{"SubImageInfoObject",
              {{"Type", "11"}, {"FileFormat", "jpeg"}, {"Data", b64}, {"Width", "112"}}}}}}}}}}};
  const ParsedFaceList p = ParseFaceList(j.dump());
  ASSERT_TRUE(p.errors.empty()) << p.errors[0].message;
  ASSERT_EQ(p.list.faces.size(), 1u);
  EXPECT_EQ(p.list.faces[0].left_top_x, 5);
  EXPECT_EQ(p.list.faces[0].images[0].width, 112);
  EXPECT_EQ(p.list.faces[0].images[0].data, FakeJpeg(90));
}

TEST(ViidObjects, KeyCaseOfOtherVendorsIsTolerated) {
  // Keys as vendors spell them: "FacelistObject", "Faceobject", "faceObject", "SubimageList",
  // "subImageInfoObject", lower-case scalars. The standard's spelling wins over another case.
  const std::string b64 = crypto::ToBase64(FakeJpeg(70));
  for (const char* list_key : {"FaceListObject", "FacelistObject", "facelistobject"})
    for (const char* face_key : {"FaceObject", "Faceobject", "faceObject", "FACEOBJECT"}) {
      const json j = {{list_key,
                       {{face_key,
                         {{{"faceId", "F-CASE"},
                           {"DeviceId", "34020000001190000001"},
                           {"lefttopx", 7},
                           {"SubimageList",
                            {{"subImageInfoObject",
                              {{{"type", "14"}, {"fileformat", "Jpeg"}, {"DATA", b64}}}}}}}}}}}};
      const ParsedFaceList p = ParseFaceList(j.dump());
      ASSERT_TRUE(p.errors.empty()) << list_key << "/" << face_key << ": " << p.errors[0].message;
      ASSERT_EQ(p.list.faces.size(), 1u) << list_key << "/" << face_key;
      EXPECT_EQ(p.list.faces[0].face_id, "F-CASE");
      EXPECT_EQ(p.list.faces[0].left_top_x, 7);
      ASSERT_EQ(p.list.faces[0].images.size(), 1u);
      EXPECT_EQ(p.list.faces[0].images[0].type, kImageTypeScene);
      EXPECT_EQ(p.list.faces[0].images[0].data, FakeJpeg(70));
    }
  // Both spellings present: the standard's is taken.
  json both = ToJson(FaceList{{SampleFace("STD")}});
  both["FaceListObject"]["faceobject"] = "ignored";
  EXPECT_EQ(ParseFaceList(both.dump()).list.faces.at(0).face_id, "STD");
  // System objects too.
  EXPECT_EQ(
      ParseSystemObject(R"({"Keepaliveobject":{"deviceID":"CAM-9"}})", SystemObject::kKeepalive),
      "CAM-9");
}

TEST(ViidObjects, MissingOrMistypedKeysAreNamedWithWhatWasExpected) {
  auto message = [](const std::string& text) {
    try {
      ParseFaceList(text);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  std::string m = message(R"({"FaceListObject":{}})");
  EXPECT_NE(m.find("missing key FaceListObject.FaceObject (expected an array)"), std::string::npos)
      << m;
  m = message(R"({"FaceListObject":{"Faceobject":"x"}})");
  EXPECT_NE(m.find("FaceListObject.FaceObject: expected an array, got a string"), std::string::npos)
      << m;
  EXPECT_EQ(m.find("not an array"), std::string::npos) << m;
  m = message(R"({"FaceListObject":[]})");
  EXPECT_NE(m.find("FaceListObject: expected an object, got an array"), std::string::npos) << m;
  m = message(R"({"Faces":[]})");
  EXPECT_NE(m.find("missing key FaceListObject (expected an object)"), std::string::npos) << m;
  // Chinese first, then English.
  EXPECT_LT(m.find("缺少字段"), m.find("missing key")) << m;

  // Inside one face: reported for that face, naming the key.
  json face = ToJson(SampleFace("F1"));
  face.erase("DeviceID");
  json no_images = ToJson(SampleFace("F2"));
  no_images["SubImageList"] = {{"SubImageInfoObject", 5}};
  json bad_data = ToJson(SampleFace("F3"));
  bad_data["SubImageList"]["SubImageInfoObject"][0]["Data"] = 12;
  json no_data = ToJson(SampleFace("F4"));
  no_data["SubImageList"]["SubImageInfoObject"][0].erase("Data");
  json id_number = ToJson(SampleFace("F5"));
  id_number["DeviceID"] = json::array();
  const ParsedFaceList p = ParseFaceList(
      json{{"FaceListObject", {{"FaceObject", {face, no_images, bad_data, no_data, id_number}}}}}
          .dump());
  ASSERT_EQ(p.errors.size(), 5u);
  EXPECT_NE(p.errors[0].message.find("missing key DeviceID (expected a string)"), std::string::npos)
      << p.errors[0].message;
  EXPECT_NE(p.errors[1].message.find(
                "SubImageList.SubImageInfoObject: expected an array or an object, got a number"),
            std::string::npos)
      << p.errors[1].message;
  EXPECT_NE(p.errors[2].message.find("SubImageInfoObject.Data: expected a base64 JPEG string"),
            std::string::npos)
      << p.errors[2].message;
  EXPECT_NE(p.errors[3].message.find("missing key Data"), std::string::npos) << p.errors[3].message;
  EXPECT_NE(p.errors[4].message.find("DeviceID: expected a string, got an array"),
            std::string::npos)
      << p.errors[4].message;
  for (const auto& e : p.errors) std::printf("    face %zu: %s\n", e.index, e.message.c_str());
}

TEST(ViidObjects, StoragePathWithoutDataIsKeptForTheServerToFetch) {
  json face = ToJson(SampleFace("URL1"));
  auto& img = face["SubImageList"]["SubImageInfoObject"][0];
  img.erase("Data");
  img["StoragePath"] = "http://10.0.0.5/pic/1.jpg";
  const ParsedFaceList p = ParseFaceList(json{{"FaceListObject", {{"FaceObject", {face}}}}}.dump());
  ASSERT_TRUE(p.errors.empty()) << p.errors[0].message;
  const auto& s = p.list.faces.at(0).images.at(0);
  EXPECT_TRUE(s.data.empty());
  EXPECT_EQ(s.storage_path, "http://10.0.0.5/pic/1.jpg");
  EXPECT_EQ(ToJson(p.list.faces[0])["SubImageList"]["SubImageInfoObject"][0]["StoragePath"],
            "http://10.0.0.5/pic/1.jpg");
  EXPECT_EQ(CodeOf([] {
              CheckJpeg(std::vector<uint8_t>{'<', 'h', 't', 'm', 'l'}, "StoragePath");
            }),
            ErrorCode::kInvalidArgument);
  CheckJpeg(FakeJpeg(), "StoragePath");
}

TEST(ViidObjects, BadFacesAreReportedAndTheRestKept) {
  json good = ToJson(SampleFace("OK1"));
  json no_id = good;
  no_id.erase("FaceID");
  json not_jpeg = ToJson(SampleFace("PNG1"));
  not_jpeg["SubImageList"]["SubImageInfoObject"][0]["Data"] =
      crypto::ToBase64(crypto::ToBytes("\x89PNG\r\n\x1a\n...."));
  json bad_b64 = ToJson(SampleFace("B64"));
  bad_b64["SubImageList"]["SubImageInfoObject"][0]["Data"] = "%%%";
  json bad_time = ToJson(SampleFace("T1"));
  bad_time["FaceAppearTime"] = "yesterday";
  json too_many = ToJson(SampleFace("MANY"));
  for (int i = 0; i < 9; ++i)
    too_many["SubImageList"]["SubImageInfoObject"].push_back(
        too_many["SubImageList"]["SubImageInfoObject"][0]);
  const json body = {{"FaceListObject",
                      {{"FaceObject", {good, no_id, not_jpeg, bad_b64, bad_time, too_many, 7}}}}};
  const ParsedFaceList p = ParseFaceList(body.dump());
  ASSERT_EQ(p.list.faces.size(), 1u);
  EXPECT_EQ(p.list.faces[0].face_id, "OK1");
  ASSERT_EQ(p.errors.size(), 6u);
  EXPECT_EQ(p.errors[0].index, 1u);
  EXPECT_EQ(p.errors[1].face_id, "PNG1");
  for (const auto& e : p.errors) std::printf("    face %zu: %s\n", e.index, e.message.c_str());
}

TEST(ViidObjects, MalformedBodiesThrowInvalidArgument) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  for (const std::string& bad :
       {std::string(""), std::string("{"), std::string("[]"), std::string("{\"FaceListObject\":1}"),
        std::string("{\"FaceListObject\":{\"FaceObject\":{}}}"), std::string("\xff\xfe"), deep,
        std::string("{\"FaceListObject\":{\"FaceObject\":[") + std::string(5000, '[')}) {
    EXPECT_EQ(CodeOf([&] { ParseFaceList(bad); }), ErrorCode::kInvalidArgument);
  }
  json many = {{"FaceListObject", {{"FaceObject", json::array()}}}};
  for (int i = 0; i < 101; ++i) many["FaceListObject"]["FaceObject"].push_back(json::object());
  EXPECT_EQ(CodeOf([&] { ParseFaceList(many.dump()); }), ErrorCode::kInvalidArgument);
}

TEST(ViidObjects, SystemObjectsAndStatus) {
  const std::string reg = MakeSystemObject(SystemObject::kRegister, "CAM-1").dump();
  EXPECT_EQ(ParseSystemObject(reg, SystemObject::kRegister), "CAM-1");
  EXPECT_EQ(CodeOf([&] { ParseSystemObject(reg, SystemObject::kKeepalive); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf([&] {
              ParseSystemObject("{\"RegisterObject\":{\"DeviceID\":\"a b\"}}",
                                SystemObject::kRegister);
            }),
            ErrorCode::kInvalidArgument);
  ResponseStatus s{kPathRegister, kOk, "正常 / OK", "CAM-1", ""};
  const json one = ToJson(s);
  EXPECT_EQ(one["ResponseStatusObject"]["StatusCode"], "0");
  EXPECT_EQ(one["ResponseStatusObject"]["LocalTime"].get<std::string>().size(), 14u);
  auto back = ParseResponseStatus(one.dump());
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].id, "CAM-1");
  s.status_code = kInvalidJsonContent;
  back = ParseResponseStatus(ToJson(std::vector<ResponseStatus>{s, s}).dump());
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[1].status_code, 8);
  EXPECT_EQ(CodeOf([&] { ParseResponseStatus("{\"x\":1}"); }), ErrorCode::kInvalidArgument);
}

TEST(Digest, Rfc2617Example) {
  const std::string ha1 = DigestHa1("Mufasa", "testrealm@host.com", "Circle Of Life");
  EXPECT_EQ(DigestResponse(ha1, "dcd98b7102dd2f0e8b11d0f600bfb0c093", "00000001", "0a4f113b",
                           "auth", "GET", "/dir/index.html"),
            "6629fae49393a05397450978507c4ef1");
  const DigestCredentials c = ParseAuthorization(
      "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", "
      "nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", qop=auth, "
      "nc=00000001, cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\", "
      "opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"");
  EXPECT_EQ(c.username, "Mufasa");
  EXPECT_EQ(c.opaque, "5ccc069c403ebaf9f0171e9517f40e41");
  EXPECT_TRUE(VerifyDigest(c, ha1, "GET"));
  EXPECT_FALSE(VerifyDigest(c, ha1, "POST"));
  EXPECT_FALSE(VerifyDigest(c, DigestHa1("Mufasa", "testrealm@host.com", "circle of life"), "GET"));
  DigestCredentials no_qop = c;
  no_qop.qop.clear();
  EXPECT_FALSE(VerifyDigest(no_qop, ha1, "GET"));  // qop=auth is required
}

TEST(Digest, ChallengeAnswerVerify) {
  DigestChallenge ch;
  ch.realm = "anju-viid";
  ch.nonce = "abc\"def";  // quoting survives
  ch.opaque = "o1";
  const DigestChallenge parsed = ParseChallenge(FormatChallenge(ch));
  EXPECT_EQ(parsed.realm, "anju-viid");
  EXPECT_EQ(parsed.nonce, "abc\"def");
  EXPECT_EQ(parsed.qop, "auth");
  const DigestCredentials c = AnswerChallenge(parsed, "CAM-1", "s3cret", "POST", kPathRegister, 1);
  const DigestCredentials back = ParseAuthorization(FormatAuthorization(c));
  EXPECT_EQ(back.nc, "00000001");
  EXPECT_EQ(back.nonce, "abc\"def");
  EXPECT_TRUE(VerifyDigest(back, DigestHa1("CAM-1", "anju-viid", "s3cret"), "POST"));
  EXPECT_FALSE(VerifyDigest(back, DigestHa1("CAM-1", "anju-viid", "wrong"), "POST"));
  // "auth-int, auth" offers auth; "auth-int" alone does not; SHA-256 is not supported.
  EXPECT_EQ(ParseChallenge("Digest realm=\"r\", nonce=\"n\", qop=\"auth-int,auth\"").qop, "auth");
  EXPECT_EQ(CodeOf([] { ParseChallenge("Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\""); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf([] { ParseChallenge("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256"); }),
            ErrorCode::kInvalidArgument);
  EXPECT_TRUE(ParseChallenge("digest realm=r, nonce=n, stale=TRUE").stale);
}

TEST(Digest, MalformedHeadersAreRefused) {
  for (const char* bad :
       {"", "Basic dXNlcjpwYXNz", "Digest", "Digest username", "Digest username=\"a",
        "Digest username=\"a\" realm=\"b\"", "Digest =x", "Digest username=a, username=b",
        "Digest realm=\"r\", nonce=\"n\", uri=\"/\", response=\"x\"",  // no username
        "Digestusername=a"}) {
    EXPECT_EQ(CodeOf([&] { ParseAuthorization(bad); }), ErrorCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(CodeOf([] { ParseAuthorization("Digest username=\"" + std::string(600, 'a') + "\""); }),
            ErrorCode::kInvalidArgument);
}

// A cheap in-test fuzz: random mutations of valid inputs never crash and only ever throw
// anju::Error (the real fuzzer runs longer).
TEST(ViidFuzz, RandomMutationsOnlyThrowErrors) {
  FaceList list;
  list.faces = {SampleFace("F1")};
  const std::string face_text = ToJson(list).dump();
  const std::string auth = FormatAuthorization(
      AnswerChallenge(DigestChallenge{"r", "n", "o", "MD5", "auth", false}, "u", "p", "POST", "/"));
  std::mt19937 rng(7);
  const std::string alphabet = "{}[]\",:\\0123456789abc=FaceID \xff";
  size_t accepted = 0;
  for (int round = 0; round < 3000; ++round) {
    for (const std::string* base : {&face_text, &auth}) {
      std::string s = *base;
      const int edits = 1 + int(rng() % 6);
      for (int e = 0; e < edits && !s.empty(); ++e) {
        const size_t pos = rng() % s.size();
        switch (rng() % 3) {
          case 0:
            s[pos] = alphabet[rng() % alphabet.size()];
            break;
          case 1:
            s.erase(pos, 1 + rng() % 8);
            break;
          default:
            s.insert(pos, 1, alphabet[rng() % alphabet.size()]);
        }
      }
      try {
        if (base == &face_text)
          accepted += ParseFaceList(s).list.faces.size();
        else
          accepted += ParseAuthorization(s).username.size() > 0;
      } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      }
    }
  }
  std::printf("    %zu mutated inputs still parsed\n", accepted);
}

}  // namespace
}  // namespace anju::protocol::viid
