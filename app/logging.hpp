#pragma once
// How billingd writes its log: `log_format=text` (the default: a line for
// people, "2026-01-01T12:00:00.000 info message") or `json` (one JSON object
// a line for collectors: time (RFC 3339, UTC, milliseconds), level, message,
// and request_id, invoice_id, event_id when the thread's log_context knows
// them). Both go to stdout through spdlog's default logger; the format is
// applied by the sink, so lines written straight to the sinks (the listening
// lines) have it too.

#include <spdlog/formatter.h>

#include <memory>
#include <string>

namespace billing::app {

// Sets the default logger's level ("info", ...) and format ("text" | "json").
void configure_logging(const std::string& level, const std::string& format);

// The JSON formatter (exposed for tests).
std::unique_ptr<spdlog::formatter> make_json_formatter();

} // namespace billing::app
