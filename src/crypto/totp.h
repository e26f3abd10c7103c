// Time-based one-time passwords (RFC 6238, HMAC-SHA1, 30 s, 6 digits) — what every
// authenticator app speaks — for the second factor of administrator accounts.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "crypto/bytes.h"

namespace anju::crypto {

// RFC 4648 base32 without padding (authenticator apps' secret format).
std::string ToBase32(ByteView data);
// Accepts upper/lower case, spaces and '=' padding; throws Error(kInvalidArgument).
Bytes FromBase32(std::string_view text);

// HOTP (RFC 4226) value for COUNTER, DIGITS decimal digits (zero-padded).
std::string Hotp(ByteView secret, uint64_t counter, int digits = 6);
// TOTP at Unix time T (seconds).
std::string Totp(ByteView secret, int64_t unix_seconds, int step = 30, int digits = 6);
// The time step CODE matches within ±WINDOW steps of UNIX_SECONDS, or nullopt. Callers
// remember the last accepted step to refuse a replayed code.
std::optional<int64_t> VerifyTotp(ByteView secret, std::string_view code, int64_t unix_seconds,
                                  int window = 1, int step = 30);
// otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=... for a QR code.
std::string TotpUri(std::string_view issuer, std::string_view account, ByteView secret);

}  // namespace anju::crypto
