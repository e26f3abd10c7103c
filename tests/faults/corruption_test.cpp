// Damaged files on a terminal (docs/reliability.md, "Corruption"): a model file with one
// byte changed, a database page overwritten in the state, gallery and outbox databases,
// and a truncated outbox. The real anju-terminal is started on each: it refuses with a
// clear error naming the file (exit status 1, never a signal), or — for the outbox,
// whose loss would stop the door for a queue of uploads — moves it aside, keeps what can
// be read and raises an alarm.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <fstream>
#include <iostream>

#include "core/paths.h"
#include "fault_site.h"
#include "store/outbox.h"
#include "testing.h"

namespace anju::faults {
namespace {

// Overwrites SQLite page PAGE (1-based) of FILE with a pattern (the page size comes from
// the header); page 0 = the last page.
void SmashPage(const fs::path& file, int64_t page) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  unsigned char header[100] = {};
  f.read(reinterpret_cast<char*>(header), sizeof header);
  int64_t size = (header[16] << 8) | header[17];
  if (size == 1) size = 65536;
  const int64_t pages = int64_t(fs::file_size(file)) / size;
  if (page == 0) page = pages;
  ASSERT_LE(page, pages) << file;
  std::string junk(size_t(size), '\0');
  for (size_t i = 0; i < junk.size(); ++i) junk[i] = char((i * 131 + 7) & 0xFF);
  f.seekp((page - 1) * size);
  f.write(junk.data(), std::streamsize(junk.size()));
}

TerminalSetup Offline(const fs::path& dir, const fs::path& frames) {
  TerminalSetup ts;
  ts.dir = dir;
  ts.frames = frames;
  ts.status_port = FreePort();
  return ts;
}

// Starts the terminal and waits until it either exits or serves /healthz. Returns the
// exit status (-1 = still running), and fails the test when a signal ended it.
int StartAndSettle(Terminal& t) {
  t.Start();
  int code = -1;
  WaitFor(
      [&] {
        if (!t.child().Running()) return true;
        return t.Get("/healthz").status > 0;
      },
      Ms(120'000));
  if (!t.child().Running()) {
    code = t.child().WaitExit(Ms(1000));
    EXPECT_NE(code, -1) << "the terminal was killed by a signal (a crash); see " << t.child().log();
  }
  return code;
}

class Corruption : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(DefaultModelDir() / "manifest.json"))
      GTEST_SKIP() << "face models not installed (scripts/setup)";
    root_ = testing::TempDir("faults-corrupt");
    frames_ = root_ / "frames";
    WriteFrames(frames_, 2, {}, 0);
  }
  void TearDown() override {
    if (!HasFailure() && !root_.empty()) fs::remove_all(root_);
  }
  // A terminal data directory made by the real program (offline), with N records waiting
  // in its outbox.
  fs::path Pristine(int records) {
    const fs::path dir = root_ / "pristine";
    Terminal t(Offline(dir, frames_));
    EXPECT_EQ(StartAndSettle(t), -1) << ReadText(t.child().log());
    t.Stop();
    auto box = store::Outbox::Open(t.outbox());
    for (int i = 0; i < records; ++i)
      box->Append(
          "door_event",
          json{{"door", 0}, {"event", "door_opened"}, {"n", i}, {"pad", std::string(300, 'x')}}
              .dump());
    return dir;
  }
  fs::path Copy(const fs::path& pristine, const std::string& name) {
    const fs::path dir = root_ / name;
    fs::copy(pristine, dir, fs::copy_options::recursive);
    return dir;
  }
  fs::path root_, frames_;
};

TEST_F(Corruption, ModelFileWithOneByteChangedIsRefusedNamingFileAndHashes) {
  const fs::path models = root_ / "models";
  fs::copy(DefaultModelDir(), models, fs::copy_options::recursive);
  const fs::path victim = models / "fr_feature.onnx";
  {
    std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(100'000);
    char c = 0;
    f.read(&c, 1);
    f.seekp(100'000);
    c = char(c ^ 0x01);
    f.write(&c, 1);
  }
  TerminalSetup ts = Offline(root_ / "terminal", frames_);
  ts.extra = {{"model_dir", models.string()}};
  Terminal t(ts);
  EXPECT_EQ(StartAndSettle(t), 1);
  const std::string log = ReadText(t.child().log());
  std::cout << log.substr(log.find("错误") == std::string::npos ? 0 : log.find("错误")) << "\n";
  EXPECT_NE(log.find("model file corrupt: " + victim.string()), std::string::npos) << log;
  EXPECT_NE(log.find("87aacdfe57510db2af90c0251df680e8eec88f122ee94712121d09bcaaaf3581"),
            std::string::npos)
      << "the expected hash is not named: " << log;
  EXPECT_NE(log.find("has SHA-256 "), std::string::npos) << log;
}

TEST_F(Corruption, DamagedStateAndGalleryPagesAreClearErrorsNotCrashes) {
  const fs::path pristine = Pristine(0);
  for (const char* file : {"state.db", "gallery.db"}) {
    for (int64_t page : {int64_t{1}, int64_t{2}, int64_t{0}}) {
      SCOPED_TRACE(std::string(file) + " page " + std::to_string(page));
      const fs::path dir = Copy(pristine, std::string(file) + "-" + std::to_string(page));
      SmashPage(dir / "data" / file, page);
      Terminal t(Offline(dir, frames_));
      const int code = StartAndSettle(t);
      const std::string log = ReadText(t.child().log());
      if (code == -1) {
        // Still running: then it must work (and say nothing was wrong only if nothing was).
        EXPECT_EQ(t.Get("/healthz").status, 200) << log;
        t.Stop();
      } else {
        EXPECT_EQ(code, 1) << log;
        EXPECT_NE(log.find(file), std::string::npos) << "the damaged file is not named: " << log;
        EXPECT_NE(log.find("错误 / error [corrupt]"), std::string::npos) << log;
        EXPECT_EQ(log.find("terminate called"), std::string::npos) << log;
      }
      std::cout << "[ faults ] " << file << " page " << page << ": "
                << (code == -1 ? "running" : "exit " + std::to_string(code)) << "\n";
    }
  }
}

TEST_F(Corruption, DamagedOutboxIsMovedAsideSalvagedAndRaisesAnAlarm) {
  const fs::path pristine = Pristine(400);
  // The items table's root page (2), a page in the middle, the last page, the header page,
  // and the file cut in half. Rows behind a damaged root cannot be reached through SQLite:
  // the damaged file is kept for offline recovery (docs/outbox.md, "Damaged files").
  for (const std::string how : {"page-2", "page-10", "last-page", "truncated", "header"}) {
    SCOPED_TRACE(how);
    const fs::path dir = Copy(pristine, "outbox-" + how);
    const fs::path outbox = dir / "data" / "outbox.db";
    if (how == "page-2") SmashPage(outbox, 2);
    if (how == "page-10") SmashPage(outbox, 10);
    if (how == "last-page") SmashPage(outbox, 0);
    if (how == "header") SmashPage(outbox, 1);
    if (how == "truncated") fs::resize_file(outbox, fs::file_size(outbox) / 2);
    Terminal t(Offline(dir, frames_));
    const int code = StartAndSettle(t);
    const std::string log = ReadText(t.child().log());
    ASSERT_EQ(code, -1) << "a damaged outbox stopped the terminal: " << log;
    EXPECT_NE(log.find("damaged outbox moved to"), std::string::npos) << log;
    const json s = t.Status();
    t.Stop();
    // The damaged file is kept beside the new one.
    int kept = 0;
    for (const auto& e : fs::directory_iterator(dir / "data"))
      kept += e.path().filename().string().find("outbox.db.damaged-") == 0;
    EXPECT_GE(kept, 1);
    // What could be read is in the new outbox with its ids, plus one alarm saying so.
    auto box = store::Outbox::Open(outbox);
    const auto items = box->Peek(1000);
    ASSERT_FALSE(items.empty());
    int alarms = 0, salvaged = 0;
    for (const auto& it : items) {
      if (it.kind == "alarm" && it.payload.find("outbox_damaged") != std::string::npos) ++alarms;
      if (it.kind == "door_event") ++salvaged;
    }
    EXPECT_EQ(alarms, 1);
    std::cout << "[ faults ] outbox " << how << ": " << salvaged << " of 400 records salvaged\n";
    if (how == "page-10" || how == "last-page") {
      EXPECT_GT(salvaged, 300);
    }
    if (how == "truncated") {
      EXPECT_GT(salvaged, 100);  // the first half
    }
    EXPECT_EQ(s.value("/outbox/count"_json_pointer, -1), int64_t(items.size()));
  }
}

}  // namespace
}  // namespace anju::faults
