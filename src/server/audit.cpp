#include "server/audit.h"

#include <chrono>

namespace anju::server {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void Audit(Database& db, const std::string& actor, const std::string& action,
           const std::string& object, const nlohmann::json& detail) {
  Stmt s(db.handle(),
         "INSERT INTO audit(time_ms, actor, action, object, detail) VALUES(?,?,?,?,?)");
  s.Bind(1, NowMs()).Bind(2, actor).Bind(3, action).Bind(4, object).Bind(5, detail.dump()).Run();
}

void History(Database& db, int64_t person_id, const std::string& action, const std::string& actor,
             const nlohmann::json& detail) {
  Stmt s(db.handle(),
         "INSERT INTO history(person_id, action, detail, actor, time_ms) VALUES(?,?,?,?,?)");
  s.Bind(1, person_id).Bind(2, action).Bind(3, detail.dump()).Bind(4, actor).Bind(5, NowMs()).Run();
}

}  // namespace anju::server
