// SPDX-License-Identifier: Apache-2.0
// `vellum verify`: reads every byte of the log read-only (log::verify_log)
// and reports what it checked and every problem found. Unlike opening the
// store, it never truncates or repairs anything, so it is safe to run on a
// store that is suspected to be damaged, before deciding what to do.
#include "log/verify.h"

#include <fmt/format.h>

#include "base/sha256.h"
#include "cli/cli_common.h"
#include "io/file_system.h"

namespace vellum::cli {
namespace {

int run_verify(const GlobalOptions& global) {
  if (std::optional<int> refused = refuse_url(global, "verify")) return *refused;
  ProgressReporter progress("verify", "bytes");
  Result<log::VerifyReport> report =
      log::verify_log(*io::default_file_system(), global.data_dir + "/log",
                      [&progress](uint64_t done, uint64_t total) { progress.update(done, total); });
  progress.finish();
  if (!report) return report_error(report.error());
  nlohmann::ordered_json out;
  out["segments"] = report->segments;
  out["records"] = report->records;
  out["events"] = report->events;
  out["bytes"] = report->bytes;
  out["lastHash"] = digest_hex(report->last_hash);
  out["problems"] = report->problems;
  print_json_line(out);
  for (const std::string& problem : report->problems) fmt::print(stderr, "vellum: {}\n", problem);
  if (report->problems.empty()) return kExitOk;
  fmt::print(stderr, "vellum: verify found {} problem(s) in {}\n", report->problems.size(),
             global.data_dir);
  return kExitDataLoss;
}

}  // namespace

Command register_verify(CLI::App& app, const GlobalOptions& global) {
  CLI::App* sub =
      app.add_subcommand("verify", "Check every byte of the log, read-only; exit 3 on problems");
  return Command{sub, [&global] { return run_verify(global); }};
}

}  // namespace vellum::cli
