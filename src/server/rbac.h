// Moved to server/access/rbac.h (this forwarding header goes once every caller uses the new path).
#pragma once
#include "server/access/rbac.h"
