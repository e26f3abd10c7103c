// The route table of the HTTP API. Every handler is registered here with its method,
// path, authentication, query parameters and body schema; the same table answers the requests
// the HTTP front (server/http/http_server.h) hands it and writes the OpenAPI document, so the
// document cannot drift from what is served. Handlers throw protocol::ApiError or
// anju::Error; the table turns both into {"error": {"code", "message"}} with the right status.
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "protocol/api_error.h"
#include "server/access/principal.h"
#include "server/http/json_schema.h"
#include "server/http/message.h"

namespace anju::server {

enum class Auth {
  kNone,    // public (health, OpenAPI, login, device registration, GA/T 1400 digest)
  kAdmin,   // a user's session or an API token (Authorization: Bearer …) holding the
            // route's permission (Route::Perm, server/rbac.h)
  kDevice,  // SM2-signed device request; the response is signed too
};

// An API error whose {"error": {...}} object carries more fields (e.g. "until_ms").
class DetailedApiError : public protocol::ApiError {
 public:
  DetailedApiError(int status, std::string code, const std::string& message, nlohmann::json extra)
      : ApiError(status, std::move(code), message), extra_(std::move(extra)) {}
  const nlohmann::json& extra() const { return extra_; }

 private:
  nlohmann::json extra_;
};

struct QueryParam {
  QueryParam(std::string n, JType t, std::string d, bool req = false)
      : name(std::move(n)), type(t), description(std::move(d)), required(req) {}
  std::string name;
  JType type = JType::kString;
  std::string description;
  bool required = false;
};

struct Request {
  const http::Request& http;  // method, target, headers, body, remote address, listener
  std::map<std::string, std::string> path;  // {name} segments of the route path
  nlohmann::json body;                      // validated JSON body (null without a schema)
  std::string actor;                        // principal name or the authenticated device id
  Principal principal;                      // Auth::kAdmin routes
  // Persons (identity codes) a list handler returned with names and phones: each person
  // not yet seen this hour counts for the risk warning like a single view (R4.2.2.1).
  std::vector<std::string> persons_listed;

  const std::string& Path(const std::string& name) const;
  std::optional<std::string> Query(const std::string& name) const;
  // An integer query parameter in [lo, hi]; 400 bad_request when malformed or out of range.
  int64_t QueryInt(const std::string& name, int64_t fallback, int64_t lo, int64_t hi) const;
};

struct Reply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  // A streamed answer (MJPEG live view): when set, the body is ignored and the response is
  // sent chunked, one chunk per step STREAM yields, until it yields kEnd. STREAM runs on an
  // I/O thread and must not block (http::StreamPull); STREAM_END runs once the stream is over
  // (success = the client got all of it).
  http::StreamPull stream;
  std::function<void(bool success)> stream_end;
  static Reply Json(const nlohmann::json& j, int status = 200);
  // A JPEG image (photos, snapshots, frames).
  static Reply Jpeg(std::string bytes);
};

using Handler = std::function<Reply(Request&)>;

enum class BodyKind { kNone, kJson, kJsonOrMultipart };

struct Route {
  std::string method;  // GET, POST, PUT, PATCH, DELETE
  std::string path;    // "/api/v1/persons/{code}"
  std::string summary;
  std::string tag;
  Auth auth = Auth::kAdmin;
  std::vector<QueryParam> query;
  std::optional<Schema> body;  // validated when present (BodyKind::kJson)
  BodyKind body_kind = BodyKind::kNone;
  std::string response_description = "OK";
  std::string response_type = "application/json";
  // The permission a user or API token needs for an Auth::kAdmin route (server/rbac.h):
  // "archive.read", "events.read", ... Every kAdmin route must name one.
  std::string permission;
  // Further permissions that also open the route; the handler decides what each may do
  // (PATCH /users/{username}: users.manage for ordinary accounts, roles.manage for
  // administrators').
  std::vector<std::string> other_permissions;
  Handler handler;
  // Whether P holds the route's permission or one of the others.
  bool Allows(const Principal& p) const;

  // Chained from Router::Add.
  Route& Query(std::vector<QueryParam> q) { return query = std::move(q), *this; }
  Route& Body(Schema s, BodyKind kind = BodyKind::kJson) {
    return body = std::move(s), body_kind = kind, *this;
  }
  Route& Perm(std::string p) { return permission = std::move(p), *this; }
  Route& OrPerm(std::string p) { return other_permissions.push_back(std::move(p)), *this; }
  Route& Returns(std::string type, std::string description) {
    return response_type = std::move(type), response_description = std::move(description), *this;
  }
  // GA/T 1400 routes (/VIID/...) are also served on the camera listener; nothing else is.
  bool OnCameraListener() const { return path.rfind("/VIID/", 0) == 0; }
};

// How the table authenticates requests and signs device responses (server.cpp).
struct AuthHooks {
  // Authenticates a user session or API token, or throws ApiError(401 / 423).
  std::function<Principal(const http::Request&)> admin;
  // Verifies a signed device request (time, signature, nonce); returns the device id or
  // throws ApiError(401).
  std::function<std::string(const http::Request&)> device;
  // Base64 signature of a device response.
  std::function<std::string(const std::string& device, const std::string& nonce, int status,
                            const std::string& body)>
      sign;
  // After every Auth::kAdmin request that authenticated (audit of views and refusals,
  // risk counting); may be empty.
  std::function<void(const Route&, const Request&, int status)> after;
  // Before the handler of an Auth::kAdmin route whose permission the principal holds:
  // throws ApiError(404) when the path names an object outside the principal's sites
  // (server/site_scope.h); may be empty.
  std::function<void(const Route&, const Request&)> scope;
};

// The JSON error reply {"error": {"code", "message"}} with STATUS.
http::Response ErrorResponse(int status, const std::string& code, const std::string& message);

class Router {
 public:
  // Registers a route; chain .Query() / .Body() / .Returns() on the result (before the
  // next Add).
  Route& Add(std::string method, std::string path, std::string tag, Auth auth, std::string summary,
             Handler handler);
  // An Auth::kAdmin route and the permission it needs (server/rbac.h).
  Route& Add(std::string method, std::string path, std::string tag, Auth auth,
             std::string permission, std::string summary, Handler handler) {
    return Add(std::move(method), std::move(path), std::move(tag), auth, std::move(summary),
               std::move(handler))
        .Perm(std::move(permission));
  }
  const std::vector<Route>& routes() const { return routes_; }

  // Takes the hooks and prepares the table for Dispatch (after the last Add). Throws
  // Error(kInternal) when an Auth::kAdmin route names no permission or an unknown one, or a
  // route has a method the table cannot serve.
  void Install(AuthHooks hooks);
  // Answers REQ with the first route (in the order they were added) whose method and path
  // match, with its error and compression handling; HEAD runs the GET route. On the camera
  // listener only GA/T 1400 routes match. nullopt when no route matches (the caller serves
  // the console's files or a 404). Thread-safe after Install.
  std::optional<http::Response> Dispatch(const http::Request& req) const;

  // OpenAPI 3.0.3 document of every route.
  nlohmann::json OpenApi(const std::string& title, const std::string& version) const;

 private:
  std::vector<Route> routes_;
  AuthHooks hooks_;
  std::vector<std::vector<std::string>> segments_;  // per route: literal or "{name}" segments
  bool installed_ = false;
};

// Standard paging query parameters (limit 1..1000, default 50; offset ≥ 0).
std::vector<QueryParam> PagingParams(std::vector<QueryParam> more = {});
struct Paging {
  int64_t limit = 50;
  int64_t offset = 0;
};
Paging ReadPaging(const Request& r);
// {"items": ITEMS, "total": TOTAL, "limit": …, "offset": …}
nlohmann::json PageJson(nlohmann::json items, int64_t total, const Paging& p);

}  // namespace anju::server
