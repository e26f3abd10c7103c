#include "terminal/terminal.h"

#include <spdlog/spdlog.h>

#include "core/error.h"
#include "crypto/keyfile.h"
#include "door/converter_client.h"
#include "door/gpio.h"
#include "door/logging_controller.h"
#include "protocol/device_auth.h"

namespace anju::terminal {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

int64_t ToMs(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

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
  LocalStateOptions lo;
  lo.model_version = model;
  lo.fusion = thresholds.fusion;
  state_ = LocalState::Open(config_.data_dir, lo);
  store::OutboxOptions oo;
  oo.quota_bytes = config_.outbox_quota_mb << 20;
  outbox_ = store::Outbox::Open(state_->outbox_path(), oo);

  door_ = parts_.door ? std::move(parts_.door) : MakeDoor(config_.door);
  door_sink_ = std::make_unique<door::OutboxSink>(*outbox_, config_.name);
  door_->SetEventCallback(door_sink_->Callback());
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
  try {
    outbox_->Append(kind, payload.dump(), jpeg);
    ++records_;
  } catch (const std::exception& e) {
    ++record_failures_;
    spdlog::error("记录无法保存 / record ({}) could not be stored: {}", kind, e.what());
    return;
  }
  std::lock_guard lock(mu_);
  if (uploader_) uploader_->Wake();
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
  s["records"] = {{"stored", records_.load()},
                  {"failures", record_failures_.load()},
                  {"bad_frames", bad_frames_.load()},
                  {"door_events", door_sink_->recorded()},
                  {"door_event_failures", door_sink_->failures()}};

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
