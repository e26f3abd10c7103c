// The terminal's config file: every bad key or value is refused with a message naming it.
#include "terminal/terminal_config.h"

#include "testing.h"

namespace anju::terminal {
namespace {

std::string Refusal(const std::string& text) {
  try {
    TerminalConfig::Parse(text, "test.json");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    std::printf("    refused: %s\n", e.what());
    return e.what();
  }
  ADD_FAILURE() << "accepted: " << text;
  return "";
}

TEST(TerminalConfig, AFullConfigParses) {
  const auto cfg = TerminalConfig::Parse(R"({
    "data_dir": "data", "camera": "dir:/tmp/frames?fps=5", "name": "3号楼1单元",
    "door": {"output": "converter", "address": "127.0.0.1:1502"},
    "server": {"url": "http://127.0.0.1:8640", "enrolment_code": "K7Q4", "poll_ms": 500},
    "status_listen": "0.0.0.0:8650", "thresholds": "/etc/t.json", "outbox_quota_mb": 512,
    "pipeline": {"decision_budget_ms": 400, "level": "high"}})",
                                         "t.json", "/etc/anju");
  EXPECT_EQ(cfg.data_dir, "/etc/anju/data");
  EXPECT_EQ(cfg.door.output, "converter");
  EXPECT_EQ(cfg.door.host, "127.0.0.1");
  EXPECT_EQ(cfg.door.port, 1502);
  EXPECT_EQ(cfg.server_url, "http://127.0.0.1:8640");
  EXPECT_EQ(cfg.poll.count(), 500);
  EXPECT_EQ(cfg.thresholds, "/etc/t.json");
  EXPECT_EQ(cfg.outbox_quota_mb, 512);
  EXPECT_EQ(cfg.pipeline.decision_budget.count(), 400);
  EXPECT_EQ(cfg.pipeline.terminal_id, "3号楼1单元");  // defaults to the name
  const auto minimal = TerminalConfig::Parse(R"({"data_dir": "/d", "camera": "/dev/video0"})");
  EXPECT_EQ(minimal.door.output, "log");
  EXPECT_EQ(minimal.status_listen, "127.0.0.1:8650");
  EXPECT_TRUE(minimal.server_url.empty());
}

TEST(TerminalConfig, BadFilesNameTheKey) {
  EXPECT_NE(Refusal("{not json").find("not valid JSON"), std::string::npos);
  EXPECT_NE(Refusal(R"({"camera": "/dev/video0"})").find("'data_dir'"), std::string::npos);
  EXPECT_NE(Refusal(R"({"data_dir": "/d", "camera": "/dev/video0", "camrea": 1})").find("'camrea'"),
            std::string::npos);
  EXPECT_NE(Refusal(R"({"data_dir": "/d", "camera": "ftp://x"})").find("'camera'"),
            std::string::npos);
  EXPECT_NE(Refusal(R"({"data_dir": 5, "camera": "/dev/video0"})").find("'data_dir'"),
            std::string::npos);
  EXPECT_NE(Refusal(R"({"data_dir": "/d", "camera": "/dev/video0", "door": {"output": "relay"}})")
                .find("'door.output'"),
            std::string::npos);
  EXPECT_NE(Refusal(R"({"data_dir": "/d", "camera": "/dev/video0",
                        "door": {"output": "converter", "address": "nohost"}})")
                .find("'door.address'"),
            std::string::npos);
  EXPECT_NE(Refusal(R"({"data_dir": "/d", "camera": "/dev/video0", "server": {"url": "ftp://s"}})")
                .find("'server.url'"),
            std::string::npos);
  EXPECT_NE(
      Refusal(
          R"({"data_dir": "/d", "camera": "/dev/video0", "server": {"url": "http://s", "poll_ms": 5}})")
          .find("'server.poll_ms'"),
      std::string::npos);
  EXPECT_NE(Refusal(R"({"data_dir": "/d", "camera": "/dev/video0", "status_listen": "8650"})")
                .find("'status_listen'"),
            std::string::npos);
  EXPECT_NE(
      Refusal(R"({"data_dir": "/d", "camera": "/dev/video0", "pipeline": {"fuse_framez": 2}})")
          .find("fuse_framez"),
      std::string::npos);
  EXPECT_EQ(anju::testing::CodeOf([] { TerminalConfig::Load("/nonexistent/anju.json"); }),
            ErrorCode::kNotFound);
}

// A number beyond a double made nlohmann::json throw out_of_range (406), which Parse let
// through: the terminal ended in std::terminate instead of naming the file (fuzz_config,
// docs/fuzzing.md).
TEST(TerminalConfig, NumberBeyondADoubleIsRefusedAsInvalidJson) {
  EXPECT_NE(Refusal(R"({"data_dir": "/d", "camera": "/dev/video0", "outbox_quota_mb": 1e400})")
                .find("not valid JSON"),
            std::string::npos);
  EXPECT_NE(Refusal(R"({"data_dir": "/d", "camera": "/dev/video0", "door": {"doors": -1e999}})")
                .find("not valid JSON"),
            std::string::npos);
}

}  // namespace
}  // namespace anju::terminal
