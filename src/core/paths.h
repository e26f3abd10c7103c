// Where anju looks for its models and evaluation data by default.
#pragma once

#include <filesystem>

namespace anju {

// $ANJU_MODEL_DIR, else ~/.cache/anju/models/default (filled by scripts/setup).
std::filesystem::path DefaultModelDir();

// $ANJU_DATA_DIR, else the `shared/data` folder next to the source checkout, if any.
// Returns an empty path when no evaluation data is present.
std::filesystem::path DefaultDataDir();

}  // namespace anju
