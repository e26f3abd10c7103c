// Moved to server/storage/site_scope.h (this forwarding header goes once every caller uses the new path).
#pragma once
#include "server/storage/site_scope.h"
