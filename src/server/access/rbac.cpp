#include "server/access/rbac.h"

#include <algorithm>
#include <map>

namespace anju::server {

const std::vector<std::pair<std::string, std::string>>& AllPermissions() {
  static const std::vector<std::pair<std::string, std::string>> p = {
      {"self", "本人会话与口令 / own session, password and TOTP"},
      {"archive.read", "查看档案 / read archives (persons, households, rooms)"},
      {"archive.write", "维护档案 / change archives"},
      {"archive.reveal", "查看完整证件号码（审计） / reveal full ID numbers (audited)"},
      {"photos.read", "查看人脸照片与抓拍 / view face photos and snapshots"},
      {"enrol", "人脸采集 / enrol faces"},
      {"devices.read", "查看设备 / read devices"},
      {"devices.manage", "管理设备 / manage devices and send commands"},
      {"events.read", "查看通行与告警 / read access events and alarms"},
      {"alarms.handle", "处置告警 / acknowledge and close alarms"},
      {"reports.read", "查看统计报表 / read reports"},
      {"export.request", "申请批量导出 / request bulk exports"},
      {"export.approve", "审批批量导出与删除 / approve bulk exports and deletions"},
      {"users.manage", "管理账号 / manage user accounts"},
      {"roles.manage", "分配角色与接口令牌 / grant roles and API tokens"},
      {"keys.manage", "密钥管理 / manage keys"},
      {"policy.manage", "安全策略与风险复核 / security policy and risk review"},
      {"audit.read", "查看与校验审计日志 / read and verify the audit log"},
      {"config.manage", "系统配置 / system configuration"},
      {"maintenance", "运维（备份、保留期） / backups and retention runs"},
      {"admin.cosign",
       "会签对安全管理员的变更 / co-sign changes to a security administrator's account"},
  };
  return p;
}

bool IsPermission(const std::string& p) {
  const auto& all = AllPermissions();
  return std::any_of(all.begin(), all.end(), [&](const auto& e) { return e.first == p; });
}

const std::vector<std::string>& AllRoles() {
  static const std::vector<std::string> r = {"sysadmin", "secadmin", "auditadmin",
                                             "operator", "viewer",   "installer"};
  return r;
}

bool IsRole(const std::string& role) {
  const auto& r = AllRoles();
  return std::find(r.begin(), r.end(), role) != r.end();
}

bool IsIntegrationRole(const std::string& role) {
  return role == "operator" || role == "viewer" || role == "installer";
}

bool IsAdminRole(const std::string& role) {
  return role == "sysadmin" || role == "secadmin" || role == "auditadmin";
}

const std::set<std::string>& RolePermissions(const std::string& role) {
  static const std::map<std::string, std::set<std::string>> m = {
      {"sysadmin",
       {"devices.read", "devices.manage", "users.manage", "config.manage", "maintenance",
        "reports.read", "admin.cosign"}},
      {"secadmin",
       {"roles.manage", "keys.manage", "policy.manage", "export.approve", "admin.cosign"}},
      {"auditadmin", {"audit.read", "admin.cosign"}},
      {"operator",
       {"archive.read", "archive.write", "archive.reveal", "photos.read", "enrol", "devices.read",
        "events.read", "alarms.handle", "reports.read", "export.request"}},
      {"viewer", {"archive.read", "devices.read", "events.read", "reports.read"}},
      // Installs and maintains terminals for the property office (an integrator's token).
      {"installer", {"devices.read", "devices.manage"}},
  };
  static const std::set<std::string> none;
  const auto it = m.find(role);
  return it == m.end() ? none : it->second;
}

std::set<std::string> PermissionsOf(const std::vector<std::string>& roles) {
  std::set<std::string> out{kPermSelf};
  for (const auto& r : roles) {
    const auto& p = RolePermissions(r);
    out.insert(p.begin(), p.end());
  }
  return out;
}

std::string CheckRoleSet(const std::vector<std::string>& roles) {
  int admins = 0;
  for (const auto& r : roles) {
    if (!IsRole(r)) return "未知角色 / unknown role: " + r;
    admins += IsAdminRole(r);
  }
  if (admins > 1)
    return "三权分立：一个账号只能担任系统、安全、审计管理员之一 / separation of duties: an "
           "account holds at most one of sysadmin, secadmin, auditadmin";
  return "";
}

std::string CheckTokenRoles(const std::vector<std::string>& roles) {
  if (roles.empty()) return "至少一个角色 / at least one role";
  for (const auto& r : roles) {
    if (!IsRole(r)) return "未知角色 / unknown role: " + r;
    if (!IsIntegrationRole(r))
      return "接口令牌只能持有集成角色（operator、viewer、installer） / API tokens carry "
             "integration roles only (operator, viewer, installer): " +
             r;
  }
  return "";
}

}  // namespace anju::server
