#include "server/router.h"

#include <algorithm>
#include <regex>

#include "core/error.h"
#include "protocol/api_error.h"
#include "protocol/device_auth.h"
#include "server/http_compression.h"
#include "server/rbac.h"

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

std::string PathRegex(const std::string& path) {
  static const std::regex re(R"(\{[A-Za-z_]+\})");
  std::string escaped;
  for (char c : path) {
    if (c == '.')
      escaped += "\\.";
    else
      escaped += c;
  }
  return std::regex_replace(escaped, re, "([^/]+)");
}

Reply ErrorReply(int status, const std::string& code, const std::string& message) {
  Reply r;
  r.status = status;
  r.body = protocol::ErrorBody(code, message);
  return r;
}

void Write(const httplib::Request& http, httplib::Response& res, Reply r) {
  res.status = r.status;
  for (const auto& [k, v] : r.headers) res.set_header(k, v);
  // A stream (MJPEG) goes out chunked as it is produced, uncompressed (JPEG is).
  if (r.stream)
    res.set_chunked_content_provider(r.content_type, r.stream, r.stream_end);
  else
    SetBodyCompressed(http, res, std::move(r.body), r.content_type);
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
  if (!http.has_param(name)) return std::nullopt;
  return http.get_param_value(name);
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

void Router::Install(httplib::Server& server, AuthHooks hooks) const {
  for (const Route& route : routes_) {
    bool valid = route.auth != Auth::kAdmin || IsPermission(route.permission);
    for (const auto& p : route.other_permissions) valid = valid && IsPermission(p);
    if (!valid)
      throw Error(ErrorCode::kInternal, "route " + route.method + " " + route.path +
                                            " names no valid permission (\"" + route.permission +
                                            "\")");
  }
  for (const Route& route : routes_) {
    const auto names = PathParamNames(route.path);
    auto handle = [route, names, hooks](const httplib::Request& http, httplib::Response& res) {
      Request req{http, {}, nullptr, {}, {}, {}};
      const bool device = route.auth == Auth::kDevice;
      bool authenticated = false;
      Reply reply;
      try {
        for (size_t i = 0; i < names.size() && i + 1 < http.matches.size(); ++i)
          req.path[names[i]] = http.matches[i + 1];
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
        const bool multipart = http.is_multipart_form_data();
        if (route.body && !(multipart && route.body_kind == BodyKind::kJsonOrMultipart)) {
          if (http.body.empty())
            throw protocol::ApiError(400, "bad_request", "请求体为空 / request body is empty");
          try {
            req.body = json::parse(http.body);
          } catch (const json::parse_error& e) {
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
      } catch (const Error& e) {
        const auto api = protocol::FromError(e);
        reply = ErrorReply(api.status(), api.code(), api.what());
      } catch (const json::exception& e) {
        reply =
            ErrorReply(400, "bad_request", std::string("JSON 无效 / invalid JSON: ") + e.what());
      } catch (const std::exception& e) {
        reply = ErrorReply(500, "internal", std::string("内部错误 / internal error: ") + e.what());
      }
      if (authenticated && hooks.after) {
        try {
          hooks.after(route, req, reply.status);
        } catch (const std::exception& e) {
          // An audit write that fails must not pass silently: the reply becomes a 500.
          reply = ErrorReply(500, "internal", std::string("审计失败 / audit failed: ") + e.what());
        }
      }
      if (device) {
        const std::string id = http.get_header_value(protocol::kHeaderDevice);
        const std::string nonce = http.get_header_value(protocol::kHeaderNonce);
        reply.headers.emplace_back(protocol::kHeaderSignature,
                                   hooks.sign(id, nonce, reply.status, reply.body));
      }
      Write(http, res, std::move(reply));
    };
    const std::string pattern = PathRegex(route.path);
    if (route.method == "GET")
      server.Get(pattern, handle);
    else if (route.method == "POST")
      server.Post(pattern, handle);
    else if (route.method == "PUT")
      server.Put(pattern, handle);
    else if (route.method == "PATCH")
      server.Patch(pattern, handle);
    else if (route.method == "DELETE")
      server.Delete(pattern, handle);
    else
      throw Error(ErrorCode::kInternal, "unsupported method " + route.method);
  }
  // Statuses httplib produces itself (no route, body too large) get the same JSON shape.
  server.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string code = "bad_request", msg = "请求无效 / bad request";
    if (res.status == 404) code = "not_found", msg = "没有这个资源 / no such resource";
    if (res.status == 405) code = "method_not_allowed", msg = "方法不允许 / method not allowed";
    if (res.status == 413)
      code = "too_large", msg = "请求体超过 16 MiB / request body larger than 16 MiB";
    if (res.status >= 500) code = "internal", msg = "内部错误 / internal error";
    res.set_content(protocol::ErrorBody(code, msg), "application/json");
  });
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
