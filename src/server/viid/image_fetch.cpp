#include "server/viid/image_fetch.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>

#include "core/error.h"

namespace anju::server::cameras {

namespace viid = protocol::viid;

namespace {

[[noreturn]] void Refuse(const std::string& zh, const std::string& en) {
  throw Error(ErrorCode::kInvalidArgument, zh + " / " + en);
}

struct HttpUrl {
  std::string host;  // IP literal, without brackets
  int port = 80;
  std::string target;  // path and query, starts with '/'
};

bool IpLiteral(const std::string& host) {
  in_addr v4{};
  in6_addr v6{};
  return inet_pton(AF_INET, host.c_str(), &v4) == 1 || inet_pton(AF_INET6, host.c_str(), &v6) == 1;
}

// The same address written two ways ("::ffff:10.0.0.5" and "10.0.0.5", "::1" and "0::1")
// compares equal.
bool SameAddress(const std::string& a, const std::string& b) {
  auto canonical = [](std::string s) {
    if (s.rfind("::ffff:", 0) == 0 && s.find('.') != std::string::npos) s = s.substr(7);
    in6_addr v6{};
    if (inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
      char buf[INET6_ADDRSTRLEN] = {};
      if (inet_ntop(AF_INET6, &v6, buf, sizeof buf)) return std::string(buf);
    }
    return s;
  };
  return !a.empty() && canonical(a) == canonical(b);
}

HttpUrl ParseUrl(const std::string& url) {
  for (char c : url)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      Refuse("StoragePath 含有空白或控制字符", "StoragePath contains spaces or control characters");
  std::string scheme = url.substr(0, std::min<size_t>(url.size(), 7));
  for (auto& c : scheme) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "http://")
    Refuse("StoragePath 仅支持 http:// 地址: " + url.substr(0, 200),
           "StoragePath: only http:// URLs are fetched: " + url.substr(0, 200));
  const std::string rest = url.substr(7);
  const size_t slash = rest.find_first_of("/?#");
  const std::string authority = rest.substr(0, slash);
  HttpUrl u;
  u.target = slash == std::string::npos ? "/" : rest.substr(slash);
  if (u.target[0] != '/') u.target = "/" + u.target;
  if (const size_t hash = u.target.find('#'); hash != std::string::npos) u.target.resize(hash);
  if (authority.find('@') != std::string::npos)
    Refuse("StoragePath 不能含用户信息", "StoragePath must not carry user information");
  std::string port;
  if (!authority.empty() && authority[0] == '[') {
    const size_t close = authority.find(']');
    if (close == std::string::npos)
      Refuse("StoragePath 地址格式错误", "StoragePath: malformed host");
    u.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':')
        Refuse("StoragePath 地址格式错误", "StoragePath: malformed host");
      port = authority.substr(close + 2);
    }
  } else {
    const size_t colon = authority.find(':');
    u.host = authority.substr(0, colon);
    if (colon != std::string::npos) port = authority.substr(colon + 1);
  }
  if (!port.empty()) {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(port) < 1 || std::stoi(port) > 65535)
      Refuse("StoragePath 端口无效", "StoragePath: bad port");
    u.port = std::stoi(port);
  }
  if (!IpLiteral(u.host))
    Refuse("StoragePath 的主机必须是摄像机的 IP 地址（不解析域名）: " + u.host.substr(0, 100),
           "StoragePath: the host must be the camera's IP address (names are not resolved): " +
               u.host.substr(0, 100));
  return u;
}

}  // namespace

std::vector<uint8_t> FetchCameraImage(const std::string& url, const std::string& camera_addr,
                                      const ImageFetchOptions& options) {
  const HttpUrl u = ParseUrl(url);
  if (!SameAddress(u.host, camera_addr))
    Refuse(
        "StoragePath 不是本摄像机的地址（" + u.host + "，请求来自 " + camera_addr + "），不予获取",
        "StoragePath is not on this camera (" + u.host + ", the upload came from " + camera_addr +
            "): not fetched");
  const auto deadline = std::chrono::steady_clock::now() + options.timeout;
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(options.timeout);
  const auto usecs = std::chrono::duration_cast<std::chrono::microseconds>(options.timeout - secs);
  httplib::Client cli(u.host, u.port);
  cli.set_connection_timeout(secs.count(), usecs.count());
  cli.set_read_timeout(secs.count(), usecs.count());
  cli.set_write_timeout(secs.count(), usecs.count());
  cli.set_follow_location(false);
  cli.set_keep_alive(false);
  std::vector<uint8_t> body;
  bool too_large = false, too_slow = false;
  int status = 0;
  auto res = cli.Get(
      u.target, httplib::Headers{{"Accept", "image/jpeg"}},
      [&](const httplib::Response& r) {
        status = r.status;
        if (r.status != 200) return false;
        // A declared length beyond the limit is refused before any byte of it is read.
        if (r.has_header("Content-Length")) {
          const std::string len = r.get_header_value("Content-Length");
          if (len.size() > 12 || len.find_first_not_of("0123456789") != std::string::npos ||
              std::stoull(len) > options.max_bytes) {
            too_large = true;
            return false;
          }
        }
        return true;
      },
      [&](const char* data, size_t n) {
        if (body.size() + n > options.max_bytes) {
          too_large = true;
          return false;
        }
        // The read timeout is per read: a camera sending a byte now and then is cut here.
        if (std::chrono::steady_clock::now() > deadline) {
          too_slow = true;
          return false;
        }
        body.insert(body.end(), data, data + n);
        return true;
      });
  const std::string shown = url.substr(0, 200);
  if (too_large)
    Refuse("StoragePath 图像过大（上限 " + std::to_string(options.max_bytes) + " 字节）: " + shown,
           "StoragePath image too large (max " + std::to_string(options.max_bytes) +
               " bytes): " + shown);
  if (too_slow || std::chrono::steady_clock::now() > deadline)
    throw Error(ErrorCode::kUnavailable,
                "StoragePath 获取超时（" + std::to_string(options.timeout.count()) +
                    " 毫秒）: " + shown + " / StoragePath fetch timed out (" +
                    std::to_string(options.timeout.count()) + " ms): " + shown);
  if (status != 0 && status != 200)
    Refuse("StoragePath 获取失败（HTTP " + std::to_string(status) + "）: " + shown,
           "StoragePath fetch refused (HTTP " + std::to_string(status) + "): " + shown);
  if (!res)
    throw Error(ErrorCode::kUnavailable, "StoragePath 无法获取: " + shown +
                                             " / StoragePath unreachable: " + shown + " (" +
                                             httplib::to_string(res.error()) + ")");
  viid::CheckJpeg(body, "StoragePath");
  return body;
}

size_t ResolveStoragePaths(viid::ParsedFaceList& parsed, const std::string& camera_addr,
                           const ImageFetchOptions& options) {
  const auto budget_end = std::chrono::steady_clock::now() + options.budget;
  size_t fetched = 0;
  std::vector<viid::FaceObject> kept;
  kept.reserve(parsed.list.faces.size());
  for (size_t i = 0; i < parsed.list.faces.size(); ++i) {
    auto& face = parsed.list.faces[i];
    try {
      for (auto& img : face.images) {
        if (!img.data.empty() || img.storage_path.empty()) continue;
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            budget_end - std::chrono::steady_clock::now());
        if (left.count() <= 0)
          throw Error(ErrorCode::kUnavailable,
                      "本次上传的 StoragePath 获取时间已用完，请重发 / the time for fetching this "
                      "upload's StoragePath images is used up: send again");
        ImageFetchOptions one = options;
        one.timeout = std::min(options.timeout, left);
        img.data = FetchCameraImage(img.storage_path, camera_addr, one);
        ++fetched;
      }
      kept.push_back(std::move(face));
    } catch (const Error& e) {
      viid::FaceError err;
      err.index = i;
      err.face_id = face.face_id;
      err.message = e.what();
      parsed.errors.push_back(std::move(err));
    }
  }
  parsed.list.faces = std::move(kept);
  return fetched;
}

}  // namespace anju::server::cameras
