// Moved to server/access/account_service.h (this forwarding header goes once every caller uses the new path).
#pragma once
#include "server/access/account_service.h"
