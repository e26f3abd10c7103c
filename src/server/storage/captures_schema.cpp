#include "server/storage/captures_schema.h"

#include <string>
#include <vector>

#include "server/storage/partitions.h"
#include "server/storage/platform_repo.h"

namespace anju::server::storage {

namespace {

const std::vector<std::string>& Migrations() {
  static const std::vector<std::string> m = {
      R"(CREATE TABLE viid_devices(id TEXT PRIMARY KEY, name TEXT NOT NULL, place TEXT NOT NULL,
  building_id INTEGER, unit_id INTEGER, linked_device TEXT NOT NULL DEFAULT '',
  realm TEXT NOT NULL, ha1_sealed BLOB NOT NULL, status TEXT NOT NULL DEFAULT 'active',
  registered INTEGER NOT NULL DEFAULT 0, last_seen_ms INTEGER NOT NULL DEFAULT 0,
  created_ms INTEGER NOT NULL);
CREATE TABLE captures(id TEXT PRIMARY KEY, device_id TEXT NOT NULL, face_id TEXT NOT NULL,
  time_ms INTEGER NOT NULL, received_ms INTEGER NOT NULL, box TEXT NOT NULL,
  images INTEGER NOT NULL, state TEXT NOT NULL, outcome TEXT NOT NULL DEFAULT '',
  person TEXT NOT NULL DEFAULT '', score REAL, second_score REAL, stranger_id INTEGER,
  quality TEXT NOT NULL DEFAULT '{}', reasons TEXT NOT NULL DEFAULT '[]',
  dark INTEGER NOT NULL DEFAULT 0, feature_sealed BLOB, recognised_ms INTEGER NOT NULL DEFAULT 0,
  UNIQUE(device_id, face_id));
CREATE INDEX captures_time ON captures(time_ms);
CREATE INDEX captures_device ON captures(device_id, time_ms);
CREATE INDEX captures_stranger ON captures(stranger_id, time_ms);
CREATE INDEX captures_person ON captures(person, time_ms);
CREATE INDEX captures_state ON captures(state);
CREATE TABLE capture_images(capture_id TEXT NOT NULL, n INTEGER NOT NULL, type TEXT NOT NULL,
  file TEXT NOT NULL, bytes INTEGER NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
  PRIMARY KEY(capture_id, n)) WITHOUT ROWID;
CREATE TABLE strangers(id INTEGER PRIMARY KEY, centroid_sealed BLOB NOT NULL,
  members INTEGER NOT NULL, first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL,
  first_capture TEXT NOT NULL, last_capture TEXT NOT NULL, last_device TEXT NOT NULL);
CREATE TABLE tenant_strangers(person TEXT NOT NULL, stranger_id INTEGER NOT NULL,
  time_ms INTEGER NOT NULL, capture_id TEXT NOT NULL, PRIMARY KEY(person, capture_id));
CREATE TABLE alert_rules(id INTEGER PRIMARY KEY, type TEXT NOT NULL, name TEXT NOT NULL,
  enabled INTEGER NOT NULL, params TEXT NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE alert_state(key TEXT PRIMARY KEY, last_ms INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE webhook_outbox(seq INTEGER PRIMARY KEY, body TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, next_ms INTEGER NOT NULL, created_ms INTEGER NOT NULL,
  last_error TEXT NOT NULL DEFAULT '');
CREATE TABLE settings(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;)",
      R"(CREATE TABLE forward_outbox(seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, body TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, next_ms INTEGER NOT NULL, created_ms INTEGER NOT NULL,
  last_error TEXT NOT NULL DEFAULT '');)",
      // Clips (frames around the best face), sealed like the images.
      R"(CREATE TABLE capture_clips(capture_id TEXT NOT NULL, n INTEGER NOT NULL,
  offset_ms INTEGER NOT NULL, file TEXT NOT NULL, bytes INTEGER NOT NULL,
  width INTEGER NOT NULL, height INTEGER NOT NULL, PRIMARY KEY(capture_id, n)) WITHOUT ROWID;)",
      // Stranger ids from one counter, so that workers in several processes never draw
      // the same one (SQLite has no sequences: a one-row table).
      R"(CREATE TABLE stranger_ids(next INTEGER NOT NULL);
INSERT INTO stranger_ids SELECT COALESCE(MAX(id), 0) + 1 FROM strangers;)",
      // Nothing: PostgreSQL's step 5 partitions the captures by month; SQLite keeps one
      // table each and retention deletes rows (docs/storage.md).
      "",
      // 6: the uplink outbox of the three-level platform (docs/platform.md): recognised
      // captures' metadata, queued in the transaction that finishes them.
      UplinkOutboxSql(db::Dialect::kSqlite)};
  return m;
}

// Step 5, PostgreSQL only: captures, capture_images and capture_clips partitioned by the
// calendar month of the capture time (R3.3.2.5; storage/partitions.h), every row carried
// over inside the migration's transaction. The keys must hold time_ms. A capture's id is
// drawn by the server (unique by itself), an image's or clip frame's (capture_id, n) is
// written once with its capture's time: (id, time_ms) and (capture_id, n, time_ms) keep
// those. The camera's (device_id, face_id), which makes an upload sent twice a duplicate,
// cannot: the time of a capture without a usable camera time is the arrival time, not the
// same on a retry. It moves to capture_faces, a narrow table without partitions that the
// insert claims first (CaptureRepo::Insert) and retention prunes with the captures.
std::string PostgresPartitionCaptures() {
  const std::string now = "(extract(epoch FROM now()) * 1000)::bigint";
  const std::string back = "(extract(epoch FROM now() - interval '" + std::to_string(kMonthsBack) +
                           " months') * 1000)::bigint";
  const std::string ahead = "(extract(epoch FROM now() + interval '" +
                            std::to_string(kMonthsAhead) + " months') * 1000)::bigint";
  return EnsureMonthPartitionsFunctionSql() + R"(
CREATE TABLE capture_faces(device_id TEXT NOT NULL, face_id TEXT NOT NULL,
  capture_id TEXT NOT NULL, time_ms BIGINT NOT NULL, PRIMARY KEY(device_id, face_id));
INSERT INTO capture_faces(device_id, face_id, capture_id, time_ms)
  SELECT device_id, face_id, id, time_ms FROM captures;
CREATE INDEX capture_faces_time ON capture_faces(time_ms);
ALTER TABLE captures RENAME TO captures_unpartitioned;
ALTER TABLE capture_images RENAME TO capture_images_unpartitioned;
ALTER TABLE capture_clips RENAME TO capture_clips_unpartitioned;
DROP INDEX captures_time, captures_device, captures_stranger, captures_person, captures_state;
CREATE TABLE captures(id TEXT NOT NULL, device_id TEXT NOT NULL, face_id TEXT NOT NULL,
  time_ms BIGINT NOT NULL, received_ms BIGINT NOT NULL, box TEXT NOT NULL,
  images BIGINT NOT NULL, state TEXT NOT NULL, outcome TEXT NOT NULL DEFAULT '',
  person TEXT NOT NULL DEFAULT '', score DOUBLE PRECISION, second_score DOUBLE PRECISION,
  stranger_id BIGINT, quality TEXT NOT NULL DEFAULT '{}', reasons TEXT NOT NULL DEFAULT '[]',
  dark SMALLINT NOT NULL DEFAULT 0, feature_sealed BYTEA, recognised_ms BIGINT NOT NULL DEFAULT 0)
  PARTITION BY RANGE (time_ms);
CREATE TABLE captures_default PARTITION OF captures DEFAULT;
CREATE TABLE capture_images(capture_id TEXT NOT NULL, n BIGINT NOT NULL, type TEXT NOT NULL,
  file TEXT NOT NULL, bytes BIGINT NOT NULL, width BIGINT NOT NULL, height BIGINT NOT NULL,
  time_ms BIGINT NOT NULL) PARTITION BY RANGE (time_ms);
CREATE TABLE capture_images_default PARTITION OF capture_images DEFAULT;
CREATE TABLE capture_clips(capture_id TEXT NOT NULL, n BIGINT NOT NULL,
  offset_ms BIGINT NOT NULL, file TEXT NOT NULL, bytes BIGINT NOT NULL,
  width BIGINT NOT NULL, height BIGINT NOT NULL, time_ms BIGINT NOT NULL)
  PARTITION BY RANGE (time_ms);
CREATE TABLE capture_clips_default PARTITION OF capture_clips DEFAULT;
SELECT ensure_month_partitions(t, GREATEST(COALESCE(
  (SELECT MIN(time_ms) FROM captures_unpartitioned), )" +
         now + "), " + back + "), " + ahead + R"()
  FROM unnest(ARRAY['captures', 'capture_images', 'capture_clips']) t;
INSERT INTO captures(id, device_id, face_id, time_ms, received_ms, box, images, state, outcome,
  person, score, second_score, stranger_id, quality, reasons, dark, feature_sealed,
  recognised_ms)
  SELECT id, device_id, face_id, time_ms, received_ms, box, images, state, outcome, person,
  score, second_score, stranger_id, quality, reasons, dark, feature_sealed, recognised_ms
  FROM captures_unpartitioned;
INSERT INTO capture_images(capture_id, n, type, file, bytes, width, height, time_ms)
  SELECT i.capture_id, i.n, i.type, i.file, i.bytes, i.width, i.height, COALESCE(c.time_ms, 0)
  FROM capture_images_unpartitioned i LEFT JOIN captures_unpartitioned c ON c.id = i.capture_id;
INSERT INTO capture_clips(capture_id, n, offset_ms, file, bytes, width, height, time_ms)
  SELECT i.capture_id, i.n, i.offset_ms, i.file, i.bytes, i.width, i.height,
  COALESCE(c.time_ms, 0)
  FROM capture_clips_unpartitioned i LEFT JOIN captures_unpartitioned c ON c.id = i.capture_id;
DROP TABLE captures_unpartitioned, capture_images_unpartitioned, capture_clips_unpartitioned;
ALTER TABLE captures ADD PRIMARY KEY (id, time_ms);
ALTER TABLE capture_images ADD PRIMARY KEY (capture_id, n, time_ms);
ALTER TABLE capture_clips ADD PRIMARY KEY (capture_id, n, time_ms);
CREATE INDEX captures_time ON captures(time_ms);
CREATE INDEX captures_device ON captures(device_id, time_ms);
CREATE INDEX captures_stranger ON captures(stranger_id, time_ms);
CREATE INDEX captures_person ON captures(person, time_ms);
CREATE INDEX captures_state ON captures(state);)";
}

// The same steps in PostgreSQL's dialect (docs/storage.md): 64-bit integers, BYTEA, flags
// as SMALLINT, identity keys where SQLite draws a rowid.
const std::vector<std::string>& PostgresMigrations() {
  static const std::vector<std::string> m = {
      R"(CREATE TABLE viid_devices(id TEXT PRIMARY KEY, name TEXT NOT NULL, place TEXT NOT NULL,
  building_id BIGINT, unit_id BIGINT, linked_device TEXT NOT NULL DEFAULT '',
  realm TEXT NOT NULL, ha1_sealed BYTEA NOT NULL, status TEXT NOT NULL DEFAULT 'active',
  registered SMALLINT NOT NULL DEFAULT 0, last_seen_ms BIGINT NOT NULL DEFAULT 0,
  created_ms BIGINT NOT NULL);
CREATE TABLE captures(id TEXT PRIMARY KEY, device_id TEXT NOT NULL, face_id TEXT NOT NULL,
  time_ms BIGINT NOT NULL, received_ms BIGINT NOT NULL, box TEXT NOT NULL,
  images BIGINT NOT NULL, state TEXT NOT NULL, outcome TEXT NOT NULL DEFAULT '',
  person TEXT NOT NULL DEFAULT '', score DOUBLE PRECISION, second_score DOUBLE PRECISION,
  stranger_id BIGINT, quality TEXT NOT NULL DEFAULT '{}', reasons TEXT NOT NULL DEFAULT '[]',
  dark SMALLINT NOT NULL DEFAULT 0, feature_sealed BYTEA, recognised_ms BIGINT NOT NULL DEFAULT 0,
  UNIQUE(device_id, face_id));
CREATE INDEX captures_time ON captures(time_ms);
CREATE INDEX captures_device ON captures(device_id, time_ms);
CREATE INDEX captures_stranger ON captures(stranger_id, time_ms);
CREATE INDEX captures_person ON captures(person, time_ms);
CREATE INDEX captures_state ON captures(state);
CREATE TABLE capture_images(capture_id TEXT NOT NULL, n BIGINT NOT NULL, type TEXT NOT NULL,
  file TEXT NOT NULL, bytes BIGINT NOT NULL, width BIGINT NOT NULL, height BIGINT NOT NULL,
  PRIMARY KEY(capture_id, n));
CREATE TABLE strangers(id BIGINT PRIMARY KEY, centroid_sealed BYTEA NOT NULL,
  members BIGINT NOT NULL, first_ms BIGINT NOT NULL, last_ms BIGINT NOT NULL,
  first_capture TEXT NOT NULL, last_capture TEXT NOT NULL, last_device TEXT NOT NULL);
CREATE TABLE tenant_strangers(person TEXT NOT NULL, stranger_id BIGINT NOT NULL,
  time_ms BIGINT NOT NULL, capture_id TEXT NOT NULL, PRIMARY KEY(person, capture_id));
CREATE TABLE alert_rules(id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  type TEXT NOT NULL, name TEXT NOT NULL, enabled SMALLINT NOT NULL, params TEXT NOT NULL,
  created_ms BIGINT NOT NULL);
CREATE TABLE alert_state(key TEXT PRIMARY KEY, last_ms BIGINT NOT NULL);
CREATE TABLE webhook_outbox(seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  body TEXT NOT NULL, attempts BIGINT NOT NULL DEFAULT 0, next_ms BIGINT NOT NULL,
  created_ms BIGINT NOT NULL, last_error TEXT NOT NULL DEFAULT '');
CREATE TABLE settings(key TEXT PRIMARY KEY, value TEXT NOT NULL);)",
      R"(CREATE TABLE forward_outbox(seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  kind TEXT NOT NULL, body TEXT NOT NULL, attempts BIGINT NOT NULL DEFAULT 0,
  next_ms BIGINT NOT NULL, created_ms BIGINT NOT NULL, last_error TEXT NOT NULL DEFAULT '');)",
      R"(CREATE TABLE capture_clips(capture_id TEXT NOT NULL, n BIGINT NOT NULL,
  offset_ms BIGINT NOT NULL, file TEXT NOT NULL, bytes BIGINT NOT NULL,
  width BIGINT NOT NULL, height BIGINT NOT NULL, PRIMARY KEY(capture_id, n));)",
      R"(CREATE SEQUENCE stranger_ids;
SELECT setval('stranger_ids', COALESCE((SELECT MAX(id) FROM strangers), 0) + 1, false);)",
      PostgresPartitionCaptures(),
      UplinkOutboxSql(db::Dialect::kPostgres)};
  return m;
}

}  // namespace

const db::Migrations& CapturesMigrations() {
  static const db::Migrations m{Migrations(), PostgresMigrations()};
  return m;
}

std::unique_ptr<db::Db> OpenCapturesDb(const std::filesystem::path& file) {
  db::SqliteOptions o;
  o.name = "captures";
  return db::OpenSqlite(file, CapturesMigrations(), o);
}

}  // namespace anju::server::storage
