#include "runtime/signals.h"

#include <pthread.h>

namespace uploadbroker::runtime {

TerminationSignals::TerminationSignals() {
  sigemptyset(&signals_);
  sigaddset(&signals_, SIGTERM);
  sigaddset(&signals_, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
}

int TerminationSignals::Wait() const {
  int sig = 0;
  sigwait(&signals_, &sig);
  return sig;
}

}  // namespace uploadbroker::runtime
