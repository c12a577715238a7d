// `ubctl subscription ...`, `ubctl consume` and `ubctl deadletters ...`:
// durable subscriptions from the command line.
//
// consume: opens a Consume stream and, for each event, either prints it as
// one line of CloudEvents 1.0 structured JSON (the same object a webhook
// receives; `data` is the Event in protobuf's JSON mapping) and acknowledges
// it once printed, or (with `exec`) runs `/bin/sh -c exec` with that JSON
// on stdin and acknowledges the event when the command exits 0, nacks it
// (message "command exited with status N") otherwise. Events are processed
// one at a time in the order received. Stops after `count` events settled
// (0: runs until the stream fails) and exits 0; on a stream error prints
// "error: CODE: message" and exits 1.
#ifndef UPLOADBROKER_CLIENT_CONSUME_H_
#define UPLOADBROKER_CLIENT_CONSUME_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "client/broker_client.h"
#include "uploadbroker/v1/upload_broker.pb.h"

namespace uploadbroker::client {

struct ConsumeArgs {
  std::string subscription;
  std::string exec;          // empty: print and ack
  int64_t count = 0;         // stop after this many events settled (0: never)
  uint32_t max_in_flight = 0;
  std::string source = "urn:upload-broker";  // the CloudEvents `source` to print
};

// The CloudEvents 1.0 structured JSON of a delivered event (one line):
// id, source, specversion, type, subject, time, datacontenttype, sequence
// (the cursor, a string) and data (the Event).
std::string CloudEventJson(const v1::Delivery& delivery, const std::string& source);

int Consume(BrokerClient& client, const ConsumeArgs& args, std::ostream& out, std::ostream& err);

// `subscription create|get|list|delete` and `deadletters list|redrive`:
// `words` are the arguments after the command (e.g. {"create", "NAME"});
// `create` is the request to send (name filled in from words). JSON on
// `out`; exit status as above, 2 on usage errors.
int SubscriptionCommand(BrokerClient& client, const std::vector<std::string>& words,
                        v1::CreateSubscriptionRequest create, std::ostream& out,
                        std::ostream& err);
int DeadLettersCommand(BrokerClient& client, const std::vector<std::string>& words,
                       bool all, int32_t page_size, const std::string& page_token,
                       std::ostream& out, std::ostream& err);

}  // namespace uploadbroker::client

#endif  // UPLOADBROKER_CLIENT_CONSUME_H_
