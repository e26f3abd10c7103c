// Moved to server/audit/sealing.h (this forwarding header goes once every caller uses the new path).
#pragma once
#include "server/audit/sealing.h"
