#include "runtime/signals.h"

#include <pthread.h>

namespace uploadbroker::runtime {

TerminationSignals::TerminationSignals(bool reload) {
  sigemptyset(&signals_);
  sigaddset(&signals_, SIGTERM);
  sigaddset(&signals_, SIGINT);
  if (reload) sigaddset(&signals_, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
}

int TerminationSignals::Wait() const {
  int sig = 0;
  sigwait(&signals_, &sig);
  return sig;
}

}  // namespace uploadbroker::runtime
