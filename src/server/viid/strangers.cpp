#include "server/viid/strangers.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/error.h"
#include "crypto/envelope.h"
#include "server/storage/stranger_repo.h"
#include "server/viid/common.h"

namespace anju::server {

using cameras::BytesFeature;
using cameras::FeatureBytes;
using storage::StrangerRepo;

namespace {
std::string CentroidAad(int64_t id) {
  return "anju-stranger/v1/" + std::to_string(id);
}
}  // namespace

StrangerDirectory::StrangerDirectory(ViidContext& ctx, float threshold)
    : ctx_(ctx), clusters_(threshold) {
  LoadNewer();
}

void StrangerDirectory::LoadNewer() {
  std::lock_guard lock(load_mu_);
  std::vector<storage::StrangerCentroidRow> rows;
  {
    auto conn = ctx_.db().Acquire();
    rows = StrangerRepo::Centroids(conn, loaded_up_to_);
  }
  for (const auto& row : rows) {
    loaded_up_to_ = std::max(loaded_up_to_, row.id);
    if (!clusters_.Centroid(row.id).empty()) continue;  // this process's own
    try {
      const auto c =
          crypto::Open(ctx_.key(), row.centroid_sealed, crypto::AsBytes(CentroidAad(row.id)));
      clusters_.Load(row.id, BytesFeature(c), row.members);
    } catch (const Error& e) {
      spdlog::error("viid: stranger {} does not open: {}", row.id, e.what());
    }
  }
}

void StrangerDirectory::Reload(db::Conn& conn, int64_t id) {
  const auto row = StrangerRepo::Centroid(conn, id);
  if (row) {
    try {
      const auto c =
          crypto::Open(ctx_.key(), row->centroid_sealed, crypto::AsBytes(CentroidAad(row->id)));
      clusters_.Load(row->id, BytesFeature(c), row->members);
      return;
    } catch (const Error& e) {
      spdlog::error("viid: stranger {} does not open: {}", row->id, e.what());
    }
  }
  clusters_.Remove({id});
}

int64_t StrangerDirectory::Assign(std::span<const float> feature, int64_t time_ms,
                                  const std::string& capture_id, const std::string& device) {
  const bool shared = ctx_.deps().distributed;
  if (shared && clusters_.Nearest(feature).cluster == 0) LoadNewer();
  // Past a few conflicts in a row (a cluster grown by many processes at once), the last
  // write wins, as with one process.
  constexpr int kAttempts = 5;
  for (int attempt = 1;; ++attempt) {
    const StrangerAssignment a = clusters_.Assign(feature, [&] {
      auto conn = ctx_.db().Acquire();
      return StrangerRepo::NextId(conn);
    });
    const auto sealed = crypto::Seal(ctx_.key(), FeatureBytes(clusters_.Centroid(a.cluster)),
                                     crypto::AsBytes(CentroidAad(a.cluster)));
    const storage::StrangerSighting row{a.cluster, sealed, a.members, time_ms, capture_id, device};
    auto conn = ctx_.db().Acquire();
    if (!shared || a.created || attempt == kAttempts) {
      StrangerRepo::Upsert(conn, row);
      return a.cluster;
    }
    if (StrangerRepo::Grow(conn, row, a.members - 1)) return a.cluster;
    Reload(conn, a.cluster);  // grown by another process (or deleted by retention) meanwhile
  }
}

StrangerPage StrangerDirectory::List(const StrangerQuery& q) {
  auto conn = ctx_.db().Acquire();
  const int64_t to = q.to_ms > 0 ? q.to_ms : (int64_t(1) << 53);
  StrangerPage page;
  page.limit = q.limit;
  page.offset = q.offset;
  for (const auto& s : StrangerRepo::List(conn, q.from_ms, to, q.device, q.min_count, q.limit,
                                          q.offset, q.buildings)) {
    StrangerSummary it{s.id, s.count, s.first_ms, s.last_ms, s.devices, {}, std::nullopt};
    for (auto& p : StrangerRepo::Places(conn, s.id, q.from_ms, to, q.buildings)) {
      it.places.push_back({p.device_id, p.place, p.building_id, p.unit_id, p.count, p.last_ms});
      it.latest_capture = std::move(p.latest_capture);
    }
    page.items.push_back(std::move(it));
  }
  page.total = StrangerRepo::Count(conn, q.from_ms, to, q.device, q.buildings);
  return page;
}

StrangerDetail StrangerDirectory::Get(int64_t id,
                                      const std::optional<std::vector<int64_t>>& buildings) {
  auto conn = ctx_.db().Acquire();
  const auto s = StrangerRepo::Get(conn, id, buildings);
  if (!s) throw Error(ErrorCode::kNotFound, "不存在 / not found: stranger " + std::to_string(id));
  return {id, s->count, s->first_ms, s->last_ms, s->first_capture, s->last_capture, s->last_device};
}

void StrangerDirectory::Forget(db::Conn& conn, const std::vector<std::string>& capture_ids,
                               int64_t before_ms) {
  for (const auto& id : capture_ids) StrangerRepo::ForgetCapture(conn, id);
  clusters_.Remove(StrangerRepo::DeleteIdle(conn, before_ms));
}

}  // namespace anju::server
