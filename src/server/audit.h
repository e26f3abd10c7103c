// Moved to server/audit/audit_log.h (this forwarding header goes once every caller uses the new path).
#pragma once
#include "server/audit/audit_log.h"
