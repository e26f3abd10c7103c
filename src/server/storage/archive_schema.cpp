#include "server/storage/archive_schema.h"

#include "db/postgres.h"

namespace anju::server {

// Version 1: the data model ("one person one archive", R3.3.2.2). Identity data
// (persons) is kept apart from biometric data (photos, features), which only refer to the
// person's row id. Times are Unix milliseconds.
static const char* kV1 = R"SQL(
CREATE TABLE sites(id INTEGER PRIMARY KEY, name TEXT NOT NULL, address TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL);
CREATE TABLE buildings(id INTEGER PRIMARY KEY, site_id INTEGER NOT NULL REFERENCES sites(id),
  name TEXT NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE units(id INTEGER PRIMARY KEY, building_id INTEGER NOT NULL REFERENCES buildings(id),
  name TEXT NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE rooms(id INTEGER PRIMARY KEY, unit_id INTEGER NOT NULL REFERENCES units(id),
  name TEXT NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE households(id INTEGER PRIMARY KEY, room_id INTEGER REFERENCES rooms(id),
  name TEXT NOT NULL, created_ms INTEGER NOT NULL);

CREATE TABLE persons(id INTEGER PRIMARY KEY, code TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
  id_number_sealed BLOB, phone TEXT NOT NULL DEFAULT '', minor INTEGER NOT NULL DEFAULT 0,
  status TEXT NOT NULL DEFAULT 'active' CHECK(status IN ('active','moved_out')),
  moved_in_ms INTEGER, moved_out_ms INTEGER, open_ms INTEGER NOT NULL DEFAULT 0,
  created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);
CREATE TABLE household_members(household_id INTEGER NOT NULL REFERENCES households(id),
  person_id INTEGER NOT NULL REFERENCES persons(id),
  role TEXT NOT NULL CHECK(role IN ('tenant','family','carer','staff','visitor')),
  since_ms INTEGER NOT NULL, PRIMARY KEY(household_id, person_id));
CREATE INDEX household_members_person ON household_members(person_id);

CREATE TABLE consents(id INTEGER PRIMARY KEY, person_id INTEGER NOT NULL REFERENCES persons(id),
  notice_version TEXT NOT NULL, purpose TEXT NOT NULL, granted_ms INTEGER NOT NULL,
  operator TEXT NOT NULL, evidence_file TEXT NOT NULL DEFAULT '',
  guardian_name TEXT NOT NULL DEFAULT '', guardian_relation TEXT NOT NULL DEFAULT '',
  withdrawn_ms INTEGER, withdrawn_by TEXT);
CREATE INDEX consents_person ON consents(person_id);

CREATE TABLE photos(id INTEGER PRIMARY KEY, person_id INTEGER NOT NULL REFERENCES persons(id),
  file TEXT NOT NULL, bytes INTEGER NOT NULL, quality TEXT NOT NULL, created_ms INTEGER NOT NULL,
  operator TEXT NOT NULL);
CREATE INDEX photos_person ON photos(person_id);
CREATE TABLE features(id INTEGER PRIMARY KEY, person_id INTEGER NOT NULL REFERENCES persons(id),
  photo_id INTEGER REFERENCES photos(id), model_version TEXT NOT NULL, sealed BLOB NOT NULL,
  created_ms INTEGER NOT NULL);
CREATE INDEX features_person ON features(person_id);

CREATE TABLE credentials(id INTEGER PRIMARY KEY, person_id INTEGER NOT NULL REFERENCES persons(id),
  kind TEXT NOT NULL CHECK(kind IN ('card','pin','qr')), card_number TEXT, pin_hash TEXT,
  qr_token TEXT, valid_from_ms INTEGER, valid_until_ms INTEGER, created_ms INTEGER NOT NULL);
CREATE INDEX credentials_person ON credentials(person_id);
CREATE UNIQUE INDEX credentials_card ON credentials(card_number) WHERE card_number IS NOT NULL;

CREATE TABLE devices(id TEXT PRIMARY KEY, name TEXT NOT NULL, doors INTEGER NOT NULL DEFAULT 1,
  status TEXT NOT NULL CHECK(status IN ('pending','active','revoked')),
  public_key TEXT, data_key_sealed BLOB, software_version TEXT NOT NULL DEFAULT '',
  model_version TEXT NOT NULL DEFAULT '', created_ms INTEGER NOT NULL, registered_ms INTEGER,
  last_seen_ms INTEGER, heartbeat TEXT NOT NULL DEFAULT '{}', gallery_version INTEGER NOT NULL DEFAULT 0);
CREATE TABLE enrolment_codes(code_hash TEXT PRIMARY KEY, device_id TEXT NOT NULL REFERENCES devices(id),
  expires_ms INTEGER NOT NULL, used_ms INTEGER);

CREATE TABLE access_groups(id INTEGER PRIMARY KEY, name TEXT NOT NULL,
  windows TEXT NOT NULL DEFAULT '[]', valid_from_ms INTEGER, valid_until_ms INTEGER,
  open_ms INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL);
CREATE TABLE access_group_doors(group_id INTEGER NOT NULL REFERENCES access_groups(id) ON DELETE CASCADE,
  device_id TEXT NOT NULL REFERENCES devices(id), door INTEGER NOT NULL,
  PRIMARY KEY(group_id, device_id, door));
CREATE INDEX access_group_doors_device ON access_group_doors(device_id);
CREATE TABLE access_group_members(group_id INTEGER NOT NULL REFERENCES access_groups(id) ON DELETE CASCADE,
  person_id INTEGER NOT NULL REFERENCES persons(id), PRIMARY KEY(group_id, person_id));
CREATE INDEX access_group_members_person ON access_group_members(person_id);

-- Per-device gallery change log (docs/device-protocol.md "Gallery sync").
CREATE TABLE device_changes(device_id TEXT NOT NULL REFERENCES devices(id), seq INTEGER NOT NULL,
  person_code TEXT NOT NULL, op TEXT NOT NULL CHECK(op IN ('upsert','remove')),
  reason TEXT NOT NULL, time_ms INTEGER NOT NULL, PRIMARY KEY(device_id, seq));
CREATE INDEX device_changes_person ON device_changes(device_id, person_code, seq);
-- What each device holds (as far as the server has told it).
CREATE TABLE device_persons(device_id TEXT NOT NULL REFERENCES devices(id),
  person_code TEXT NOT NULL, PRIMARY KEY(device_id, person_code));
-- Removals queued to devices and when each device confirmed it.
CREATE TABLE device_removals(device_id TEXT NOT NULL REFERENCES devices(id),
  person_code TEXT NOT NULL, seq INTEGER NOT NULL, reason TEXT NOT NULL,
  queued_ms INTEGER NOT NULL, confirmed_ms INTEGER, PRIMARY KEY(device_id, seq));
CREATE INDEX device_removals_person ON device_removals(person_code);

CREATE TABLE commands(id INTEGER PRIMARY KEY, device_id TEXT NOT NULL REFERENCES devices(id),
  body TEXT NOT NULL, created_ms INTEGER NOT NULL, created_by TEXT NOT NULL, acked_ms INTEGER);
CREATE INDEX commands_pending ON commands(device_id, acked_ms);

CREATE TABLE history(id INTEGER PRIMARY KEY, person_id INTEGER NOT NULL REFERENCES persons(id),
  action TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '', actor TEXT NOT NULL, time_ms INTEGER NOT NULL);
CREATE INDEX history_person ON history(person_id);

CREATE TABLE audit(id INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, actor TEXT NOT NULL,
  action TEXT NOT NULL, object TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '');
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;

CREATE TABLE imports(id INTEGER PRIMARY KEY, created_ms INTEGER NOT NULL, actor TEXT NOT NULL,
  state TEXT NOT NULL, total INTEGER NOT NULL, done INTEGER NOT NULL DEFAULT 0,
  results TEXT NOT NULL DEFAULT '[]', finished_ms INTEGER);
)SQL";

// Version 2: accounts, sessions, API tokens and export approvals (R4.2.1.1).
// Passwords are scrypt hashes; session and API tokens are stored as SM3 hashes only.
static const char* kV2Accounts = R"SQL(
CREATE TABLE users(id INTEGER PRIMARY KEY, username TEXT NOT NULL UNIQUE,
  display_name TEXT NOT NULL DEFAULT '', password_hash TEXT NOT NULL,
  password_changed_ms INTEGER NOT NULL, must_change INTEGER NOT NULL DEFAULT 1,
  roles TEXT NOT NULL DEFAULT '[]', sites TEXT NOT NULL DEFAULT '[]',
  totp_sealed BLOB, totp_enabled INTEGER NOT NULL DEFAULT 0, totp_last_step INTEGER NOT NULL DEFAULT 0,
  failures INTEGER NOT NULL DEFAULT 0, locked_until_ms INTEGER NOT NULL DEFAULT 0,
  blocked_reason TEXT NOT NULL DEFAULT '', disabled INTEGER NOT NULL DEFAULT 0,
  created_ms INTEGER NOT NULL, created_by TEXT NOT NULL, last_login_ms INTEGER);
CREATE TABLE password_history(user_id INTEGER NOT NULL REFERENCES users(id),
  hash TEXT NOT NULL, changed_ms INTEGER NOT NULL);
CREATE INDEX password_history_user ON password_history(user_id, changed_ms);
CREATE TABLE sessions(id INTEGER PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE,
  user_id INTEGER NOT NULL REFERENCES users(id), source TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL,
  revoked_ms INTEGER);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE TABLE api_tokens(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
  token_hash TEXT NOT NULL UNIQUE, roles TEXT NOT NULL, created_by TEXT NOT NULL,
  created_ms INTEGER NOT NULL, last_used_ms INTEGER, revoked_ms INTEGER);
CREATE TABLE exports(id INTEGER PRIMARY KEY, requester TEXT NOT NULL, kind TEXT NOT NULL,
  filter TEXT NOT NULL DEFAULT '{}', reason TEXT NOT NULL,
  state TEXT NOT NULL CHECK(state IN ('pending','approved','rejected','downloaded')),
  created_ms INTEGER NOT NULL, approver TEXT, decided_ms INTEGER, note TEXT NOT NULL DEFAULT '',
  downloaded_ms INTEGER, rows INTEGER);
)SQL";

// Version 3: the tamper-evident audit log (R4.2.2.1; server/audit.h). Every record
// gets its source address, its result and its SM3 chain hash; HMAC-SM3 checkpoints live in
// their own append-only table. Records written before v3 are chained by the next write
// (the update trigger lets only a missing hash be filled in).
static const char* kV3AuditChain = R"SQL(
ALTER TABLE audit ADD COLUMN source TEXT NOT NULL DEFAULT '';
ALTER TABLE audit ADD COLUMN result TEXT NOT NULL DEFAULT 'ok';
ALTER TABLE audit ADD COLUMN hash TEXT;
DROP TRIGGER audit_no_update;
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit WHEN OLD.hash IS NOT NULL
  BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE INDEX audit_time ON audit(time_ms);
CREATE TABLE audit_checkpoints(id INTEGER PRIMARY KEY, audit_id INTEGER NOT NULL,
  hash TEXT NOT NULL, time_ms INTEGER NOT NULL, reason TEXT NOT NULL, key_id TEXT NOT NULL,
  mac TEXT NOT NULL);
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
  BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
  BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
)SQL";

// Version 4: the site of a device (least privilege per site; server/site_scope.h).
// NULL = not placed yet: only accounts without a site limit see such a device.
static const char* kV4DeviceSite = R"SQL(
ALTER TABLE devices ADD COLUMN site_id INTEGER REFERENCES sites(id);
CREATE INDEX devices_site ON devices(site_id);
)SQL";

// Version 5: settings changed at run time (retention periods from the
// console; they override the config file) and bulk deletions that one user requests and
// another approves (R4.2.1.1). A deletion request stores the exact person codes it names,
// so the approver approves that list, not a filter that may match others by then;
// 'approved' = being carried out (a restart finishes it), 'done' = carried out.
static const char* kV5SettingsDeletions = R"SQL(
CREATE TABLE settings(key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_ms INTEGER NOT NULL,
  updated_by TEXT NOT NULL);
CREATE TABLE deletions(id INTEGER PRIMARY KEY, requester TEXT NOT NULL,
  kind TEXT NOT NULL CHECK(kind IN ('biometrics','archives')), persons TEXT NOT NULL,
  reason TEXT NOT NULL,
  state TEXT NOT NULL CHECK(state IN ('pending','rejected','approved','done')),
  created_ms INTEGER NOT NULL, approver TEXT, decided_ms INTEGER, note TEXT NOT NULL DEFAULT '',
  deleted INTEGER, photos_deleted INTEGER);
)SQL";

// Version 6: separation of duties as invariants (R4.2.1.1, docs/security.md). API tokens
// expire, carry the creator's site scope and can be blocked by the risk warning; tokens
// made before this version that carry an administrator role are revoked (the bootstrap
// token is re-armed with integration roles at start). Changes to a security
// administrator's account wait in admin_changes for a second administrator; a password in
// a pending change is stored as its scrypt hash only.
static const char* kV6Duties = R"SQL(
ALTER TABLE api_tokens ADD COLUMN expires_ms INTEGER;
ALTER TABLE api_tokens ADD COLUMN sites TEXT NOT NULL DEFAULT '[]';
ALTER TABLE api_tokens ADD COLUMN blocked_reason TEXT NOT NULL DEFAULT '';
UPDATE api_tokens SET expires_ms = created_ms + 90 * 86400000 WHERE expires_ms IS NULL;
UPDATE api_tokens SET revoked_ms = CAST(strftime('%s', 'now') AS INTEGER) * 1000
  WHERE revoked_ms IS NULL AND name <> 'bootstrap' AND (roles LIKE '%"sysadmin"%'
  OR roles LIKE '%"secadmin"%' OR roles LIKE '%"auditadmin"%');
CREATE TABLE admin_changes(id INTEGER PRIMARY KEY, requester TEXT NOT NULL,
  username TEXT NOT NULL, kind TEXT NOT NULL CHECK(kind IN ('roles','credentials')),
  change TEXT NOT NULL, state TEXT NOT NULL CHECK(state IN ('pending','approved','rejected')),
  created_ms INTEGER NOT NULL, approver TEXT, decided_ms INTEGER, note TEXT NOT NULL DEFAULT '');
)SQL";

// Version 7: each site's security levels calibrated on its own gallery at its real size
// (docs/matching.md, "Per-site calibration"; server/matching/site_thresholds.h). One row per
// site, replaced by every recalibration: the thresholds file as JSON (its report inside),
// the fingerprint of the gallery it was calibrated on (the persons' template ids) and why the
// base levels were kept, when they were.
static const char* kV7SiteThresholds = R"SQL(
CREATE TABLE site_thresholds(site_id INTEGER PRIMARY KEY REFERENCES sites(id),
  model_version TEXT NOT NULL, thresholds TEXT NOT NULL, fingerprint TEXT NOT NULL,
  persons INTEGER NOT NULL, templates INTEGER NOT NULL, kept_base TEXT NOT NULL DEFAULT '',
  elapsed_ms INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL);
)SQL";

// The feature change log (docs/distributed.md, "The gallery index"): every process that
// holds the feature index in memory applies the persons logged after the last sequence
// number it applied. AUTOINCREMENT: a number is never reused, even after pruning.
static const char* kV8FeatureLog = R"SQL(
CREATE TABLE feature_log(seq INTEGER PRIMARY KEY AUTOINCREMENT, person_id INTEGER NOT NULL,
  time_ms INTEGER NOT NULL);
CREATE INDEX feature_log_time ON feature_log(time_ms);
)SQL";

// Version 9: a person's date of birth, optional, "YYYY-MM-DD" (archive/person_service.h
// checks it). The only age data the archive needs: the elderly_not_seen alert rule (R3.4.2.2,
// "an elderly tenant not seen") compares it as text with a cut-off date. The ID number stays
// sealed and is never opened for this.
static const char* kV9BirthDate = R"SQL(
ALTER TABLE persons ADD COLUMN birth_date TEXT;
)SQL";

const std::vector<std::string>& ArchiveMigrations() {
  static const std::vector<std::string> m = {
      kV1,       kV2Accounts,       kV3AuditChain, kV4DeviceSite, kV5SettingsDeletions,
      kV6Duties, kV7SiteThresholds, kV8FeatureLog, kV9BirthDate};
  return m;
}

// ---- the same steps in PostgreSQL's dialect (docs/storage.md, "The portable subset") -----
//
// Step N makes the change step N makes on SQLite, so that both report the same schema
// version. Row ids drawn by SQLite (INTEGER PRIMARY KEY) are identity columns; the ids of
// audit records and checkpoints are assigned by the hash chain (server/audit/audit_log.cpp),
// never drawn, so they are plain keys. Times, ids and counters are BIGINT, flags SMALLINT,
// blobs BYTEA.

static const char* kPgV1 = R"SQL(
CREATE TABLE sites(id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name TEXT NOT NULL,
  address TEXT NOT NULL DEFAULT '', created_ms BIGINT NOT NULL);
CREATE TABLE buildings(id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  site_id BIGINT NOT NULL REFERENCES sites(id), name TEXT NOT NULL, created_ms BIGINT NOT NULL);
CREATE TABLE units(id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  building_id BIGINT NOT NULL REFERENCES buildings(id), name TEXT NOT NULL,
  created_ms BIGINT NOT NULL);
CREATE TABLE rooms(id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  unit_id BIGINT NOT NULL REFERENCES units(id), name TEXT NOT NULL, created_ms BIGINT NOT NULL);
CREATE TABLE households(id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  room_id BIGINT REFERENCES rooms(id), name TEXT NOT NULL, created_ms BIGINT NOT NULL);

CREATE TABLE persons(id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  code TEXT NOT NULL UNIQUE, name TEXT NOT NULL, id_number_sealed BYTEA,
  phone TEXT NOT NULL DEFAULT '', minor SMALLINT NOT NULL DEFAULT 0,
  status TEXT NOT NULL DEFAULT 'active' CHECK(status IN ('active','moved_out')),
  moved_in_ms BIGINT, moved_out_ms BIGINT, open_ms BIGINT NOT NULL DEFAULT 0,
  created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL);
CREATE TABLE household_members(household_id BIGINT NOT NULL REFERENCES households(id),
  person_id BIGINT NOT NULL REFERENCES persons(id),
  role TEXT NOT NULL CHECK(role IN ('tenant','family','carer','staff','visitor')),
  since_ms BIGINT NOT NULL, PRIMARY KEY(household_id, person_id));
CREATE INDEX household_members_person ON household_members(person_id);

CREATE TABLE consents(id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  person_id BIGINT NOT NULL REFERENCES persons(id), notice_version TEXT NOT NULL,
  purpose TEXT NOT NULL, granted_ms BIGINT NOT NULL, operator TEXT NOT NULL,
  evidence_file TEXT NOT NULL DEFAULT '', guardian_name TEXT NOT NULL DEFAULT '',
  guardian_relation TEXT NOT NULL DEFAULT '', withdrawn_ms BIGINT, withdrawn_by TEXT);
CREATE INDEX consents_person ON consents(person_id);

CREATE TABLE photos(id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  person_id BIGINT NOT NULL REFERENCES persons(id), file TEXT NOT NULL, bytes BIGINT NOT NULL,
  quality TEXT NOT NULL, created_ms BIGINT NOT NULL, operator TEXT NOT NULL);
CREATE INDEX photos_person ON photos(person_id);
CREATE TABLE features(id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  person_id BIGINT NOT NULL REFERENCES persons(id), photo_id BIGINT REFERENCES photos(id),
  model_version TEXT NOT NULL, sealed BYTEA NOT NULL, created_ms BIGINT NOT NULL);
CREATE INDEX features_person ON features(person_id);

CREATE TABLE credentials(id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  person_id BIGINT NOT NULL REFERENCES persons(id),
  kind TEXT NOT NULL CHECK(kind IN ('card','pin','qr')), card_number TEXT, pin_hash TEXT,
  qr_token TEXT, valid_from_ms BIGINT, valid_until_ms BIGINT, created_ms BIGINT NOT NULL);
CREATE INDEX credentials_person ON credentials(person_id);
CREATE UNIQUE INDEX credentials_card ON credentials(card_number) WHERE card_number IS NOT NULL;

CREATE TABLE devices(id TEXT PRIMARY KEY, name TEXT NOT NULL, doors BIGINT NOT NULL DEFAULT 1,
  status TEXT NOT NULL CHECK(status IN ('pending','active','revoked')),
  public_key TEXT, data_key_sealed BYTEA, software_version TEXT NOT NULL DEFAULT '',
  model_version TEXT NOT NULL DEFAULT '', created_ms BIGINT NOT NULL, registered_ms BIGINT,
  last_seen_ms BIGINT, heartbeat TEXT NOT NULL DEFAULT '{}',
  gallery_version BIGINT NOT NULL DEFAULT 0);
CREATE TABLE enrolment_codes(code_hash TEXT PRIMARY KEY,
  device_id TEXT NOT NULL REFERENCES devices(id), expires_ms BIGINT NOT NULL, used_ms BIGINT);

CREATE TABLE access_groups(id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  name TEXT NOT NULL, windows TEXT NOT NULL DEFAULT '[]', valid_from_ms BIGINT,
  valid_until_ms BIGINT, open_ms BIGINT NOT NULL DEFAULT 0, created_ms BIGINT NOT NULL);
CREATE TABLE access_group_doors(
  group_id BIGINT NOT NULL REFERENCES access_groups(id) ON DELETE CASCADE,
  device_id TEXT NOT NULL REFERENCES devices(id), door BIGINT NOT NULL,
  PRIMARY KEY(group_id, device_id, door));
CREATE INDEX access_group_doors_device ON access_group_doors(device_id);
CREATE TABLE access_group_members(
  group_id BIGINT NOT NULL REFERENCES access_groups(id) ON DELETE CASCADE,
  person_id BIGINT NOT NULL REFERENCES persons(id), PRIMARY KEY(group_id, person_id));
CREATE INDEX access_group_members_person ON access_group_members(person_id);

CREATE TABLE device_changes(device_id TEXT NOT NULL REFERENCES devices(id),
  seq BIGINT NOT NULL, person_code TEXT NOT NULL,
  op TEXT NOT NULL CHECK(op IN ('upsert','remove')), reason TEXT NOT NULL,
  time_ms BIGINT NOT NULL, PRIMARY KEY(device_id, seq));
CREATE INDEX device_changes_person ON device_changes(device_id, person_code, seq);
CREATE TABLE device_persons(device_id TEXT NOT NULL REFERENCES devices(id),
  person_code TEXT NOT NULL, PRIMARY KEY(device_id, person_code));
CREATE TABLE device_removals(device_id TEXT NOT NULL REFERENCES devices(id),
  person_code TEXT NOT NULL, seq BIGINT NOT NULL, reason TEXT NOT NULL,
  queued_ms BIGINT NOT NULL, confirmed_ms BIGINT, PRIMARY KEY(device_id, seq));
CREATE INDEX device_removals_person ON device_removals(person_code);

CREATE TABLE commands(id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  device_id TEXT NOT NULL REFERENCES devices(id), body TEXT NOT NULL,
  created_ms BIGINT NOT NULL, created_by TEXT NOT NULL, acked_ms BIGINT);
CREATE INDEX commands_pending ON commands(device_id, acked_ms);

CREATE TABLE history(id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  person_id BIGINT NOT NULL REFERENCES persons(id), action TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT '', actor TEXT NOT NULL, time_ms BIGINT NOT NULL);
CREATE INDEX history_person ON history(person_id);

-- Append-only tables refuse changes in a trigger, as SQLite's RAISE(ABORT) does; the
-- SQLSTATE of class 23 makes it the same error (kInvalidArgument, reason "constraint").
-- TRUNCATE skips row triggers in PostgreSQL, so it is refused as well.
CREATE FUNCTION anju_append_only() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  RAISE EXCEPTION 'audit is append-only' USING ERRCODE = 'integrity_constraint_violation';
END
$fn$;

CREATE TABLE audit(id BIGINT PRIMARY KEY, time_ms BIGINT NOT NULL, actor TEXT NOT NULL,
  action TEXT NOT NULL, object TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '');
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
  FOR EACH ROW EXECUTE FUNCTION anju_append_only();
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
  FOR EACH ROW EXECUTE FUNCTION anju_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
  FOR EACH STATEMENT EXECUTE FUNCTION anju_append_only();

CREATE TABLE imports(id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  created_ms BIGINT NOT NULL, actor TEXT NOT NULL, state TEXT NOT NULL, total BIGINT NOT NULL,
  done BIGINT NOT NULL DEFAULT 0, results TEXT NOT NULL DEFAULT '[]', finished_ms BIGINT);
)SQL";

// password_history has no key of its own: SQLite orders two changes in the same
// millisecond by the implicit rowid (AccountRepo::RecentPasswordHashes), so PostgreSQL gets
// an identity column of that name and the same query runs on both.
static const char* kPgV2Accounts = R"SQL(
CREATE TABLE users(id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  username TEXT NOT NULL UNIQUE, display_name TEXT NOT NULL DEFAULT '',
  password_hash TEXT NOT NULL, password_changed_ms BIGINT NOT NULL,
  must_change SMALLINT NOT NULL DEFAULT 1, roles TEXT NOT NULL DEFAULT '[]',
  sites TEXT NOT NULL DEFAULT '[]', totp_sealed BYTEA, totp_enabled SMALLINT NOT NULL DEFAULT 0,
  totp_last_step BIGINT NOT NULL DEFAULT 0, failures BIGINT NOT NULL DEFAULT 0,
  locked_until_ms BIGINT NOT NULL DEFAULT 0, blocked_reason TEXT NOT NULL DEFAULT '',
  disabled SMALLINT NOT NULL DEFAULT 0, created_ms BIGINT NOT NULL, created_by TEXT NOT NULL,
  last_login_ms BIGINT);
CREATE TABLE password_history(rowid BIGINT GENERATED BY DEFAULT AS IDENTITY,
  user_id BIGINT NOT NULL REFERENCES users(id), hash TEXT NOT NULL, changed_ms BIGINT NOT NULL);
CREATE INDEX password_history_user ON password_history(user_id, changed_ms);
CREATE TABLE sessions(id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  token_hash TEXT NOT NULL UNIQUE, user_id BIGINT NOT NULL REFERENCES users(id),
  source TEXT NOT NULL DEFAULT '', created_ms BIGINT NOT NULL, last_ms BIGINT NOT NULL,
  expires_ms BIGINT NOT NULL, revoked_ms BIGINT);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE TABLE api_tokens(id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  name TEXT NOT NULL UNIQUE, token_hash TEXT NOT NULL UNIQUE, roles TEXT NOT NULL,
  created_by TEXT NOT NULL, created_ms BIGINT NOT NULL, last_used_ms BIGINT, revoked_ms BIGINT);
CREATE TABLE exports(id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  requester TEXT NOT NULL, kind TEXT NOT NULL, filter TEXT NOT NULL DEFAULT '{}',
  reason TEXT NOT NULL,
  state TEXT NOT NULL CHECK(state IN ('pending','approved','rejected','downloaded')),
  created_ms BIGINT NOT NULL, approver TEXT, decided_ms BIGINT, note TEXT NOT NULL DEFAULT '',
  downloaded_ms BIGINT, rows BIGINT);
)SQL";

static const char* kPgV3AuditChain = R"SQL(
ALTER TABLE audit ADD COLUMN source TEXT NOT NULL DEFAULT '';
ALTER TABLE audit ADD COLUMN result TEXT NOT NULL DEFAULT 'ok';
ALTER TABLE audit ADD COLUMN hash TEXT;
DROP TRIGGER audit_no_update ON audit;
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit FOR EACH ROW
  WHEN (OLD.hash IS NOT NULL) EXECUTE FUNCTION anju_append_only();
CREATE INDEX audit_time ON audit(time_ms);
CREATE TABLE audit_checkpoints(id BIGINT PRIMARY KEY, audit_id BIGINT NOT NULL,
  hash TEXT NOT NULL, time_ms BIGINT NOT NULL, reason TEXT NOT NULL, key_id TEXT NOT NULL,
  mac TEXT NOT NULL);
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
  FOR EACH ROW EXECUTE FUNCTION anju_append_only();
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
  FOR EACH ROW EXECUTE FUNCTION anju_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
  FOR EACH STATEMENT EXECUTE FUNCTION anju_append_only();
)SQL";

static const char* kPgV4DeviceSite = R"SQL(
ALTER TABLE devices ADD COLUMN site_id BIGINT REFERENCES sites(id);
CREATE INDEX devices_site ON devices(site_id);
)SQL";

static const char* kPgV5SettingsDeletions = R"SQL(
CREATE TABLE settings(key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_ms BIGINT NOT NULL,
  updated_by TEXT NOT NULL);
CREATE TABLE deletions(id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  requester TEXT NOT NULL, kind TEXT NOT NULL CHECK(kind IN ('biometrics','archives')),
  persons TEXT NOT NULL, reason TEXT NOT NULL,
  state TEXT NOT NULL CHECK(state IN ('pending','rejected','approved','done')),
  created_ms BIGINT NOT NULL, approver TEXT, decided_ms BIGINT, note TEXT NOT NULL DEFAULT '',
  deleted BIGINT, photos_deleted BIGINT);
)SQL";

// The token revocation of SQLite's step 6 only touches tokens of an anju from before it;
// a PostgreSQL archive is created by this one, so the UPDATEs find nothing. They are kept so
// that both steps say the same.
static const char* kPgV6Duties = R"SQL(
ALTER TABLE api_tokens ADD COLUMN expires_ms BIGINT;
ALTER TABLE api_tokens ADD COLUMN sites TEXT NOT NULL DEFAULT '[]';
ALTER TABLE api_tokens ADD COLUMN blocked_reason TEXT NOT NULL DEFAULT '';
UPDATE api_tokens SET expires_ms = created_ms + CAST(90 AS BIGINT) * 86400000
  WHERE expires_ms IS NULL;
UPDATE api_tokens SET revoked_ms = CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS BIGINT) * 1000
  WHERE revoked_ms IS NULL AND name <> 'bootstrap' AND (lower(roles) LIKE '%"sysadmin"%'
  OR lower(roles) LIKE '%"secadmin"%' OR lower(roles) LIKE '%"auditadmin"%');
CREATE TABLE admin_changes(id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  requester TEXT NOT NULL, username TEXT NOT NULL,
  kind TEXT NOT NULL CHECK(kind IN ('roles','credentials')), change TEXT NOT NULL,
  state TEXT NOT NULL CHECK(state IN ('pending','approved','rejected')),
  created_ms BIGINT NOT NULL, approver TEXT, decided_ms BIGINT, note TEXT NOT NULL DEFAULT '');
)SQL";

static const char* kPgV7SiteThresholds = R"SQL(
CREATE TABLE site_thresholds(site_id BIGINT PRIMARY KEY REFERENCES sites(id),
  model_version TEXT NOT NULL, thresholds TEXT NOT NULL, fingerprint TEXT NOT NULL,
  persons BIGINT NOT NULL, templates BIGINT NOT NULL, kept_base TEXT NOT NULL DEFAULT '',
  elapsed_ms BIGINT NOT NULL DEFAULT 0, created_ms BIGINT NOT NULL);
)SQL";

static const char* kPgV8FeatureLog = R"SQL(
CREATE TABLE feature_log(seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  person_id BIGINT NOT NULL, time_ms BIGINT NOT NULL);
CREATE INDEX feature_log_time ON feature_log(time_ms);
)SQL";

static const char* kPgV9BirthDate = R"SQL(
ALTER TABLE persons ADD COLUMN birth_date TEXT;
)SQL";

const db::Migrations& ArchiveSchema() {
  static const db::Migrations m{
      ArchiveMigrations(),
      {kPgV1, kPgV2Accounts, kPgV3AuditChain, kPgV4DeviceSite, kPgV5SettingsDeletions, kPgV6Duties,
       kPgV7SiteThresholds, kPgV8FeatureLog, kPgV9BirthDate}};
  return m;
}

std::unique_ptr<db::Db> OpenArchiveDb(const std::filesystem::path& file) {
  db::SqliteOptions o;
  o.name = "archive";
  return db::OpenSqlite(file, ArchiveSchema(), o);
}

std::unique_ptr<db::Db> OpenArchivePostgres(const std::string& url, db::PostgresOptions options) {
  options.name = "archive";
  return db::OpenPostgres(url, ArchiveSchema(), options);
}

}  // namespace anju::server
