// Moved to server/approvals/export_archive.h (this forwarding header goes once every caller uses the new path).
#pragma once
#include "server/approvals/export_archive.h"
