// The server's names for the database seam (db/db.h).
#pragma once

#include "db/db.h"

namespace anju::server {

using Database = db::Db;
using db::Conn;
using db::Stmt;
using db::Transaction;

}  // namespace anju::server
