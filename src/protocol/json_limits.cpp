#include "protocol/json_limits.h"

#include <string>
#include <vector>

#include "core/error.h"

namespace anju::protocol {
namespace {

using nlohmann::json;
using Event = json::parse_event_t;

[[noreturn]] void Refuse(const std::string& zh, const std::string& en) {
  throw Error(ErrorCode::kInvalidArgument, zh + " / " + en);
}

// Called by the parser for every event while it builds the document, so a limit stops
// the parse where it is crossed. Keeps one counter per open container.
class Guard {
 public:
  explicit Guard(const JsonLimits& limits) : limits_(limits) {}

  bool operator()(int depth, Event event, const json& parsed) {
    switch (event) {
      case Event::object_start:
      case Event::array_start:
        if (depth + 1 > limits_.max_depth)
          Refuse("JSON 嵌套超过 " + std::to_string(limits_.max_depth) + " 层",
                 "JSON nested deeper than " + std::to_string(limits_.max_depth) + " levels");
        open_.push_back({0, event == Event::array_start});
        break;
      case Event::key:
        if (parsed.is_string() &&
            parsed.get_ref<const std::string&>().size() > limits_.max_key_bytes)
          Refuse("JSON 键过长",
                 "JSON key longer than " + std::to_string(limits_.max_key_bytes) + " bytes");
        Count();  // a member of an object
        break;
      case Event::value:
        if (parsed.is_string() &&
            parsed.get_ref<const std::string&>().size() > limits_.max_string_bytes)
          Refuse("JSON 字符串过长",
                 "JSON string longer than " + std::to_string(limits_.max_string_bytes) + " bytes");
        if (InArray()) Count();
        break;
      case Event::object_end:
      case Event::array_end:
        if (!open_.empty()) open_.pop_back();
        if (InArray()) Count();  // the closed container is an element of its parent
        break;
    }
    return true;
  }

 private:
  struct Open {
    size_t items;
    bool array;
  };
  bool InArray() const { return !open_.empty() && open_.back().array; }
  void Count() {
    if (!open_.empty() && ++open_.back().items > limits_.max_items)
      Refuse("JSON 数组或对象的元素过多",
             "JSON array or object with more than " + std::to_string(limits_.max_items) + " items");
  }

  const JsonLimits& limits_;
  std::vector<Open> open_;
};

}  // namespace

json ParseJson(std::string_view text, const JsonLimits& limits) {
  if (text.size() > limits.max_bytes)
    Refuse("JSON 过大", "JSON larger than " + std::to_string(limits.max_bytes) + " bytes (" +
                            std::to_string(text.size()) + ")");
  Guard guard(limits);
  try {
    return json::parse(text.begin(), text.end(), [&guard](int depth, Event event, json& parsed) {
      return guard(depth, event, parsed);
    });
  } catch (const json::exception& e) {
    Refuse("不是有效的 JSON", std::string("malformed JSON: ") + e.what());
  }
}

}  // namespace anju::protocol
