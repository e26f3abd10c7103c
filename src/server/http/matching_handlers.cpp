// Per-site security levels (docs/matching.md, "Per-site calibration";
// server/matching/site_thresholds.h): read-only, like the other site reads.
#include <nlohmann/json.hpp>
#include <string>

#include "server/http/handlers.h"
#include "server/http/router.h"
#include "server/matching/site_thresholds.h"
#include "server/storage/site_scope.h"

namespace anju::server {

void RegisterMatchingHandlers(Router& router, SiteThresholds& thresholds) {
  router
      .Add("GET", "/api/v1/sites/{id}/thresholds", "places", Auth::kAdmin, "archive.read",
           "The security levels in force at a site: calibrated on its own gallery after "
           "enrolments (source \"site\"), else the shipped levels (\"base\")",
           [&thresholds](Request& r) {
             const std::string id = r.Path("id");
             if (id.empty() || id.size() > 18 ||
                 id.find_first_not_of("0123456789") != std::string::npos)
               throw Error(ErrorCode::kNotFound, "不存在 / not found: site " + id);
             return Reply::Json(thresholds.Describe(SiteScope(r.principal), std::stoll(id)));
           })
      .Returns("application/json",
               "{site_id, source: site|base|none, automatic, pending, levels: {high, normal, low: "
               "{threshold, margin, target_fmr, base}}, created, created_ms, persons, templates, "
               "kept_base, report}");
}

}  // namespace anju::server
