#include "server/viid/viid_types.h"

#include "server/viid/common.h"

namespace anju::server {

using nlohmann::json;

namespace {
template <typename T>
json OrNull(const std::optional<T>& v) {
  return v ? json(*v) : json();
}
}  // namespace

json ViidDevice::ToJson() const {
  return {{"id", id},
          {"name", name},
          {"place", place},
          {"building_id", OrNull(building_id)},
          {"unit_id", OrNull(unit_id)},
          {"linked_device", linked_device},
          {"status", status},
          {"registered", registered},
          {"last_seen_ms", last_seen_ms},
          {"online", registered && cameras::NowMs() - last_seen_ms < 3 * 60 * 1000},
          {"created_ms", created_ms}};
}

json ToJson(const CaptureRecord& r) {
  return {{"id", r.id},
          {"device_id", r.device_id},
          {"face_id", r.face_id},
          {"time_ms", r.time_ms},
          {"received_ms", r.received_ms},
          {"box", r.box},
          {"images", r.images},
          {"state", r.state},
          {"outcome", r.outcome},
          {"person", r.person.empty() ? json() : json(r.person)},
          {"score", OrNull(r.score)},
          {"second_score", OrNull(r.second_score)},
          {"stranger_id", OrNull(r.stranger_id)},
          {"quality", r.quality},
          {"reasons", r.reasons},
          {"dark", r.dark},
          {"recognised_ms", r.recognised_ms},
          {"place", OrNull(r.place)},
          {"building_id", OrNull(r.building_id)},
          {"unit_id", OrNull(r.unit_id)},
          {"face_image", OrNull(r.face_image)}};
}

json ToJson(const CaptureDetail& d) {
  json c = ToJson(d.capture);
  json images = json::array();
  for (const auto& i : d.image_list)
    images.push_back({{"n", i.n},
                      {"type", i.type},
                      {"bytes", i.bytes},
                      {"width", i.width},
                      {"height", i.height}});
  c["image_list"] = std::move(images);
  c["clip_frames"] = d.clip_frames;
  return c;
}

json ToJson(const CapturePage& p) {
  json items = json::array();
  for (const auto& c : p.items) items.push_back(ToJson(c));
  return {
      {"items", std::move(items)}, {"total", p.total}, {"limit", p.limit}, {"offset", p.offset}};
}

json ToJson(const CaptureClip& c) {
  json frames = json::array();
  for (const auto& f : c.frames)
    frames.push_back({{"n", f.n},
                      {"offset_ms", f.offset_ms},
                      {"bytes", f.bytes},
                      {"width", f.width},
                      {"height", f.height}});
  return {{"capture_id", c.capture_id}, {"frames", std::move(frames)}};
}

json ToJson(const StrangerSummary& s) {
  json places = json::array();
  for (const auto& p : s.places)
    places.push_back({{"device_id", p.device_id},
                      {"place", p.place},
                      {"building_id", OrNull(p.building_id)},
                      {"unit_id", OrNull(p.unit_id)},
                      {"count", p.count},
                      {"last_ms", p.last_ms}});
  json out = {{"id", s.id},           {"count", s.count},     {"first_ms", s.first_ms},
              {"last_ms", s.last_ms}, {"devices", s.devices}, {"places", std::move(places)}};
  if (s.latest_capture) out["latest_capture"] = *s.latest_capture;
  return out;
}

json ToJson(const StrangerPage& p) {
  json items = json::array();
  for (const auto& s : p.items) items.push_back(ToJson(s));
  return {
      {"items", std::move(items)}, {"total", p.total}, {"limit", p.limit}, {"offset", p.offset}};
}

json ToJson(const StrangerDetail& s) {
  return {{"id", s.id},
          {"count", s.count},
          {"first_ms", s.first_ms},
          {"last_ms", s.last_ms},
          {"first_capture", s.first_capture},
          {"last_capture", s.last_capture},
          {"last_device", s.last_device}};
}

namespace {
void PutOutbox(json& out, const OutboxStatus& st) {
  out["pending"] = st.pending;
  out["max_attempts"] = st.max_attempts;
  out["oldest_ms"] = st.oldest_ms;
  out["last_error"] = st.last_error;
}
}  // namespace

json ToJson(const WebhookStatus& w) {
  json out = {{"url", w.url}};
  PutOutbox(out, w.outbox);
  return out;
}

json ToJson(const ForwardTarget& t) {
  return {{"kind", t.kind},         {"url", t.url},       {"username", t.username},
          {"captures", t.captures}, {"alarms", t.alarms}, {"keepalive_s", t.keepalive_s}};
}

json ToJson(const ForwardStatus& f) {
  json out = ToJson(f.target);
  PutOutbox(out, f.outbox);
  out["registered"] = f.session.registered;
  out["last_register_ms"] = f.session.last_register_ms;
  out["last_keepalive_ms"] = f.session.last_keepalive_ms;
  out["registrations"] = f.session.registrations;
  // Not registered: why, before any item's error (nothing is sent until it registers).
  if (!f.session.registered && !f.session.last_error.empty())
    out["last_error"] = f.session.last_error;
  return out;
}

json ToJson(const ViidCounters& c) {
  return {{"received", c.received},
          {"recognised", c.recognised},
          {"accepted", c.accepted},
          {"strangers", c.strangers},
          {"rejected", c.rejected},
          {"no_face", c.no_face},
          {"failed", c.failed},
          {"alarms", c.alarms},
          {"queued", c.queued},
          {"busy", c.busy},
          {"latency_mean_ms", c.latency_mean_ms},
          {"latency_max_ms", c.latency_max_ms},
          {"clusters", c.clusters}};
}

}  // namespace anju::server
