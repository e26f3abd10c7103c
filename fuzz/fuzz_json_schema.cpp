// Request bodies: every admin request body is parsed with nlohmann::json and checked with
// server::Validate against its route's schema before a handler sees it. Arbitrary bytes go
// through the same parse and a schema that uses every feature (required and optional
// fields, nesting, arrays, enums, ranges, lengths, nullable, open objects). Failures must
// be a parse error or protocol::ApiError (400), never a crash.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "protocol/api_error.h"
#include "server/http/json_schema.h"

using namespace anju;
using namespace anju::server;

namespace {
const Schema& BodySchema() {
  static const Schema s = Obj({
      Req("code", Str("identity code").MaxLength(64)),
      Opt("name", Str()),
      Opt("minor", Bool()),
      Opt("level", Int().Range(0, 10)),
      Opt("score", Num().Nullable()),
      Opt("role", Str().Enum({"tenant", "family", "carer", "staff", "visitor"})),
      Opt("windows", Arr(Obj({Req("start", Str()), Req("end", Str()),
                              Opt("days", Arr(Int().Range(0, 6)).MaxLength(7))}))
                         .MaxLength(16)),
      Opt("payload", Obj({}).Open()),
      Opt("any", Any()),
      Opt("nested", Obj({Opt("deeper", Obj({Opt("x", Int())}))})),
  });
  return s;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, false);
  if (j.is_discarded()) return 0;
  for (const Schema* s : {&BodySchema(), &BodySchema().properties[6].schema}) {
    try {
      Validate(j, *s, "body");
    } catch (const protocol::ApiError& e) {
      if (e.status() != 400) __builtin_trap();
    }
  }
  j.dump();  // what handlers and audit details do with a body
  return 0;
}
