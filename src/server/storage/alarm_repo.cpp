#include "server/storage/alarm_repo.h"

namespace anju::server::storage {

namespace {

constexpr const char* kAlarmColumns =
    "id, event_id, device_id, type, severity, door, person, time_ms, description, state, "
    "acknowledged_by, acknowledged_ms, acknowledge_note, closed_by, closed_ms, close_note";

AlarmRow ReadAlarm(const db::Stmt& s) {
  AlarmRow a;
  a.id = s.Int(0);
  a.event_id = s.Text(1);
  a.device_id = s.Text(2);
  a.type = s.Text(3);
  a.severity = s.Text(4);
  a.door = s.Text(5);
  a.person = s.Text(6);
  a.time_ms = s.Int(7);
  a.description = s.Text(8);
  a.state = s.Text(9);
  a.acknowledged_by = s.Text(10);
  a.acknowledged_ms = s.Int(11);
  a.acknowledge_note = s.Text(12);
  a.closed_by = s.Text(13);
  a.closed_ms = s.Int(14);
  a.close_note = s.Text(15);
  return a;
}

EventWhere WhereOf(const AlarmFilter& f) {
  EventWhere w;
  if (f.from_ms) w.Add("time_ms >= ?", f.from_ms);
  if (f.to_ms) w.Add("time_ms < ?", f.to_ms);
  if (!f.state.empty()) w.Add("state = ?", f.state);
  if (!f.type.empty()) w.Add("type = ?", f.type);
  if (!f.door.empty()) w.Add("door = ?", f.door);
  if (!f.device.empty()) w.Add("device_id = ?", f.device);
  if (f.devices) w.AddIn("device_id", *f.devices);
  return w;
}

}  // namespace

AlarmRepo::Writer::Writer(db::Conn& c)
    : insert_(c,
              "INSERT INTO alarms(event_id, device_id, type, severity, door, person, time_ms, "
              "description, state) VALUES(?,?,?,?,?,?,?,?,'new') "
              "ON CONFLICT(event_id) DO NOTHING") {}

void AlarmRepo::Writer::Insert(const AlarmRow& a) {
  insert_.Reset()
      .Bind(1, std::string_view(a.event_id))
      .Bind(2, std::string_view(a.device_id))
      .Bind(3, std::string_view(a.type))
      .Bind(4, std::string_view(a.severity))
      .Bind(5, std::string_view(a.door))
      .Bind(6, std::string_view(a.person))
      .Bind(7, a.time_ms)
      .Bind(8, std::string_view(a.description));
  insert_.Step();
}

int64_t AlarmRepo::Count(db::Conn& c, const AlarmFilter& f) {
  const EventWhere w = WhereOf(f);
  db::Stmt s(c, "SELECT count(*) FROM alarms" + w.sql);
  w.Bind(s);
  return s.Step() ? s.Int(0) : 0;
}

std::vector<AlarmRow> AlarmRepo::List(db::Conn& c, const AlarmFilter& f, int64_t limit,
                                      int64_t offset) {
  const EventWhere w = WhereOf(f);
  db::Stmt s(c, std::string("SELECT ") + kAlarmColumns + " FROM alarms" + w.sql +
                    " ORDER BY time_ms DESC, id DESC LIMIT ? OFFSET ?");
  int i = w.Bind(s);
  s.Bind(i++, limit);
  s.Bind(i++, offset);
  std::vector<AlarmRow> out;
  while (s.Step()) out.push_back(ReadAlarm(s));
  return out;
}

std::optional<AlarmRow> AlarmRepo::Get(db::Conn& c, int64_t id) {
  db::Stmt s(c, std::string("SELECT ") + kAlarmColumns + " FROM alarms WHERE id = ?");
  s.Bind(1, id);
  if (!s.Step()) return std::nullopt;
  return ReadAlarm(s);
}

std::optional<std::string> AlarmRepo::State(db::Conn& c, int64_t id) {
  db::Stmt s(c, "SELECT state FROM alarms WHERE id = ?");
  s.Bind(1, id);
  if (!s.Step()) return std::nullopt;
  return s.Text(0);
}

void AlarmRepo::SetState(db::Conn& c, int64_t id, const std::string& from, const std::string& to,
                         const std::string& actor, const std::string& note, int64_t now_ms) {
  const char* sql =
      to == "acknowledged"
          ? "UPDATE alarms SET state = ?, acknowledged_by = ?, acknowledged_ms = ?, "
            "acknowledge_note = ? WHERE id = ?"
          : "UPDATE alarms SET state = ?, closed_by = ?, closed_ms = ?, close_note = ? "
            "WHERE id = ?";
  db::Stmt up(c, sql);
  up.Bind(1, std::string_view(to))
      .Bind(2, std::string_view(actor))
      .Bind(3, now_ms)
      .Bind(4, std::string_view(note))
      .Bind(5, id);
  up.Step();
  db::Stmt log(c,
               "INSERT INTO alarm_actions(alarm_id, from_state, to_state, actor, note, at_ms) "
               "VALUES(?,?,?,?,?,?)");
  log.Bind(1, id)
      .Bind(2, std::string_view(from))
      .Bind(3, std::string_view(to))
      .Bind(4, std::string_view(actor))
      .Bind(5, std::string_view(note))
      .Bind(6, now_ms);
  log.Step();
}

void AlarmRepo::DeleteClosedOf(db::Conn& c, const std::vector<std::string>& event_ids) {
  db::Stmt del_actions(c,
                       "DELETE FROM alarm_actions WHERE alarm_id IN (SELECT id FROM alarms WHERE "
                       "event_id = ? AND state = 'closed')");
  db::Stmt del_alarm(c, "DELETE FROM alarms WHERE event_id = ? AND state = 'closed'");
  for (auto& id : event_ids) {
    del_actions.Reset().Bind(1, std::string_view(id));
    del_actions.Step();
    del_alarm.Reset().Bind(1, std::string_view(id));
    del_alarm.Step();
  }
}

void AlarmRepo::DeleteClosedOfEventsIn(db::Conn& c, int64_t from_ms, int64_t to_ms) {
  const char* closed =
      "SELECT id FROM alarms WHERE state = 'closed' AND event_id IN (SELECT id FROM events "
      "WHERE time_ms >= ?1 AND time_ms < ?2)";
  db::Stmt del_actions(c,
                       std::string("DELETE FROM alarm_actions WHERE alarm_id IN (") + closed + ")");
  del_actions.Bind(1, from_ms).Bind(2, to_ms).Run();
  db::Stmt del_alarms(c, std::string("DELETE FROM alarms WHERE id IN (") + closed + ")");
  del_alarms.Bind(1, from_ms).Bind(2, to_ms).Run();
}

}  // namespace anju::server::storage
