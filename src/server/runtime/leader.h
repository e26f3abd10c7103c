// Who runs the jobs that must run once per installation (retention, the webhook and
// forward senders, re-queueing captures left queued, finishing interrupted deletions):
// embedded, this process always; with several processes, the holder of a lease.
#pragma once

#include <string>

namespace anju::server::runtime {

class Leader {
 public:
  virtual ~Leader() = default;
  // Whether this process should run JOB now. Cheap: call it before every run.
  virtual bool IsLeader(const std::string& job) = 0;
};

}  // namespace anju::server::runtime
