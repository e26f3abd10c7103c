// Admin authentication, in one place so that issue 7 (users and roles) can replace it:
// for now one API token, "Authorization: Bearer <token>", compared in constant time.
#pragma once

#include <httplib.h>

#include <string>

namespace anju::server {

class AdminAuth {
 public:
  explicit AdminAuth(std::string token) : token_(std::move(token)) {}
  // The actor name recorded in the audit log ("admin"); throws ApiError(401,
  // "unauthenticated") without a valid token.
  std::string Authenticate(const httplib::Request& req) const;

 private:
  std::string token_;
};

}  // namespace anju::server
