#include "core/sha256.h"

#include <openssl/evp.h>

#include "core/error.h"

namespace anju {

std::string Sha256Hex(const void* data, size_t size) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data, size, md, &len, EVP_sha256(), nullptr) != 1)
    throw Error(ErrorCode::kInternal, "SHA-256 unavailable");
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i)
    out.push_back(hex[md[i] >> 4]), out.push_back(hex[md[i] & 15]);
  return out;
}

}  // namespace anju
