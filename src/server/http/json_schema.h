// A small JSON schema used twice: to validate every request body (unknown fields and
// wrong types are refused with 400, so a typo never silently does nothing) and to write
// the same shapes into the OpenAPI document. One declaration, so the two cannot drift.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace anju::server {

enum class JType { kString, kInteger, kNumber, kBoolean, kObject, kArray, kAny };

struct Prop;

struct Schema {
  JType type = JType::kAny;
  std::string description;
  bool nullable = false;
  bool open = false;  // object: other fields allowed (free-form payloads)
  std::vector<Prop> properties;
  std::vector<Schema> items;  // array: exactly one element, the item schema
  std::vector<std::string> enum_values;
  std::optional<int64_t> minimum, maximum;  // integers / numbers
  std::optional<size_t> max_length;         // strings (bytes) / arrays (items)
  std::string pattern;                      // documentation only (checked by the handler)

  Schema& Nullable() { return nullable = true, *this; }
  Schema& Open() { return open = true, *this; }
  Schema& Enum(std::vector<std::string> values) { return enum_values = std::move(values), *this; }
  Schema& Range(int64_t lo, int64_t hi) { return minimum = lo, maximum = hi, *this; }
  Schema& MaxLength(size_t n) { return max_length = n, *this; }
  Schema& Pattern(std::string p) { return pattern = std::move(p), *this; }
};

struct Prop {
  std::string name;
  Schema schema;
  bool required = false;
};

Schema Str(std::string description = {});
Schema Int(std::string description = {});
Schema Num(std::string description = {});
Schema Bool(std::string description = {});
Schema Any(std::string description = {});
Schema Arr(Schema items, std::string description = {});
Schema Obj(std::vector<Prop> properties, std::string description = {});
inline Prop Req(std::string name, Schema s) {
  return Prop{std::move(name), std::move(s), true};
}
inline Prop Opt(std::string name, Schema s) {
  return Prop{std::move(name), std::move(s), false};
}

// Throws protocol::ApiError(400, "unknown_field" | "bad_request") naming the field path
// (e.g. "windows[2].start") when VALUE does not fit SCHEMA.
void Validate(const nlohmann::json& value, const Schema& schema, const std::string& where = "");

// The OpenAPI 3.0 schema object for SCHEMA.
nlohmann::json ToOpenApi(const Schema& schema);

}  // namespace anju::server
