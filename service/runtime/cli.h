// The command line every binary of the project shares (upload-broker,
// oss-sim, ubctl): absl flags, read the way users of kubectl, grpcurl and buf
// type them.
//
// ParseCommandLine() wraps absl::ParseCommandLine:
//   * flag names are accepted in kebab case (--content-type) and in snake
//     case (--content_type); `--no-flag` negates a bool like `--noflag`;
//   * --help, -h and --helpshort print the usage message and the program's
//     own flags (kebab-spelled, with meaning and default) on stdout and exit 0;
//   * --version prints "<program> <version>" on stdout and exits 0.
// Everything else is absl's behaviour: an unknown or malformed flag prints
// the error on stderr and exits 1; --helpfull lists every flag, absl's own
// included.
//
// Threads: call ParseCommandLine once, first thing in main, before any other
// thread starts; it sets process-wide absl flag state. The other functions
// read only the flag registry and may be called from any thread.
#ifndef UPLOADBROKER_RUNTIME_CLI_H_
#define UPLOADBROKER_RUNTIME_CLI_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace uploadbroker::runtime {

struct CliSpec {
  // The binary's name as users type it, e.g. "upload-broker".
  std::string program;
  // Synopsis and a sentence or two; --help prints it first.
  std::string usage;
  // __FILE__ of the source file that defines the program's flags: --help
  // lists the flags defined there and no others.
  std::string flags_file;
};

// Parses argv (see above) and returns the positional arguments, argv[0]
// first. Exits the process for --help, --version and flag errors.
std::vector<std::string> ParseCommandLine(int argc, char** argv,
                                          const CliSpec& spec);

// argv with every flag name in snake case: only arguments starting with
// "--", only the name before '=', never the value a non-bool flag takes from
// the next argument, nothing after a bare "--". argv[0] is kept as is.
std::vector<std::string> NormalizeFlagNames(absl::Span<const char* const> argv);

// What --help prints for `spec`.
std::string HelpText(const CliSpec& spec);

// `path` as the flags registry reports it: relative to the source tree
// ("service/main/broker_main.cc"), whatever form the compiler gave __FILE__.
std::string NormalizeSourcePath(absl::string_view path);

}  // namespace uploadbroker::runtime

#endif  // UPLOADBROKER_RUNTIME_CLI_H_
