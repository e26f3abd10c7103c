#include "terminal/terminal.h"

#include <spdlog/spdlog.h>

#include <fstream>

#include "core/error.h"
#include "crypto/keyfile.h"
#include "door/converter_client.h"
#include "door/gpio.h"
#include "door/logging_controller.h"
#include "door/outbox_sink.h"
#include "protocol/device_auth.h"
#include "terminal/site_levels.h"

namespace anju::terminal {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

int64_t ToMs(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// Records kept in memory while the outbox refuses them (a full disk): at most this many,
// snapshots dropped first (docs/terminal.md, "When the disk is full").
constexpr size_t kMaxPendingRecords = 20'000;
constexpr size_t kMaxPendingBytes = size_t{64} << 20;

std::unique_ptr<door::DoorController> MakeDoor(const DoorConfig& d) {
  if (d.output == "converter") {
    door::ConverterOptions o;
    o.host = d.host;
    o.port = d.port;
    return std::make_unique<door::ConverterClient>(o);
  }
  if (d.output == "gpio") {
    door::GpioDoorOptions o;
    o.chip = d.chip;
    for (unsigned line : d.lines) o.outputs.push_back({line, d.active_low});
    return std::make_unique<door::GpioDoorController>(o);
  }
  return std::make_unique<door::LoggingDoorController>(d.doors);
}

crypto::Sm2Key LoadOrMakeDeviceKey(const LocalState& state) {
  const fs::path file = state.dir() / "keys" / "device.pem";
  if (fs::exists(file)) return crypto::Sm2Key::FromPrivatePem(crypto::ReadSecretFile(file));
  auto key = crypto::Sm2Key::Generate();
  crypto::WriteSecretFile(file, key.PrivatePem());
  return key;
}

}  // namespace

DeviceIdentity RegisterDevice(LocalState& state, const std::string& server_url,
                              const std::string& enrolment_code, const std::string& name, int doors,
                              const protocol::ClientOptions& client) {
  const crypto::Sm2Key key = LoadOrMakeDeviceKey(state);
  protocol::RegisterRequest req;
  req.enrolment_code = enrolment_code;
  req.name = name;
  req.software_version = kSoftwareVersion;
  req.model_version = state.model_version();
  req.doors = doors;
  const protocol::Registration reg = protocol::DeviceClient::Register(server_url, key, req, client);
  DeviceIdentity id{reg.device_id, server_url, key, reg.data_key, reg.server_public_key};
  state.SaveIdentity(id);
  spdlog::info("终端已注册 / registered with {} as {}", server_url, reg.device_id);
  return id;
}

Terminal::Terminal(TerminalConfig config, TerminalParts parts)
    : config_(std::move(config)),
      parts_(std::move(parts)),
      started_(std::chrono::steady_clock::now()) {
  engine_ = parts_.engine;
  if (!engine_) engine_ = vision::FaceEngine::Open(config_.model_dir);
  const std::string model = engine_->model_version();
  match::Thresholds thresholds;
  if (parts_.thresholds) {
    thresholds = *parts_.thresholds;
  } else {
    fs::path file = config_.thresholds;
    if (file.empty()) file = match::DefaultThresholdsPath(config_.model_dir);
    if (file.empty())
      throw Error(ErrorCode::kNotFound,
                  "找不到阈值文件 / no thresholds file: set \"thresholds\" in the config "
                  "(made by `anju calibrate`)");
    thresholds = match::Thresholds::Load(file, model);
  }
  file_thresholds_ = thresholds;
  // The site's levels received before a restart (the server may be out of reach now).
  if (const auto f = SiteLevelsFile(config_.data_dir); fs::exists(f)) {
    try {
      std::ifstream in(f);
      const json j = json::parse(in);
      thresholds = MergeSiteLevels(file_thresholds_, j);
      site_levels_ = j;
    } catch (const std::exception& e) {
      spdlog::warn("站点阈值文件无效，使用本机阈值 / site levels file {} refused: {}", f.string(),
                   e.what());
    }
  }
  LocalStateOptions lo;
  lo.model_version = model;
  lo.fusion = thresholds.fusion;
  state_ = LocalState::Open(config_.data_dir, lo);
  store::OutboxOptions oo;
  oo.quota_bytes = config_.outbox_quota_mb << 20;
  // A damaged outbox must not keep the door shut: it is moved aside, what can be read is
  // carried over with its ids, and an alarm says so (docs/outbox.md, "Damaged files").
  store::OutboxSalvage salvage;
  outbox_ = store::Outbox::OpenOrSalvage(state_->outbox_path(), oo, &salvage);
  if (salvage.happened) {
    spdlog::error(
        "待上传记录库已损坏：已移至 {}，恢复 {} 条，{} 处无法读取 / damaged outbox moved to {}; "
        "{} items salvaged, {} unreadable ({})",
        salvage.moved_to.string(), salvage.salvaged, salvage.unreadable, salvage.moved_to.string(),
        salvage.salvaged, salvage.unreadable, salvage.reason);
    const auto now = std::chrono::system_clock::now();
    Store({"alarm",
           json{{"alarm", true},
                {"alarm_type", "outbox_damaged"},
                {"severity", "major"},
                {"time_ms", ToMs(now)},
                {"terminal", config_.name},
                {"file", state_->outbox_path().string()},
                {"moved_to", salvage.moved_to.string()},
                {"salvaged", salvage.salvaged},
                {"unreadable", salvage.unreadable},
                {"detail", salvage.reason},
                {"description", "待上传记录库损坏，已尽量恢复 / outbox damaged, salvaged"},
                {"description_zh", "待上传记录库损坏，已尽量恢复"},
                {"description_en", "outbox damaged; readable records were salvaged"}}
               .dump(-1, ' ', false, json::error_handler_t::replace),
           {},
           now});
  }

  door_ = parts_.door ? std::move(parts_.door) : MakeDoor(config_.door);
  // Door inputs become records through the same ordered path as access records.
  door_->SetEventCallback([this](const door::DoorEvent& e) {
    Store({door::OutboxKindFor(e.kind),
           door::DoorEventJson(e, config_.name),
           {},
           e.time == std::chrono::system_clock::time_point{} ? std::chrono::system_clock::now()
                                                             : e.time,
           true});
  });
  commands_ = std::make_unique<CommandRunner>(*door_, notices_, [this] {
    std::lock_guard lock(mu_);
    if (sync_) sync_->RequestSync();
  });

  PipelineOptions po = config_.pipeline;
  if (po.liveness_calibration.enabled && po.liveness_calibration_file.empty())
    po.liveness_calibration_file = config_.data_dir / "liveness-calibration.json";
  pipeline_ = std::make_unique<AccessPipeline>(
      po, *engine_, state_->index(), thresholds, state_->Lookup(), *door_,
      [this](std::string_view kind, const json& payload, std::vector<uint8_t> jpeg) {
        Record(kind, payload, std::move(jpeg));
      });
  spdlog::info("终端就绪 / terminal ready: {} persons, gallery version {}, outbox {} items",
               state_->persons(), state_->gallery_version(), outbox_->Stats().count);
}

Terminal::~Terminal() {
  Stop();
  door_->SetEventCallback({});  // the sink goes before the door
}

void Terminal::Record(std::string_view kind, const json& payload, std::vector<uint8_t> jpeg) {
  // Runs on the frame thread: a local fsynced append, never the network.
  Store({std::string(kind), payload.dump(-1, ' ', false, json::error_handler_t::replace),
         std::move(jpeg), std::chrono::system_clock::now()});
}

void Terminal::Store(PendingRecord r) {
  bool stored_any = false;
  {
    std::lock_guard lock(records_mu_);
    pending_bytes_ += r.payload.size() + r.jpeg.size();
    pending_.push_back(std::move(r));
    const size_t before = pending_.size();
    FlushPendingLocked();
    stored_any = pending_.size() < before;
    // Bounded: snapshots go first, then the oldest records (each one logged).
    for (auto& p : pending_) {
      if (pending_bytes_ <= kMaxPendingBytes) break;
      pending_bytes_ -= p.jpeg.size();
      p.jpeg.clear();
      p.jpeg.shrink_to_fit();
    }
    while (pending_.size() > kMaxPendingRecords || pending_bytes_ > kMaxPendingBytes) {
      ++records_dropped_;
      spdlog::error("记录丢失（待写入过多）/ record lost, too many waiting for the disk: {} {}",
                    pending_.front().kind, pending_.front().payload.substr(0, 200));
      pending_bytes_ -= pending_.front().payload.size() + pending_.front().jpeg.size();
      pending_.pop_front();
    }
    has_pending_ = !pending_.empty();
  }
  if (stored_any) {
    std::lock_guard lock(mu_);
    if (uploader_) uploader_->Wake();
  }
}

void Terminal::FlushPendingLocked() {
  last_flush_try_ = std::chrono::steady_clock::now();
  const bool was_failing = !record_error_.empty();
  size_t written = 0;
  while (!pending_.empty()) {
    PendingRecord& p = pending_.front();
    try {
      outbox_->Append(p.kind, p.payload, p.jpeg, p.created);
    } catch (const std::exception& e) {
      ++record_failures_;
      if (record_error_.empty())
        spdlog::error(
            "记录无法保存，保留在内存中重试 / record ({}) could not be stored, kept in memory and "
            "retried: {}",
            p.kind, e.what());
      record_error_ = e.what();
      if (p.door_event) ++door_event_failures_;
      return;
    }
    ++(p.door_event ? door_events_ : records_);
    pending_bytes_ -= p.payload.size() + p.jpeg.size();
    pending_.pop_front();
    ++written;
  }
  record_error_.clear();
  if (was_failing)
    spdlog::info("记录存储已恢复 / records stored again ({} written from memory)", written);
}

size_t Terminal::pending_records() const {
  std::lock_guard lock(records_mu_);
  return pending_.size();
}

void Terminal::ApplySiteLevels(const json& levels) {
  if (levels == site_levels_) return;  // the sync thread only: no lock needed
  // Throws for malformed levels: the sync client logs it and the levels in force stay.
  const match::Thresholds merged =
      levels.is_null() ? file_thresholds_ : MergeSiteLevels(file_thresholds_, levels);
  const fs::path f = SiteLevelsFile(config_.data_dir);
  std::error_code ec;
  if (levels.is_null()) {
    fs::remove(f, ec);
  } else {
    const fs::path tmp = f.string() + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << levels.dump();
      if (!out.flush()) throw Error(ErrorCode::kIo, "cannot write " + tmp.string());
    }
    fs::rename(tmp, f, ec);
    if (ec) throw Error(ErrorCode::kIo, "cannot write " + f.string() + ": " + ec.message());
  }
  pipeline_->SetThresholds(merged);
  site_levels_ = levels;
  spdlog::info("站点阈值已更新 / site levels applied: high {:.4f} normal {:.4f} low {:.4f}{}",
               merged.at(match::SecurityLevel::kHigh).threshold,
               merged.at(match::SecurityLevel::kNormal).threshold,
               merged.at(match::SecurityLevel::kLow).threshold,
               levels.is_null() ? " (the thresholds file's)" : "");
}

void Terminal::Start() {
  {
    std::lock_guard lock(mu_);
    if (started_threads_) return;
    started_threads_ = true;
    stop_ = false;
  }
  // The source exists before anything that reads its status (status page, heartbeat).
  if (!source_) source_ = video::FrameSource::Open(config_.camera);
  if (!config_.status_listen.empty()) {
    if (!status_)
      status_ = std::make_unique<StatusServer>(
          config_.status_listen, [this] { return Status(); },
          config_.status_tls ? config_.data_dir / "tls" : fs::path());
    status_->Start();
  }
  door_poller_ = std::make_unique<door::EventPoller>(*door_, std::chrono::milliseconds(200));
  if (!config_.ir_camera.empty()) {
    if (!ir_source_) ir_source_ = video::FrameSource::Open(config_.ir_camera);
    ir_thread_ = std::thread([this] { IrLoop(); });
  }
  frame_thread_ = std::thread([this] { FrameLoop(); });
  if (!config_.server_url.empty()) connect_thread_ = std::thread([this] { ConnectLoop(); });
}

void Terminal::FrameLoop() {
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stop_) break;
    }
    // Records the disk refused are retried about once a second until it takes them.
    if (has_pending_) {
      std::lock_guard lock(records_mu_);
      if (std::chrono::steady_clock::now() - last_flush_try_ > std::chrono::seconds(1)) {
        FlushPendingLocked();
        has_pending_ = !pending_.empty();
      }
    }
    std::optional<video::Frame> frame = source_->Read(std::chrono::milliseconds(500));
    if (frame) {
      try {
        pipeline_->OnFrame(*frame);
      } catch (const Error& e) {
        // A bad frame is skipped; the next one is processed as usual.
        if (bad_frames_++ % 100 == 0)
          spdlog::warn("坏帧已跳过 / bad frame {} skipped: {}", frame->seq, e.what());
      }
      continue;
    }
    const auto st = source_->status();
    if (st.state == video::SourceState::kEnded || st.state == video::SourceState::kStopped) {
      pipeline_->Flush();
      spdlog::info("视频源结束 / camera source ended: {}", video::Describe(st));
      std::lock_guard lock(mu_);
      camera_ended_ = true;
      cv_.notify_all();
      break;
    }
  }
}

void Terminal::IrLoop() {
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stop_) break;
    }
    std::optional<video::Frame> frame = ir_source_->Read(std::chrono::milliseconds(500));
    if (frame) {
      try {
        pipeline_->OnIrFrame(*frame);
      } catch (const Error& e) {
        if (bad_frames_++ % 100 == 0)
          spdlog::warn("红外坏帧已跳过 / bad IR frame {} skipped: {}", frame->seq, e.what());
      }
      continue;
    }
    const auto st = ir_source_->status();
    if (st.state == video::SourceState::kEnded || st.state == video::SourceState::kStopped) {
      spdlog::info("红外视频源结束 / IR camera source ended: {}", video::Describe(st));
      break;
    }
  }
}

bool Terminal::Connect() {
  if (!state_->registered()) {
    if (config_.enrolment_code.empty()) {
      spdlog::error(
          "终端未注册且未配置注册码 / not registered and no server.enrolment_code in the config: "
          "running offline (register with `anju-terminal register`)");
      return true;  // nothing more to try
    }
    protocol::ClientOptions co;
    co.ca_file = config_.server_ca_file.string();
    RegisterDevice(*state_, config_.server_url, config_.enrolment_code, config_.name,
                   door_->door_count(), co);
  }
  const DeviceIdentity id = state_->LoadIdentity();
  const std::string url = config_.server_url.empty() ? id.server_url : config_.server_url;
  std::lock_guard lock(mu_);
  if (stop_) return true;
  protocol::ClientOptions co;
  co.ca_file = config_.server_ca_file.string();
  sync_client_ = std::make_unique<protocol::DeviceClient>(url, id.device_id, id.device_key,
                                                          id.server_public_key, co);
  upload_client_ = std::make_unique<protocol::DeviceClient>(url, id.device_id, id.device_key,
                                                            id.server_public_key, co);
  SyncOptions so = parts_.sync.value_or(SyncOptions{});
  if (!parts_.sync) {
    so.poll_interval = config_.poll;
    so.heartbeat_interval = config_.heartbeat;
  }
  so.software_version = kSoftwareVersion;
  so.thresholds = [this](const json& levels) { ApplySiteLevels(levels); };
  sync_ = std::make_unique<SyncClient>(*state_, *sync_client_, id.data_key, *commands_, so, [this] {
    const auto o = outbox_->Stats();
    const auto cam = source_ ? source_->status().state : video::SourceState::kConnecting;
    json j = {{"outbox_count", o.count},
              {"outbox_bytes", o.bytes},
              {"camera", video::SourceStateName(cam)},
              {"uptime_s", std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::steady_clock::now() - started_)
                               .count()}};
    if (o.count > 0) j["outbox_oldest_ms"] = ToMs(o.oldest);
    return j;
  });
  UploaderOptions uo = parts_.upload.value_or(UploaderOptions{});
  uo.on_reconnect = [sync = sync_.get()] { sync->RequestSync(); };  // outlives the uploader
  uploader_ = std::make_unique<Uploader>(*outbox_, *upload_client_, uo);
  sync_->Start();
  uploader_->Start();
  return true;
}

void Terminal::ConnectLoop() {
  Backoff backoff{parts_.register_retry, std::chrono::milliseconds(60'000)};
  for (;;) {
    try {
      if (Connect()) return;
    } catch (const std::exception& e) {
      spdlog::warn("注册失败，稍后重试 / registration failed, retrying: {}", e.what());
    }
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, backoff.Fail(), [&] { return stop_; });
    if (stop_) return;
  }
}

void Terminal::Stop() {
  {
    std::lock_guard lock(mu_);
    if (!started_threads_) return;
    started_threads_ = false;
    stop_ = true;
  }
  cv_.notify_all();
  if (source_) source_->Stop();
  if (ir_source_) ir_source_->Stop();
  if (frame_thread_.joinable()) frame_thread_.join();
  if (ir_thread_.joinable()) ir_thread_.join();
  bool ended = false;
  {
    std::lock_guard lock(mu_);
    ended = camera_ended_;
  }
  if (!ended) pipeline_->Flush();  // decide what is pending (records), close the door window
  {
    std::lock_guard lock(records_mu_);
    FlushPendingLocked();
    if (!pending_.empty())
      spdlog::error("停止时 {} 条记录未能写入 / {} records could not be written before stopping",
                    pending_.size(), pending_.size());
  }
  if (connect_thread_.joinable()) connect_thread_.join();
  std::unique_ptr<SyncClient> sync;
  std::unique_ptr<Uploader> uploader;
  {
    std::lock_guard lock(mu_);
    sync = std::move(sync_);
    uploader = std::move(uploader_);
  }
  uploader.reset();  // joins its thread (first: it may wake the sync client)
  sync.reset();      // joins its thread
  door_poller_.reset();
  if (status_) status_->Stop();
  spdlog::info("终端已停止 / terminal stopped");
}

bool Terminal::WaitCameraEnded(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return camera_ended_; });
}

json Terminal::Status() const {
  const int64_t now = protocol::NowMs();
  const auto uptime =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_)
          .count();
  json s = {{"terminal", config_.name},
            {"software_version", kSoftwareVersion},
            {"time_ms", now},
            {"uptime_s", uptime}};

  const DisplayResult d = pipeline_->last_result();
  s["display"] = {{"seq", d.seq},
                  {"time_ms", d.time_ms},
                  {"age_ms", d.seq ? now - d.time_ms : -1},
                  {"door", d.door},
                  {"result", d.result},
                  {"display_name", d.display_name},
                  {"message_zh", d.message_zh},
                  {"message_en", d.message_en},
                  {"reason", d.reason}};
  json notices = json::array();
  for (const auto& n : notices_.Active(now))
    notices.push_back(
        {{"id", n.id}, {"text_zh", n.text_zh}, {"text_en", n.text_en}, {"until_ms", n.until_ms}});
  s["notices"] = notices;

  if (source_) {
    const auto c = source_->status();
    s["camera"] = {{"uri", c.uri},
                   {"state", video::SourceStateName(c.state)},
                   {"attempt", c.attempt},
                   {"last_error", c.last_error},
                   {"frames", c.frames},
                   {"reconnects", c.reconnects},
                   {"retry_in_ms", c.retry_in.count()}};
  } else {
    s["camera"] = {{"uri", config_.camera}, {"state", "not_started"}};
  }
  if (ir_source_) {
    const auto c = ir_source_->status();
    s["ir_camera"] = {{"uri", c.uri},
                      {"state", video::SourceStateName(c.state)},
                      {"last_error", c.last_error},
                      {"frames", c.frames}};
  } else if (!config_.ir_camera.empty()) {
    s["ir_camera"] = {{"uri", config_.ir_camera}, {"state", "not_started"}};
  }

  s["gallery"] = {{"persons", state_->persons()},
                  {"templates", state_->index().size()},
                  {"version", state_->gallery_version()},
                  {"model_version", state_->model_version()}};
  const auto o = outbox_->Stats();
  s["outbox"] = {{"count", o.count},
                 {"bytes", o.bytes},
                 {"quota_bytes", o.quota_bytes},
                 {"oldest_ms", o.count ? ToMs(o.oldest) : 0},
                 {"near_full", o.near_full},
                 {"full", o.full},
                 {"attachments_dropped", o.attachments_dropped}};
  {
    std::lock_guard lock(records_mu_);
    s["records"] = {{"pending", pending_.size()},
                    {"failing", !record_error_.empty()},
                    {"last_error", record_error_},
                    {"dropped", records_dropped_.load()}};
  }
  s["records"].update(json{{"stored", records_.load()},
                           {"failures", record_failures_.load()},
                           {"bad_frames", bad_frames_.load()},
                           {"door_events", door_events_.load()},
                           {"door_event_failures", door_event_failures_.load()}});

  json server = {{"url", config_.server_url}, {"state", "disabled"}};
  {
    std::lock_guard lock(mu_);
    if (!config_.server_url.empty()) {
      server["state"] = "unregistered";
      server["device_id"] = state_->Get("device_id").value_or("");
    }
    if (sync_) {
      const auto ss = sync_->stats();
      const auto us = uploader_->stats();
      // Online when the last exchange of either client worked.
      LinkState link = ss.link;
      if (us.link == LinkState::kOnline) link = LinkState::kOnline;
      if (link == LinkState::kUnknown) link = us.link;
      server["state"] = LinkStateName(link);
      server["sync"] = ss.ToJson();
      server["upload"] = us.ToJson();
    }
  }
  s["server"] = server;
  s["pipeline"] = pipeline_->stats().ToJson();
  s["pipeline_options"] = config_.pipeline.ToJson();
  return s;
}

}  // namespace anju::terminal
