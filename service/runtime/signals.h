// SIGINT and SIGTERM (and, when asked, SIGHUP: "reload") as events one
// thread waits for, the way a server's main stops or reloads: block them
// everywhere, then sigwait in one place.
#ifndef UPLOADBROKER_RUNTIME_SIGNALS_H_
#define UPLOADBROKER_RUNTIME_SIGNALS_H_

#include <signal.h>

namespace uploadbroker::runtime {

class TerminationSignals {
 public:
  // Blocks SIGINT and SIGTERM in the calling thread, and so in every thread
  // it starts afterwards. Construct in main before any thread is started
  // (gRPC, Beast and spdlog threads included), or a signal may kill the
  // process instead of being waited for.
  // With `reload`, SIGHUP is blocked and waited for too (instead of
  // killing the process).
  explicit TerminationSignals(bool reload = false);

  // Blocks until SIGINT or SIGTERM (or SIGHUP, see above) arrives and
  // returns its number. Call from one thread at a time.
  int Wait() const;

 private:
  sigset_t signals_;
};

}  // namespace uploadbroker::runtime

#endif  // UPLOADBROKER_RUNTIME_SIGNALS_H_
