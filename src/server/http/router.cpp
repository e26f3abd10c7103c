#include "server/http/router.h"

#include "server/common/detailed_error.h"

#include <algorithm>
#include <regex>
#include <set>

#include "core/error.h"
#include "protocol/api_error.h"
#include "protocol/device_auth.h"
#include "protocol/json_limits.h"
#include "server/http/compression.h"
#include "server/access/rbac.h"

namespace anju::server {

namespace {

using nlohmann::json;

std::vector<std::string> PathParamNames(const std::string& path) {
  std::vector<std::string> names;
  static const std::regex re(R"(\{([A-Za-z_]+)\})");
  for (auto it = std::sregex_iterator(path.begin(), path.end(), re); it != std::sregex_iterator();
       ++it)
    names.push_back((*it)[1]);
  return names;
}

// "/api/v1/persons/{code}" → {"api", "v1", "persons", "{code}"}; "/" → {""}.
std::vector<std::string> Segments(const std::string& path) {
  std::vector<std::string> out;
  size_t start = path.empty() || path[0] != '/' ? 0 : 1;
  while (true) {
    const size_t end = path.find('/', start);
    out.push_back(path.substr(start, end == std::string::npos ? end : end - start));
    if (end == std::string::npos) return out;
    start = end + 1;
  }
}

// A route segment: a literal, or a {name} parameter with optional literal text around it
// ("{n}.jpg"). NAME is empty for a literal.
struct SegmentPattern {
  std::string prefix, name, suffix;
};

SegmentPattern ParseSegment(const std::string& seg) {
  const size_t open = seg.find('{');
  const size_t close = seg.find('}', open);
  if (open == std::string::npos || close == std::string::npos) return {seg, "", ""};
  return {seg.substr(0, open), seg.substr(open + 1, close - open - 1), seg.substr(close + 1)};
}

// A parameter matches one path segment's non-empty middle (what "([^/]+)" matched before);
// literals match exactly.
bool Match(const std::vector<std::string>& route, const std::vector<std::string>& path,
           std::map<std::string, std::string>* params) {
  if (route.size() != path.size()) return false;
  for (size_t i = 0; i < route.size(); ++i) {
    const std::string& seg = path[i];
    if (route[i].find('{') == std::string::npos) {
      if (seg != route[i]) return false;
      continue;
    }
    const auto p = ParseSegment(route[i]);
    if (seg.size() <= p.prefix.size() + p.suffix.size() || seg.rfind(p.prefix, 0) != 0 ||
        seg.compare(seg.size() - p.suffix.size(), p.suffix.size(), p.suffix) != 0)
      return false;
    (*params)[p.name] = seg.substr(p.prefix.size(), seg.size() - p.prefix.size() - p.suffix.size());
  }
  return true;
}

Reply ErrorReply(int status, const std::string& code, const std::string& message) {
  Reply r;
  r.status = status;
  r.body = protocol::ErrorBody(code, message);
  return r;
}

http::Response ToResponse(const http::Request& req, Reply r) {
  http::Response res;
  res.status = r.status;
  for (auto& [k, v] : r.headers) res.headers.emplace(std::move(k), std::move(v));
  if (r.stream) {
    // A stream (MJPEG) goes out chunked as it is produced, uncompressed (JPEG is).
    res.Set("Content-Type", r.content_type);
    res.stream = std::move(r.stream);
    res.stream_end = std::move(r.stream_end);
  } else {
    http::SetBodyCompressed(req, res, std::move(r.body), r.content_type);
  }
  return res;
}

const char* JTypeName(JType t) {
  switch (t) {
    case JType::kInteger:
      return "integer";
    case JType::kNumber:
      return "number";
    case JType::kBoolean:
      return "boolean";
    default:
      return "string";
  }
}

}  // namespace

const std::string& Request::Path(const std::string& name) const {
  auto it = path.find(name);
  if (it == path.end()) throw Error(ErrorCode::kInternal, "no path parameter " + name);
  return it->second;
}

std::optional<std::string> Request::Query(const std::string& name) const {
  return http.Param(name);
}

int64_t Request::QueryInt(const std::string& name, int64_t fallback, int64_t lo, int64_t hi) const {
  auto v = Query(name);
  if (!v || v->empty()) return fallback;
  size_t used = 0;
  int64_t n = 0;
  try {
    n = std::stoll(*v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != v->size() || n < lo || n > hi)
    throw protocol::ApiError(400, "bad_request",
                             "查询参数 " + name + " 无效 / query parameter " + name +
                                 " must be an integer in [" + std::to_string(lo) + ", " +
                                 std::to_string(hi) + "]");
  return n;
}

Reply Reply::Jpeg(std::string bytes) {
  Reply r;
  r.body = std::move(bytes);
  r.content_type = "image/jpeg";
  return r;
}

Reply Reply::Json(const nlohmann::json& j, int status) {
  Reply r;
  r.status = status;
  r.body = j.dump();
  return r;
}

bool Route::Allows(const Principal& p) const {
  if (p.Can(permission)) return true;
  return std::any_of(other_permissions.begin(), other_permissions.end(),
                     [&](const std::string& o) { return p.Can(o); });
}

Route& Router::Add(std::string method, std::string path, std::string tag, Auth auth,
                   std::string summary, Handler handler) {
  Route r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.tag = std::move(tag);
  r.auth = auth;
  r.summary = std::move(summary);
  r.handler = std::move(handler);
  routes_.push_back(std::move(r));
  return routes_.back();
}

http::Response ErrorResponse(int status, const std::string& code, const std::string& message) {
  http::Response res;
  res.status = status;
  res.Set("Content-Type", "application/json");
  res.body = protocol::ErrorBody(code, message);
  return res;
}

void Router::Install(AuthHooks hooks) {
  for (const Route& route : routes_) {
    bool valid = route.auth != Auth::kAdmin || IsPermission(route.permission);
    for (const auto& p : route.other_permissions) valid = valid && IsPermission(p);
    if (!valid)
      throw Error(ErrorCode::kInternal, "route " + route.method + " " + route.path +
                                            " names no valid permission (\"" + route.permission +
                                            "\")");
    static const std::set<std::string> kMethods = {"GET", "POST", "PUT", "PATCH", "DELETE"};
    if (!kMethods.count(route.method))
      throw Error(ErrorCode::kInternal, "unsupported method " + route.method);
    for (const auto& seg : Segments(route.path))
      if (std::count(seg.begin(), seg.end(), '{') > 1)
        throw Error(ErrorCode::kInternal,
                    "route " + route.path + ": one {parameter} per path segment at most");
  }
  hooks_ = std::move(hooks);
  segments_.clear();
  for (const Route& route : routes_) segments_.push_back(Segments(route.path));
  installed_ = true;
}

namespace {

// Devices get the peer limits; people's clients the same depth and size, with no cap of their
// own on strings (base64 photos), keys or items (bulk archive bodies).
const protocol::JsonLimits& BodyLimits(bool device) {
  static const protocol::JsonLimits peer = protocol::JsonLimits::Peer();
  static const protocol::JsonLimits admin = [] {
    protocol::JsonLimits l = protocol::JsonLimits::Peer();
    l.max_string_bytes = l.max_bytes;
    l.max_key_bytes = l.max_bytes;
    l.max_items = l.max_bytes;
    return l;
  }();
  return device ? peer : admin;
}

}  // namespace

std::optional<http::Response> Router::Dispatch(const http::Request& http) const {
  if (!installed_) throw Error(ErrorCode::kInternal, "Router::Dispatch before Install");
  const std::string& method = http.method == "HEAD" ? std::string("GET") : http.method;
  const auto path = Segments(http.path);
  const Route* found = nullptr;
  std::map<std::string, std::string> params;
  for (size_t i = 0; i < routes_.size() && !found; ++i) {
    const Route& r = routes_[i];
    if (r.method != method) continue;
    if (http.listener == http::Listener::kCamera && !r.OnCameraListener()) continue;
    params.clear();
    if (Match(segments_[i], path, &params)) found = &r;
  }
  if (!found) return std::nullopt;
  const Route& route = *found;
  const AuthHooks& hooks = hooks_;
  Request req{http, std::move(params), nullptr, {}, {}, {}};
  const bool device = route.auth == Auth::kDevice;
  bool authenticated = false;
  Reply reply;
  try {
    if (route.auth == Auth::kAdmin) {
      req.principal = hooks.admin(http);
      req.actor = req.principal.name;
      authenticated = true;
      if (!req.principal.restriction.empty() && route.permission != kPermSelf)
        throw protocol::ApiError(
            403, req.principal.restriction,
            req.principal.restriction == "password_change_required"
                ? "请先修改初始口令 / change your password first (POST /api/v1/auth/password)"
                : "管理员须先绑定动态口令 / administrators must enrol TOTP first (POST "
                  "/api/v1/auth/totp/setup)");
      if (!route.Allows(req.principal))
        throw protocol::ApiError(403, "forbidden",
                                 "无权访问 / forbidden: needs permission " + route.permission);
      if (hooks.scope) hooks.scope(route, req);
    }
    if (device) req.actor = hooks.device(http);
    const bool multipart = http.IsMultipartFormData();
    if (route.body && !(multipart && route.body_kind == BodyKind::kJsonOrMultipart)) {
      if (http.body.empty())
        throw protocol::ApiError(400, "bad_request", "请求体为空 / request body is empty");
      // Parsed under limits (docs/device-protocol.md, "Limits"): a body nested 2,001 levels
      // deep is refused here, before any handler stores it where every report reads it.
      try {
        req.body = protocol::ParseJson(http.body, BodyLimits(device));
      } catch (const Error& e) {
        throw protocol::ApiError(400, "bad_request",
                                 std::string("JSON 格式错误 / malformed JSON: ") + e.what());
      }
      Validate(req.body, *route.body);
    }
    reply = route.handler(req);
  } catch (const DetailedApiError& e) {
    reply = ErrorReply(e.status(), e.code(), e.what());
    json body = json::parse(reply.body);
    for (const auto& [k, v] : e.extra().items()) body["error"][k] = v;
    reply.body = body.dump();
  } catch (const protocol::ApiError& e) {
    reply = ErrorReply(e.status(), e.code(), e.what());
  } catch (const DetailedError& e) {
    const auto api = protocol::FromError(e);
    reply = ErrorReply(api.status(), api.code(), api.what());
    json body = json::parse(reply.body);
    for (const auto& [k, v] : e.extra().items()) body["error"][k] = v;
    reply.body = body.dump();
  } catch (const Error& e) {
    const auto api = protocol::FromError(e);
    reply = ErrorReply(api.status(), api.code(), api.what());
  } catch (const json::exception& e) {
    reply = ErrorReply(400, "bad_request", std::string("JSON 无效 / invalid JSON: ") + e.what());
  } catch (const std::exception& e) {
    reply = ErrorReply(500, "internal", std::string("内部错误 / internal error: ") + e.what());
  }
  if (authenticated && hooks.after) {
    try {
      hooks.after(route, req, reply.status);
    } catch (const Error& e) {
      // A full disk refuses the audit as it refuses the write: 507, not a server fault.
      const int status = e.code() == ErrorCode::kStorageFull ? 507 : 500;
      reply = ErrorReply(status, status == 507 ? "insufficient_storage" : "internal",
                         std::string("审计失败 / audit failed: ") + e.what());
    } catch (const std::exception& e) {
      // An audit write that fails must not pass silently: the reply becomes a 500.
      reply = ErrorReply(500, "internal", std::string("审计失败 / audit failed: ") + e.what());
    }
  }
  if (device) {
    const std::string id = http.Header(protocol::kHeaderDevice);
    const std::string nonce = http.Header(protocol::kHeaderNonce);
    reply.headers.emplace_back(protocol::kHeaderSignature,
                               hooks.sign(id, nonce, reply.status, reply.body));
  }
  return ToResponse(http, std::move(reply));
}

json Router::OpenApi(const std::string& title, const std::string& version) const {
  json paths = json::object();
  const json error_ref = {{"$ref", "#/components/schemas/Error"}};
  for (const Route& r : routes_) {
    json op = {{"summary", r.summary},
               {"tags", json::array({r.tag})},
               {"operationId", r.method + " " + r.path}};
    json params = json::array();
    for (const auto& name : PathParamNames(r.path))
      params.push_back(
          {{"name", name}, {"in", "path"}, {"required", true}, {"schema", {{"type", "string"}}}});
    for (const auto& q : r.query)
      params.push_back({{"name", q.name},
                        {"in", "query"},
                        {"required", q.required},
                        {"description", q.description},
                        {"schema", {{"type", JTypeName(q.type)}}}});
    if (!params.empty()) op["parameters"] = params;
    if (r.body) {
      json content = {{"application/json", {{"schema", ToOpenApi(*r.body)}}}};
      if (r.body_kind == BodyKind::kJsonOrMultipart)
        content["multipart/form-data"] = {
            {"schema", {{"type", "object"}, {"description", "fields as in the JSON form; files"}}}};
      op["requestBody"] = {{"required", true}, {"content", content}};
    }
    if (r.auth == Auth::kAdmin) {
      op["security"] = json::array({{{"bearer", json::array()}}});
      op["x-permission"] = r.permission;
      if (!r.other_permissions.empty()) op["x-permission-alternatives"] = r.other_permissions;
    }
    if (r.auth == Auth::kDevice)
      op["security"] = json::array({{{"deviceSignature", json::array()}}});
    op["responses"] = {
        {"200",
         {{"description", r.response_description},
          {"content", {{r.response_type, {{"schema", {{"type", "object"}}}}}}}}},
        {"default",
         {{"description", "error"}, {"content", {{"application/json", {{"schema", error_ref}}}}}}}};
    std::string method = r.method;
    for (auto& c : method) c = char(std::tolower(c));
    paths[r.path][method] = op;
  }
  return {
      {"openapi", "3.0.3"},
      {"info", {{"title", title}, {"version", version}}},
      {"paths", paths},
      {"components",
       {{"securitySchemes",
         {{"bearer", {{"type", "http"}, {"scheme", "bearer"}}},
          {"deviceSignature",
           {{"type", "apiKey"},
            {"in", "header"},
            {"name", protocol::kHeaderSignature},
            {"description",
             "SM2 signature with X-Anju-Device, X-Anju-Time and X-Anju-Nonce; see "
             "docs/device-protocol.md"}}}}},
        {"schemas",
         {{"Error",
           {{"type", "object"},
            {"properties",
             {{"error",
               {{"type", "object"},
                {"properties",
                 {{"code", {{"type", "string"}}}, {"message", {{"type", "string"}}}}}}}}}}}}}}}};
}

std::vector<QueryParam> PagingParams(std::vector<QueryParam> more) {
  more.push_back({"limit", JType::kInteger, "page size 1..1000 (default 50)"});
  more.push_back({"offset", JType::kInteger, "rows to skip (default 0)"});
  return more;
}

Paging ReadPaging(const Request& r) {
  return Paging{r.QueryInt("limit", 50, 1, 1000), r.QueryInt("offset", 0, 0, int64_t(1) << 40)};
}

json PageJson(json items, int64_t total, const Paging& p) {
  return {{"items", std::move(items)}, {"total", total}, {"limit", p.limit}, {"offset", p.offset}};
}

}  // namespace anju::server
