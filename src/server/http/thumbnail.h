// Downscaled images for lists: the console shows face thumbnails beside names (events,
// alarms, captures, archives) and asks the image routes for `?size=N` instead of the
// full photo. Same route, same permission, same audit record: only the bytes are fewer.
#pragma once

#include <optional>
#include <string>

namespace anju::server {

struct Request;

// The `size` query parameter: the longer side in pixels, 16..1024; nullopt when absent,
// 400 bad_request when malformed or out of range.
std::optional<int> ThumbnailSize(const Request& r);

// JPEG (or PNG / BMP) BYTES scaled so that the longer side is at most SIZE pixels (aspect
// kept, area interpolation), re-encoded as JPEG quality 85. Returned unchanged when the
// image is already that small or cannot be decoded (the caller sends what it has).
std::string Thumbnail(std::string bytes, int size);

// The reply body of an image route: a thumbnail when the request asks for one.
std::string SizedImage(const Request& r, std::string bytes);

}  // namespace anju::server
