#include "runtime/cli.h"

#include <algorithm>
#include <cstdlib>
#include <iostream>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "runtime/version.h"

namespace uploadbroker::runtime {
namespace {

bool IsBoolFlag(absl::string_view name) {
  const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
  return flag != nullptr && flag->IsOfType<bool>();
}

// Without '=', absl gives a non-bool flag the next argument as its value.
bool TakesNextArgument(absl::string_view name) {
  const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
  return flag != nullptr && !flag->IsOfType<bool>();
}

struct Normalized {
  std::vector<std::string> args;
  bool help = false;  // --help, -h or --helpshort among the flags
};

Normalized Normalize(absl::Span<const char* const> argv) {
  Normalized out;
  if (argv.empty()) return out;
  out.args.emplace_back(argv[0]);
  for (size_t i = 1; i < argv.size(); ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") {
      out.args.insert(out.args.end(), argv.begin() + i, argv.end());
      break;
    }
    if (arg == "-h" || arg == "-help" || arg == "-helpshort") out.help = true;
    if (!absl::StartsWith(arg, "--")) {
      out.args.emplace_back(arg);
      continue;
    }
    const size_t eq = arg.find('=');
    std::string name = absl::StrReplaceAll(
        arg.substr(2, eq == absl::string_view::npos ? eq : eq - 2),
        {{"-", "_"}});
    // "--no-presigned" is kebab for absl's "--nopresigned".
    if (absl::StartsWith(name, "no_") && IsBoolFlag(name.substr(3)) &&
        absl::FindCommandLineFlag(name) == nullptr) {
      name = absl::StrCat("no", name.substr(3));
    }
    const bool has_value = eq != absl::string_view::npos;
    if (!has_value && (name == "help" || name == "helpshort")) out.help = true;
    out.args.push_back(
        absl::StrCat("--", name, has_value ? arg.substr(eq) : ""));
    if (!has_value && TakesNextArgument(name) && i + 1 < argv.size()) {
      out.args.emplace_back(argv[++i]);
    }
  }
  return out;
}

bool IsProgramFlag(const absl::CommandLineFlag& flag,
                   const std::string& program_file) {
  return !flag.IsRetired() &&
         NormalizeSourcePath(flag.Filename()) == program_file;
}

}  // namespace

std::string NormalizeSourcePath(absl::string_view path) {
  // UB_SOURCE_DIR (the project's root, set by CMake) when __FILE__ is
  // absolute; "../" when ccache's base_dir made it relative to the build.
  absl::string_view root = UB_SOURCE_DIR;
  while (absl::ConsumePrefix(&root, "/")) {
  }
  while (absl::ConsumePrefix(&path, "/")) {
  }
  absl::ConsumePrefix(&path, root);
  while (absl::ConsumePrefix(&path, "./") ||
         absl::ConsumePrefix(&path, "../")) {
  }
  return std::string(path);
}

std::vector<std::string> NormalizeFlagNames(
    absl::Span<const char* const> argv) {
  return Normalize(argv).args;
}

std::string HelpText(const CliSpec& spec) {
  const std::string own = NormalizeSourcePath(spec.flags_file);
  std::vector<const absl::CommandLineFlag*> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (IsProgramFlag(*flag, own)) flags.push_back(flag);
  }
  std::sort(flags.begin(), flags.end(),
            [](const auto* a, const auto* b) { return a->Name() < b->Name(); });
  std::string out =
      absl::StrCat(spec.usage, "\n\nFlags (--kebab-case or --snake_case):\n");
  for (const absl::CommandLineFlag* flag : flags) {
    const bool is_bool = flag->IsOfType<bool>();
    const std::string def = flag->DefaultValue();
    absl::StrAppend(&out, "  --",
                    absl::StrReplaceAll(flag->Name(), {{"_", "-"}}),
                    is_bool ? "" : "=VALUE");
    if (!def.empty() && def != "false")
      absl::StrAppend(&out, "  (default: ", def, ")");
    absl::StrAppend(&out, "\n      ", flag->Help(), "\n");
  }
  absl::StrAppend(&out,
                  "  --help, -h\n      Print this help and exit\n"
                  "  --version\n      Print the version and exit\n");
  return out;
}

std::vector<std::string> ParseCommandLine(int argc, char** argv,
                                          const CliSpec& spec) {
  absl::SetProgramUsageMessage(spec.usage);
  // absl's own --helpshort/--helppackage filters match a flag's file against
  // the binary's name ("upload-broker.cc" or "upload-broker_main.cc"), which
  // no main here is called; match the file that defines the flags instead.
  const std::string own = NormalizeSourcePath(spec.flags_file);
  auto is_own = [own](absl::string_view file) {
    return NormalizeSourcePath(file) == own;
  };
  absl::FlagsUsageConfig config;
  config.contains_helpshort_flags = is_own;
  config.contains_help_flags = is_own;
  config.contains_helppackage_flags = is_own;
  config.version_string = [program = spec.program] {
    return absl::StrCat(program, " ", Version(), "\n");
  };
  config.normalize_filename = [](absl::string_view file) {
    return NormalizeSourcePath(file);
  };
  absl::SetFlagsUsageConfig(config);

  Normalized normalized =
      Normalize(absl::MakeConstSpan(argv, static_cast<size_t>(argc)));
  if (normalized.help) {
    std::cout << HelpText(spec) << std::flush;
    std::exit(0);
  }
  std::vector<char*> args;
  for (std::string& arg : normalized.args) args.push_back(arg.data());
  std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  return std::vector<std::string>(positional.begin(), positional.end());
}

}  // namespace uploadbroker::runtime
