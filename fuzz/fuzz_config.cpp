// Config files (local, but written by hand and by installers): the terminal's
// (TerminalConfig::Parse, including the "pipeline" options), the capture program's
// (CaptureConfig::FromJson) and the server's (ServerOptions::ApplyConfig). The first byte
// picks the reader, the rest is the file. Every reader must either accept or throw
// anju::Error(kInvalidArgument) naming the key — no other exception, no crash, no UB.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "capture/config.h"
#include "core/error.h"
#include "terminal/terminal_config.h"
#if ANJU_FUZZ_SERVER
#include "server/server.h"
#endif

using namespace anju;

namespace {

void Expect(const Error& e) {
  if (e.code() != ErrorCode::kInvalidArgument) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  const int mode = data[0] % 4;
  if (mode == 0) {
    try {
      const auto c = terminal::TerminalConfig::Parse(text, "fuzz.json", "/base");
      if (c.data_dir.empty() || c.camera.empty()) __builtin_trap();  // both are required
      c.pipeline.ToJson().dump();
    } catch (const Error& e) {
      Expect(e);
    }
    return 0;
  }
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return 0;  // the JSON parser itself is not what is fuzzed here
  try {
    if (mode == 1) {
      terminal::PipelineOptions::FromJson(j).ToJson().dump();
    } else if (mode == 2) {
      const auto c = capture::CaptureConfig::FromJson(j);
      if (c.buffer_dir.empty()) __builtin_trap();  // required
    } else {
#if ANJU_FUZZ_SERVER
      server::ServerOptions o;
      o.ApplyConfig(j);
#endif
    }
  } catch (const Error& e) {
    Expect(e);
  }
  return 0;
}
