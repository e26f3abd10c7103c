// The event store moved to server/events/event_store.h (domain) and server/storage/ (SQL);
// this name stays for the callers that still include it.
#pragma once

#include "server/events/event_store.h"
