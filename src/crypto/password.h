// Password hashing and passphrase keys with scrypt (a slow, salted, memory-hard KDF; SM3
// has no standard password KDF and PBKDF2 is cheap to attack on GPUs).
//
// A stored hash is self-describing, "scrypt$N$r$p$<salt b64>$<hash b64>", so the cost can
// be raised later without invalidating existing hashes.
#pragma once

#include <string>
#include <string_view>

#include "crypto/bytes.h"
#include "crypto/envelope.h"

namespace anju::crypto {

struct ScryptCost {
  uint64_t n = 1 << 15;  // ~50 ms and 32 MiB per hash on one core
  uint64_t r = 8;
  uint64_t p = 1;
};

std::string HashPassword(std::string_view password, ScryptCost cost = {});
// False for a wrong password or a malformed stored hash (never throws on bad input).
bool VerifyPassword(std::string_view password, std::string_view stored);

// A data key from a passphrase (exports the receiver opens with the passphrase).
DataKey KeyFromPassphrase(std::string_view passphrase, ByteView salt, ScryptCost cost = {});

// A file a person opens with a passphrase (approved exports): the text
// "ANJU-PASSPHRASE/1\n", one line of JSON HEADER (shown without the passphrase; the
// server adds the requester and approver as a watermark) with the scrypt salt and cost
// added, "\n", then Seal(key, plaintext, aad = that header line).
Bytes SealWithPassphrase(std::string_view passphrase, ByteView plaintext, std::string header_json);
// The plaintext and the header line; Error(kCrypto) for a wrong passphrase or a changed
// file, Error(kInvalidArgument) when it is not such a file.
Bytes OpenWithPassphrase(std::string_view passphrase, ByteView file, std::string* header_json);

}  // namespace anju::crypto
