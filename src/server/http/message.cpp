#include "server/http/message.h"

#include <algorithm>
#include <cctype>

namespace anju::server::http {

namespace {

char Lower(char c) {
  return char(std::tolower(static_cast<unsigned char>(c)));
}

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return Lower(x) == Lower(y); });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int Hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The value of parameter NAME in a header value such as
// `form-data; name="image"; filename="a.jpg"` or `multipart/form-data; boundary=xyz`.
// Quoted strings may hold ';' and backslash escapes.
std::optional<std::string> HeaderParam(std::string_view value, std::string_view name) {
  size_t i = value.find(';');
  while (i != std::string_view::npos && i < value.size()) {
    ++i;  // past ';'
    while (i < value.size() && (value[i] == ' ' || value[i] == '\t')) ++i;
    const size_t eq = value.find('=', i);
    if (eq == std::string_view::npos) return std::nullopt;
    const std::string_view key = Trim(value.substr(i, eq - i));
    size_t j = eq + 1;
    while (j < value.size() && (value[j] == ' ' || value[j] == '\t')) ++j;
    std::string v;
    if (j < value.size() && value[j] == '"') {
      for (++j; j < value.size() && value[j] != '"'; ++j) {
        if (value[j] == '\\' && j + 1 < value.size()) ++j;
        v += value[j];
      }
      if (j < value.size()) ++j;  // closing quote
      i = value.find(';', j);
    } else {
      const size_t end = value.find(';', j);
      v = std::string(Trim(value.substr(j, end == std::string_view::npos ? end : end - j)));
      i = end;
    }
    if (IEquals(key, name)) return v;
  }
  return std::nullopt;
}

}  // namespace

bool CaseInsensitiveLess::operator()(std::string_view a, std::string_view b) const {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(),
                                      [](char x, char y) { return Lower(x) < Lower(y); });
}

const char* ListenerName(Listener l) {
  return l == Listener::kCamera ? "camera" : "main";
}

std::string Request::Header(std::string_view name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

bool Request::HasHeader(std::string_view name) const {
  return headers.find(name) != headers.end();
}

std::optional<std::string> Request::Param(std::string_view name) const {
  auto it = params.find(std::string(name));
  if (it == params.end()) return std::nullopt;
  return it->second;
}

bool Request::IsMultipartFormData() const {
  const std::string ct = Header("Content-Type");
  return ct.size() >= 19 && IEquals(std::string_view(ct).substr(0, 19), "multipart/form-data");
}

const FormPart* Request::Part(std::string_view name) const {
  for (const auto& p : form)
    if (p.name == name) return &p;
  return nullptr;
}

void Response::Set(const std::string& name, std::string value) {
  headers.erase(name);
  headers.emplace(name, std::move(value));
}

std::string Response::Header(std::string_view name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

std::string PercentDecode(std::string_view s, bool plus_as_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '%' && i + 2 < s.size()) {
      const int hi = Hex(s[i + 1]), lo = Hex(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += char(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += (plus_as_space && c == '+') ? ' ' : c;
  }
  return out;
}

void ParseTarget(Request& req) {
  std::string_view t = req.target;
  const size_t q = t.find('?');
  req.path = PercentDecode(t.substr(0, q), false);
  req.params.clear();
  if (q == std::string_view::npos) return;
  std::string_view query = t.substr(q + 1);
  if (const size_t hash = query.find('#'); hash != std::string_view::npos)
    query = query.substr(0, hash);
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    req.params.emplace(
        PercentDecode(pair.substr(0, eq), true),
        eq == std::string_view::npos ? std::string() : PercentDecode(pair.substr(eq + 1), true));
  }
}

std::optional<std::vector<FormPart>> ParseMultipart(std::string_view content_type,
                                                    std::string_view body) {
  const auto boundary = HeaderParam(content_type, "boundary");
  // RFC 2046 §5.1.1: 1 to 70 characters.
  if (!boundary || boundary->empty() || boundary->size() > 70) return std::nullopt;
  const std::string dash = "--" + *boundary;
  const std::string delimiter = "\r\n" + dash;
  // The first delimiter opens the body or follows a preamble line.
  size_t pos;
  if (body.substr(0, dash.size()) == dash) {
    pos = dash.size();
  } else {
    pos = body.find(delimiter);
    if (pos == std::string_view::npos) return std::nullopt;
    pos += delimiter.size();
  }
  constexpr size_t kMaxParts = 1000;
  std::vector<FormPart> parts;
  while (true) {
    if (body.substr(pos, 2) == "--") return parts;                               // close delimiter
    while (pos < body.size() && (body[pos] == ' ' || body[pos] == '\t')) ++pos;  // padding
    if (body.substr(pos, 2) != "\r\n") return std::nullopt;
    pos += 2;
    const size_t head_end = body.find("\r\n\r\n", pos);
    // A part without headers has its blank line right away.
    const bool no_headers = body.substr(pos, 2) == "\r\n";
    if (!no_headers && head_end == std::string_view::npos) return std::nullopt;
    const std::string_view head =
        no_headers ? std::string_view() : body.substr(pos, head_end - pos);
    pos = no_headers ? pos + 2 : head_end + 4;
    FormPart part;
    bool named = false;
    size_t line_start = 0;
    while (line_start < head.size()) {
      size_t line_end = head.find("\r\n", line_start);
      if (line_end == std::string_view::npos) line_end = head.size();
      const std::string_view line = head.substr(line_start, line_end - line_start);
      line_start = line_end + 2;
      const size_t colon = line.find(':');
      if (colon == std::string_view::npos) return std::nullopt;
      const std::string_view name = Trim(line.substr(0, colon));
      const std::string_view value = Trim(line.substr(colon + 1));
      if (IEquals(name, "Content-Disposition")) {
        if (auto n = HeaderParam(value, "name")) part.name = *n, named = true;
        if (auto f = HeaderParam(value, "filename")) part.filename = *f;
      } else if (IEquals(name, "Content-Type")) {
        part.content_type = std::string(value);
      }
    }
    if (!named) return std::nullopt;
    const size_t end = body.find(delimiter, pos);
    if (end == std::string_view::npos) return std::nullopt;
    part.content = std::string(body.substr(pos, end - pos));
    parts.push_back(std::move(part));
    if (parts.size() > kMaxParts) return std::nullopt;
    pos = end + delimiter.size();
  }
}

}  // namespace anju::server::http
