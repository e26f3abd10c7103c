#include "server/http/json_schema.h"

#include <algorithm>

#include "protocol/api_error.h"

namespace anju::server {

namespace {

Schema Make(JType t, std::string d) {
  Schema s;
  s.type = t;
  s.description = std::move(d);
  return s;
}

const char* TypeName(JType t) {
  switch (t) {
    case JType::kString:
      return "string";
    case JType::kInteger:
      return "integer";
    case JType::kNumber:
      return "number";
    case JType::kBoolean:
      return "boolean";
    case JType::kObject:
      return "object";
    case JType::kArray:
      return "array";
    case JType::kAny:
      break;
  }
  return "any";
}

[[noreturn]] void Bad(const std::string& where, const std::string& what) {
  const std::string field = where.empty() ? "body" : where;
  throw protocol::ApiError(400, "bad_request",
                           "字段 " + field + " 无效 / field " + field + ": " + what);
}

}  // namespace

Schema Str(std::string d) {
  return Make(JType::kString, std::move(d));
}
Schema Int(std::string d) {
  return Make(JType::kInteger, std::move(d));
}
Schema Num(std::string d) {
  return Make(JType::kNumber, std::move(d));
}
Schema Bool(std::string d) {
  return Make(JType::kBoolean, std::move(d));
}
Schema Any(std::string d) {
  return Make(JType::kAny, std::move(d));
}
Schema Arr(Schema items, std::string d) {
  Schema s = Make(JType::kArray, std::move(d));
  s.items.push_back(std::move(items));
  return s;
}
Schema Obj(std::vector<Prop> properties, std::string d) {
  Schema s = Make(JType::kObject, std::move(d));
  s.properties = std::move(properties);
  return s;
}

void Validate(const nlohmann::json& v, const Schema& s, const std::string& where) {
  if (v.is_null()) {
    if (s.nullable || s.type == JType::kAny) return;
    Bad(where, "must not be null, expected " + std::string(TypeName(s.type)));
  }
  switch (s.type) {
    case JType::kAny:
      return;
    case JType::kString: {
      if (!v.is_string()) Bad(where, "expected a string");
      const auto& text = v.get_ref<const std::string&>();
      if (s.max_length && text.size() > *s.max_length)
        Bad(where, "longer than " + std::to_string(*s.max_length) + " bytes");
      if (!s.enum_values.empty() &&
          std::find(s.enum_values.begin(), s.enum_values.end(), text) == s.enum_values.end()) {
        std::string list;
        for (const auto& e : s.enum_values) list += (list.empty() ? "" : ", ") + e;
        Bad(where, "must be one of: " + list);
      }
      return;
    }
    case JType::kInteger:
    case JType::kNumber: {
      if (s.type == JType::kInteger ? !v.is_number_integer() : !v.is_number())
        Bad(where,
            std::string("expected ") + (s.type == JType::kInteger ? "an integer" : "a number"));
      const double d = v.get<double>();
      if (s.minimum && d < double(*s.minimum))
        Bad(where, "must be at least " + std::to_string(*s.minimum));
      if (s.maximum && d > double(*s.maximum))
        Bad(where, "must be at most " + std::to_string(*s.maximum));
      return;
    }
    case JType::kBoolean:
      if (!v.is_boolean()) Bad(where, "expected true or false");
      return;
    case JType::kArray: {
      if (!v.is_array()) Bad(where, "expected an array");
      if (s.max_length && v.size() > *s.max_length)
        Bad(where, "more than " + std::to_string(*s.max_length) + " items");
      if (s.items.empty()) return;
      for (size_t i = 0; i < v.size(); ++i)
        Validate(v[i], s.items[0], where + "[" + std::to_string(i) + "]");
      return;
    }
    case JType::kObject: {
      if (!v.is_object()) Bad(where, "expected an object");
      const std::string prefix = where.empty() ? "" : where + ".";
      for (const auto& [key, value] : v.items()) {
        auto it = std::find_if(s.properties.begin(), s.properties.end(),
                               [&k = key](const Prop& p) { return p.name == k; });
        if (it == s.properties.end()) {
          if (s.open) continue;
          throw protocol::ApiError(400, "unknown_field",
                                   "未知字段 " + prefix + key + " / unknown field " + prefix + key);
        }
        Validate(value, it->schema, prefix + key);
      }
      for (const auto& p : s.properties)
        if (p.required && !v.contains(p.name))
          throw protocol::ApiError(
              400, "bad_request",
              "缺少字段 " + prefix + p.name + " / missing field " + prefix + p.name);
      return;
    }
  }
}

nlohmann::json ToOpenApi(const Schema& s) {
  nlohmann::json j = nlohmann::json::object();
  if (s.type != JType::kAny) j["type"] = TypeName(s.type);
  if (!s.description.empty()) j["description"] = s.description;
  if (s.nullable) j["nullable"] = true;
  if (!s.enum_values.empty()) j["enum"] = s.enum_values;
  if (s.minimum) j["minimum"] = *s.minimum;
  if (s.maximum) j["maximum"] = *s.maximum;
  if (!s.pattern.empty()) j["pattern"] = s.pattern;
  if (s.max_length) j[s.type == JType::kArray ? "maxItems" : "maxLength"] = *s.max_length;
  if (s.type == JType::kArray && !s.items.empty()) j["items"] = ToOpenApi(s.items[0]);
  if (s.type == JType::kObject) {
    nlohmann::json props = nlohmann::json::object();
    nlohmann::json required = nlohmann::json::array();
    for (const auto& p : s.properties) {
      props[p.name] = ToOpenApi(p.schema);
      if (p.required) required.push_back(p.name);
    }
    if (!s.properties.empty()) j["properties"] = props;
    if (!required.empty()) j["required"] = required;
    j["additionalProperties"] = s.open;
  }
  return j;
}

}  // namespace anju::server
