// Random identifiers: RFC 4122 version-4 UUIDs from the kernel's random source (event ids,
// outbox entries, captures). One implementation for every module.
#pragma once

#include <string>

namespace anju {

// "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx", lower case. Throws Error(kInternal) only when the
// kernel has no randomness to give.
std::string NewUuid();

// Whether TEXT has that shape (any version, lower or upper case).
bool IsUuid(const std::string& text);

}  // namespace anju
