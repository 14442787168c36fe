#include "app/logging.hpp"

#include "protocol/log_context.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>

namespace billing::app {

namespace {

void append(spdlog::memory_buf_t& out, std::string_view s) { out.append(s.data(), s.data() + s.size()); }

// A JSON string body: quotes, backslashes and control characters escaped;
// bytes that are not valid UTF-8 pass through as they are (log text is ours,
// and ids were checked at the edge).
void append_escaped(spdlog::memory_buf_t& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  for (unsigned char c : s) {
    switch (c) {
      case '"': append(out, "\\\""); break;
      case '\\': append(out, "\\\\"); break;
      case '\n': append(out, "\\n"); break;
      case '\r': append(out, "\\r"); break;
      case '\t': append(out, "\\t"); break;
      default:
        if (c < 0x20) {
          const char esc[] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
          out.append(esc, esc + sizeof esc);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
}

void field(spdlog::memory_buf_t& out, std::string_view name, std::string_view value) {
  append(out, ",\"");
  append(out, name);
  append(out, "\":\"");
  append_escaped(out, value);
  out.push_back('"');
}

class json_formatter final : public spdlog::formatter {
public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    using namespace std::chrono;
    const auto t = msg.time;
    const auto secs = time_point_cast<seconds>(t);
    const auto ms = duration_cast<milliseconds>(t - secs).count();
    const std::time_t tt = system_clock::to_time_t(secs);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char when[96];
    std::snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
    append(dest, "{\"time\":\"");
    append(dest, when);
    append(dest, "\",\"level\":\"");
    const auto level = spdlog::level::to_string_view(msg.level);
    append(dest, std::string_view{level.data(), level.size()});
    append(dest, "\",\"message\":\"");
    append_escaped(dest, std::string_view{msg.payload.data(), msg.payload.size()});
    dest.push_back('"');
    const auto& ctx = log_context::current();
    if (!ctx.request_id.empty())
      field(dest, "request_id", ctx.request_id);
    if (!ctx.invoice_id.empty())
      field(dest, "invoice_id", ctx.invoice_id);
    if (!ctx.event_id.empty())
      field(dest, "event_id", ctx.event_id);
    append(dest, "}\n");
  }

  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<json_formatter>(); }
};

} // namespace

std::unique_ptr<spdlog::formatter> make_json_formatter() { return std::make_unique<json_formatter>(); }

void configure_logging(const std::string& level, const std::string& format) {
  spdlog::set_level(spdlog::level::from_str(level));
  if (format == "json")
    spdlog::set_formatter(make_json_formatter());
  else
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
}

} // namespace billing::app
