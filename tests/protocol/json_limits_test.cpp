// Peer JSON under limits (protocol/json_limits.h): depth, size, string and key length,
// items per array / object, enforced while parsing; normal device payloads unchanged.
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "protocol/json_limits.h"

namespace anju::protocol {
namespace {

using nlohmann::json;

// The anju::Error message ParseJson throws, "" when it parsed.
std::string Refusal(std::string_view text, const JsonLimits& limits = JsonLimits::Peer()) {
  try {
    ParseJson(text, limits);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    return e.what();
  }
  return "";
}

std::string Nested(int levels, bool objects) {
  std::string s;
  for (int i = 0; i < levels; ++i) s += objects ? "{\"a\":" : "[";
  s += "1";
  for (int i = 0; i < levels; ++i) s += objects ? "}" : "]";
  return s;
}

TEST(JsonLimits, TwoThousandAndOneLevelsAreRefused) {
  for (bool objects : {false, true}) {
    SCOPED_TRACE(objects ? "objects" : "arrays");
    const std::string why = Refusal(Nested(2001, objects));
    EXPECT_NE(why.find("nested deeper than 64 levels"), std::string::npos) << why;
    EXPECT_NE(why.find("嵌套"), std::string::npos) << why;
    // The limit is exact: 64 levels parse, 65 do not.
    EXPECT_EQ(Refusal(Nested(64, objects)), "");
    EXPECT_NE(Refusal(Nested(65, objects)), "");
  }
  // As a door event's payload, the way a device would send it.
  const std::string event =
      R"({"events":[{"id":"e1","kind":"door_event","payload":)" + Nested(2001, true) + "}]}";
  EXPECT_NE(Refusal(event).find("nested deeper"), std::string::npos);
  JsonLimits shallow;
  shallow.max_depth = 3;
  EXPECT_EQ(Refusal(R"({"a":[{"b":1}]})", shallow), "");
  EXPECT_NE(Refusal(R"({"a":[{"b":[1]}]})", shallow), "");
}

TEST(JsonLimits, BracketsInsideStringsDoNotCount) {
  const std::string text = "{\"note\":\"" + std::string(5000, '[') + "\"}";
  EXPECT_EQ(ParseJson(text)["note"].get<std::string>().size(), 5000u);
}

TEST(JsonLimits, NormalDevicePayloadsParseExactlyAsBefore) {
  json events = {{"events", json::array()}};
  for (int i = 0; i < 100; ++i)
    events["events"].push_back(
        {{"id", "0b6f0d1c-9a7e-4c1e-8f00-" + std::to_string(100000000000 + i)},
         {"kind", i % 3 ? "access" : "alarm"},
         {"created_ms", 1764000000000 + i},
         {"payload",
          {{"decision", "open"},
           {"person", "P0001"},
           {"score", 0.71},
           {"mask", false},
           {"windows", {{{"days", {1, 2, 3}}, {"start", "06:00"}, {"end", "23:00"}}}},
           {"detail", "通行 / pass"}}},
         {"snapshot", std::string(20'000, 'A')}});
  const std::string text = events.dump();
  EXPECT_EQ(ParseJson(text), json::parse(text));
  EXPECT_EQ(ParseJson("42"), json(42));
  EXPECT_EQ(ParseJson("\"x\""), json("x"));
  EXPECT_EQ(ParseJson("[]"), json::array());
}

TEST(JsonLimits, SizeStringKeyAndItemLimits) {
  JsonLimits l;
  l.max_bytes = 100;
  EXPECT_NE(Refusal(std::string(101, ' '), l).find("larger than 100 bytes"), std::string::npos);
  l = JsonLimits{};
  l.max_string_bytes = 10;
  EXPECT_EQ(Refusal(R"({"s":"0123456789"})", l), "");
  EXPECT_NE(Refusal(R"({"s":"0123456789x"})", l).find("string longer than 10"), std::string::npos);
  EXPECT_NE(Refusal(R"(["0123456789x"])", l).find("string longer"), std::string::npos);
  l = JsonLimits{};
  l.max_key_bytes = 4;
  EXPECT_EQ(Refusal(R"({"abcd":1})", l), "");
  EXPECT_NE(Refusal(R"({"abcde":1})", l).find("key longer than 4"), std::string::npos);
  l = JsonLimits{};
  l.max_items = 3;
  EXPECT_EQ(Refusal("[1,2,3]", l), "");
  EXPECT_EQ(Refusal("[[1,2,3],[4,5,6],{\"a\":1,\"b\":2,\"c\":[]}]", l), "");
  EXPECT_NE(Refusal("[1,2,3,4]", l).find("more than 3 items"), std::string::npos);
  EXPECT_NE(Refusal("[[],[],{},[]]", l).find("more than 3 items"), std::string::npos);
  EXPECT_NE(Refusal(R"({"a":1,"b":2,"c":3,"d":4})", l).find("more than 3"), std::string::npos);
  EXPECT_NE(Refusal("[[1,2,3,4]]", l).find("more than 3"), std::string::npos);
  // The default array limit: 100,000 items.
  std::string big = "[0";
  for (int i = 0; i < 100'000; ++i) big += ",0";
  big += "]";
  EXPECT_NE(Refusal(big).find("more than 100000 items"), std::string::npos);
}

TEST(JsonLimits, MalformedJsonIsInvalidArgument) {
  for (const char* text : {"", "{", "[1,]", "{\"a\" 1}", "nul", "\"\\ud800\"", "[1]x"}) {
    SCOPED_TRACE(text);
    EXPECT_NE(Refusal(text).find("malformed JSON"), std::string::npos);
  }
}

}  // namespace
}  // namespace anju::protocol
