#include "server/admin_auth.h"

#include "crypto/bytes.h"
#include "protocol/api_error.h"

namespace anju::server {

std::string AdminAuth::Authenticate(const httplib::Request& req) const {
  const std::string header = req.get_header_value("Authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (header.size() > kBearer.size() && header.compare(0, kBearer.size(), kBearer) == 0 &&
      crypto::ConstantTimeEqual(crypto::AsBytes(std::string_view(header).substr(kBearer.size())),
                                crypto::AsBytes(token_)))
    return "admin";
  throw protocol::ApiError(401, "unauthenticated",
                           "需要管理员令牌 / admin token missing or wrong (Authorization: Bearer "
                           "<token from admin.token>)");
}

}  // namespace anju::server
