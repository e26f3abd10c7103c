// Where anju looks for its models and evaluation data by default.
#pragma once

#include <filesystem>
#include <string>

namespace anju {

// $ANJU_MODEL_DIR, else ~/.cache/anju/models/default (filled by scripts/setup).
std::filesystem::path DefaultModelDir();

// $ANJU_DATA_DIR, else the `shared/data` folder next to the source checkout, if any.
// Returns an empty path when no evaluation data is present.
std::filesystem::path DefaultDataDir();

// PATH, which must be absolute, made canonical (symbolic links followed) and checked to lie
// inside ROOT: a path given over the API names only what the operator set aside for it
// (backups, imports; R4.2.1.1). Error(kInvalidArgument) when PATH is relative,
// Error(kPermissionDenied) when it leads outside ROOT — decided before anything touches the
// file, so a refusal says nothing about what exists there. WHAT names PATH in the messages.
std::filesystem::path FolderInside(const std::filesystem::path& root, const std::string& path,
                                   const std::string& what);

}  // namespace anju
