#include "terminal/status_server.h"

#include <httplib.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include "core/error.h"
#include "crypto/tls_cert.h"
#include "protocol/api_error.h"
#include "terminal/terminal_config.h"

namespace anju::terminal {

namespace {

// Kiosk page: the result fills the screen (≥ 12 vw text), white on saturated colours
// (contrast ≥ 7:1), Chinese first; the 中/EN button swaps which language is large.
constexpr const char* kPage = R"HTML(<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>安居门禁 / anju terminal</title>
<style>
  html, body { margin: 0; height: 100%; background: #000; color: #fff;
    font-family: "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", sans-serif; }
  #screen { display: flex; flex-direction: column; justify-content: center; align-items: center;
    height: 100%; text-align: center; transition: background 0.2s; }
  #main { font-size: 14vw; font-weight: 900; line-height: 1.1; }
  #sub { font-size: 6vw; font-weight: 700; margin-top: 2vh; }
  #name { font-size: 8vw; font-weight: 900; margin-top: 2vh; }
  #notices { position: fixed; top: 0; left: 0; right: 0; background: #ffd400; color: #000;
    font-size: 4.5vw; font-weight: 700; padding: 1vh 2vw; display: none; }
  #footer { position: fixed; bottom: 0; left: 0; right: 0; font-size: 2.2vw; color: #ddd;
    padding: 1vh 2vw; display: flex; justify-content: space-between; background: rgba(0,0,0,.5); }
  #lang { position: fixed; right: 2vw; top: 12vh; font-size: 4vw; font-weight: 900; padding: 1vh 2vw;
    background: #fff; color: #000; border: 0.6vw solid #000; border-radius: 2vw; }
  .open { background: #006b21 !important; }      /* green, white text 7.4:1 */
  .deny, .stranger, .spoof, .tailgating { background: #b00000 !important; }
  .mask_off, .uncertain { background: #8a4b00 !important; }
  .idle { background: #000 !important; }
</style></head>
<body>
<div id="notices"></div>
<div id="screen" class="idle"><div id="main">请看摄像头</div><div id="name"></div><div id="sub">Please look at the camera</div></div>
<button id="lang" onclick="toggleLang()">EN</button>
<div id="footer"><span id="link"></span><span id="clock"></span></div>
<script>
const TEXT = {
  idle:      ["请看摄像头", "Please look at the camera"],
  open:      ["请通行", "Please pass"],
  deny:      ["未授权", "Not authorised"],
  stranger:  ["未识别 · 陌生人", "Not recognised · stranger"],
  spoof:     ["警告：非活体", "Warning: spoof attempt"],
  uncertain: ["未识别，请重试", "Not recognised, try again"],
  mask_off:  ["请摘下口罩", "Please remove your mask"],
  tailgating: ["请勿尾随", "No tailgating"],
};
let english = localStorage.getItem("anju-lang") === "en";
function toggleLang() { english = !english; localStorage.setItem("anju-lang", english ? "en" : "zh"); poll(); }
function show(s) {
  const d = s.display || {};
  const fresh = d.seq > 0 && d.age_ms !== undefined && d.age_ms < 6000;
  const kind = fresh ? d.result : "idle";
  const t = TEXT[kind] || TEXT.idle;
  const zh = fresh && d.message_zh ? d.message_zh : t[0];
  const en = fresh && d.message_en ? d.message_en : t[1];
  document.getElementById("screen").className = kind in TEXT ? kind : "deny";
  document.getElementById("main").textContent = english ? en : zh;
  document.getElementById("sub").textContent = english ? zh : en;
  document.getElementById("name").textContent = fresh && d.display_name ? d.display_name : "";
  const n = (s.notices || []).map(x => english ? (x.text_en || x.text_zh) : (x.text_zh || x.text_en));
  const box = document.getElementById("notices");
  box.style.display = n.length ? "block" : "none";
  box.textContent = n.join("  ·  ");
  document.getElementById("lang").textContent = english ? "中文" : "EN";
  const online = s.server && s.server.state === "online";
  document.getElementById("link").textContent = s.server && s.server.url
      ? (online ? "● 在线 / online" : "○ 离线运行 / offline") : "离线终端 / offline terminal";
  document.getElementById("clock").textContent = new Date().toLocaleTimeString("zh-CN");
}
async function poll() {
  try { const r = await fetch("/status.json", {cache: "no-store"}); show(await r.json()); }
  catch (e) { document.getElementById("link").textContent = "状态不可用 / status unavailable"; }
}
setInterval(poll, 500); poll();
</script></body></html>
)HTML";

}  // namespace

const std::string& StatusPageHtml() {
  static const std::string page = kPage;
  return page;
}

std::vector<std::string> HealthProblems(const nlohmann::json& s) {
  std::vector<std::string> problems;
  const auto camera = s.value("/camera/state"_json_pointer, std::string("unknown"));
  if (camera != "connected")
    problems.push_back("camera " + camera + ": " +
                       s.value("/camera/last_error"_json_pointer, std::string()));
  // With an IR camera configured every approach needs it (fail closed): say so.
  if (s.contains("ir_camera")) {
    const auto ir = s.value("/ir_camera/state"_json_pointer, std::string("unknown"));
    if (ir != "connected")
      problems.push_back("IR camera " + ir + ": " +
                         s.value("/ir_camera/last_error"_json_pointer, std::string()));
  }
  if (s.value("/outbox/near_full"_json_pointer, false)) problems.push_back("outbox near full");
  if (s.value("/outbox/full"_json_pointer, false)) problems.push_back("outbox full");
  // While the outbox refuses records (a full disk); they wait in memory and the problem
  // clears when they are written.
  if (s.value("/records/failing"_json_pointer, false) ||
      s.value("/records/pending"_json_pointer, int64_t{0}) > 0)
    problems.push_back(
        "records could not be stored (" +
        std::to_string(s.value("/records/pending"_json_pointer, int64_t{0})) +
        " waiting in memory): " + s.value("/records/last_error"_json_pointer, std::string()));
  if (s.value("/records/dropped"_json_pointer, int64_t{0}) > 0) problems.push_back("records lost");
  // Offline is not a problem, a clock the server refuses is: nothing reaches it until the
  // time is set.
  for (const char* link : {"/server/sync/last_error", "/server/upload/last_error"})
    if (s.value(nlohmann::json::json_pointer(link), std::string()).find("clock_skew") !=
            std::string::npos &&
        s.value("/server/state"_json_pointer, std::string()) == "refused") {
      problems.push_back(
          "clock: the server refuses this terminal's time (more than 5 minutes "
          "off); set the clock (NTP)");
      break;
    }
  return problems;
}

StatusServer::StatusServer(const std::string& listen, Provider provider,
                           std::filesystem::path tls_dir)
    : provider_(std::move(provider)), tls_dir_(std::move(tls_dir)) {
  std::tie(host_, port_) = ParseHostPort(listen, "status_listen");
}

StatusServer::~StatusServer() {
  Stop();
}

std::string StatusServer::url() const {
  return (tls_dir_.empty() ? "http://" : "https://") + host_ + ":" + std::to_string(port_);
}

void StatusServer::Start() {
  if (tls_dir_.empty()) {
    http_ = std::make_unique<httplib::Server>();
  } else {
    // 0.0.0.0 / :: are no names a client could check; loopback names are always in.
    std::vector<std::string> hosts;
    if (host_ != "0.0.0.0" && host_ != "::") hosts.push_back(host_);
    const auto tls = crypto::EnsureSelfSignedCert(tls_dir_ / "status.crt", tls_dir_ / "status.key",
                                                  "anju-terminal", hosts);
    cert_file_ = tls.cert;
    fingerprint_ = tls.fingerprint;
    cert_created_ = tls.created;
    auto ssl = std::make_unique<httplib::SSLServer>(tls.cert.c_str(), tls.key.c_str());
    if (!ssl->is_valid())
      throw Error(ErrorCode::kInvalidArgument,
                  "状态页证书不可用 / status page certificate or key unusable: " +
                      tls.cert.string() + ", " + tls.key.string());
    // TLS 1.3 only, as the server (docs/security.md).
    SSL_CTX_set_min_proto_version(ssl->ssl_context(), TLS1_3_VERSION);
    http_ = std::move(ssl);
  }
  http_->set_keep_alive_timeout(2);
  http_->Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(StatusPageHtml(), "text/html; charset=utf-8");
  });
  auto json_reply = [](httplib::Response& res, int status, const nlohmann::json& j) {
    res.status = status;
    res.set_header("Cache-Control", "no-store");
    res.set_content(j.dump(), "application/json");
  };
  http_->Get("/status.json", [this, json_reply](const httplib::Request&, httplib::Response& res) {
    try {
      json_reply(res, 200, provider_());
    } catch (const std::exception& e) {
      res.status = 500;
      res.set_content(protocol::ErrorBody("internal", e.what()), "application/json");
    }
  });
  http_->Get("/healthz", [this, json_reply](const httplib::Request&, httplib::Response& res) {
    try {
      const auto s = provider_();
      const auto problems = HealthProblems(s);
      json_reply(res, problems.empty() ? 200 : 503,
                 {{"status", problems.empty() ? "ok" : "degraded"},
                  {"problems", problems},
                  {"uptime_s", s.value("uptime_s", int64_t{0})}});
    } catch (const std::exception& e) {
      res.status = 500;
      res.set_content(protocol::ErrorBody("internal", e.what()), "application/json");
    }
  });
  http_->set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty())
      res.set_content(protocol::ErrorBody(res.status == 404 ? "not_found" : "bad_request",
                                          res.status == 404 ? "没有此页面 / no such page"
                                                            : "请求无效 / bad request"),
                      "application/json");
  });
  const int bound = port_ == 0 ? http_->bind_to_any_port(host_)
                               : (http_->bind_to_port(host_, port_) ? port_ : -1);
  if (bound < 0)
    throw Error(ErrorCode::kUnavailable, "状态页无法监听 / cannot listen on " + host_ + ":" +
                                             std::to_string(port_) + " (in use?)");
  port_ = bound;
  thread_ = std::thread([this] { http_->listen_after_bind(); });
  while (!http_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  spdlog::info("状态页 / status page: {}/", url());
  if (!fingerprint_.empty())
    spdlog::info("状态页证书 / status page certificate: {}{} SHA-256 {}", cert_file_.string(),
                 cert_created_ ? " (自签名，首次生成 / self-signed, just created)" : "",
                 fingerprint_);
}

void StatusServer::Stop() {
  if (!http_) return;
  http_->stop();
  if (thread_.joinable()) thread_.join();
  http_.reset();
}

}  // namespace anju::terminal
