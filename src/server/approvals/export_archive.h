// The contents of a photo export (R4.2.1.1): a tar archive of watermarked JPEGs
// and a manifest, which the export service (export_service.h) then encrypts with the
// requester's passphrase.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace anju::server {

// A ustar archive (libarchive) of FILES (path inside the archive, bytes), each with mode
// 0600 and modification time MTIME_S. Throws Error(kIo) when libarchive fails.
std::string TarArchive(const std::vector<std::pair<std::string, std::string>>& files,
                       int64_t mtime_s);

// JPEG with TEXT (ASCII) drawn across its bottom edge, so a copied photo still names the
// export it came from. Throws Error(kInvalidArgument) when JPEG does not decode.
std::string WatermarkJpeg(const std::string& jpeg, const std::string& text);

}  // namespace anju::server
