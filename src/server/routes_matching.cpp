// Per-site security levels (docs/matching.md, "Per-site calibration";
// server/matching/site_thresholds.h): read-only, like the other site reads.
#include <nlohmann/json.hpp>

#include "server/server_state.h"
#include "server/storage/site_scope.h"
#include "server/storage/site_thresholds_repo.h"

namespace anju::server {

using nlohmann::json;

void Server::Impl::AddMatchingRoutes() {
  router
      .Add("GET", "/api/v1/sites/{id}/thresholds", "places", Auth::kAdmin, "archive.read",
           "The security levels in force at a site: calibrated on its own gallery after "
           "enrolments (source \"site\"), else the shipped levels (\"base\")",
           [this](Request& r) {
             const std::string id = r.Path("id");
             if (id.empty() || id.size() > 18 ||
                 id.find_first_not_of("0123456789") != std::string::npos)
               NotFound("site " + id);
             const int64_t site = std::stoll(id);
             {
               auto conn = db->AcquireReader();
               // Outside the account's sites: answered as if it did not exist (site_scope.h).
               if (!storage::SiteThresholdsRepo::SiteExists(conn, site) ||
                   !SiteScope(r.principal).HasSite(site))
                 NotFound("site " + id);
             }
             return Reply::Json(site_thresholds->Describe(site));
           })
      .Returns("application/json",
               "{site_id, source: site|base|none, automatic, pending, levels: {high, normal, low: "
               "{threshold, margin, target_fmr, base}}, created, created_ms, persons, templates, "
               "kept_base, report}");
}

}  // namespace anju::server
