// Moved to server/audit/server_keys.h (this forwarding header goes once every caller uses the new path).
#pragma once
#include "server/audit/server_keys.h"
