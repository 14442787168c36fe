// is_valid_utf8 against each class of Table 3-7 of the Unicode Standard: the
// boundaries of every lead byte's range, and each way a sequence goes wrong.

#include "protocol/text.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace billing;

namespace {

struct sample {
  const char* name;
  std::string bytes;
};

} // namespace

TEST_CASE("is_valid_utf8 accepts well-formed UTF-8", "[text]") {
  const std::vector<sample> valid = {
    {"empty", ""},
    {"ASCII", "shipment-42_ABC.xyz"},
    {"NUL and controls (refused elsewhere, not here)", std::string("a\0b\x1f\x7f", 5)},
    {"2 bytes, lowest U+0080", "\xC2\x80"},
    {"2 bytes, e acute U+00E9", "caf\xC3\xA9"},
    {"2 bytes, highest U+07FF", "\xDF\xBF"},
    {"3 bytes, lowest U+0800", "\xE0\xA0\x80"},
    {"3 bytes, euro sign U+20AC", "\xE2\x82\xAC"},
    {"3 bytes, just below the surrogates U+D7FF", "\xED\x9F\xBF"},
    {"3 bytes, just above the surrogates U+E000", "\xEE\x80\x80"},
    {"3 bytes, U+FFFD", "\xEF\xBF\xBD"},
    {"3 bytes, noncharacter U+FFFF (well-formed)", "\xEF\xBF\xBF"},
    {"4 bytes, lowest U+10000", "\xF0\x90\x80\x80"},
    {"4 bytes, emoji U+1F600", "\xF0\x9F\x98\x80"},
    {"4 bytes, U+FFFFF", "\xF3\xBF\xBF\xBF"},
    {"4 bytes, U+100000", "\xF4\x80\x80\x80"},
    {"4 bytes, max code point U+10FFFF", "\xF4\x8F\xBF\xBF"},
    {"mixed", "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z"},
  };
  for (const auto& s : valid) {
    INFO(s.name);
    CHECK(is_valid_utf8(s.bytes));
  }
}

TEST_CASE("is_valid_utf8 refuses ill-formed UTF-8", "[text]") {
  const std::vector<sample> invalid = {
    // stray continuation bytes
    {"lone continuation 0x80", "\x80"},
    {"lone continuation 0xBF", "a\xBF"},
    {"continuation after a complete sequence", "\xC3\xA9\xA9"},
    // bytes that never occur
    {"0xC0 (overlong lead)", "\xC0\x80"},
    {"0xC1 (overlong lead)", "\xC1\xBF"},
    {"0xF5 (beyond U+10FFFF)", "\xF5\x80\x80\x80"},
    {"0xF8 (5-byte form)", "\xF8\x88\x80\x80\x80"},
    {"0xFC (6-byte form)", "\xFC\x84\x80\x80\x80\x80"},
    {"0xFE", "\xFE"},
    {"0xFF", "\xFF"},
    // overlong encodings
    {"overlong '/' in 2 bytes", "\xC0\xAF"},
    {"overlong NUL in 2 bytes", "\xC0\x80"},
    {"overlong U+007F in 2 bytes", "\xC1\xBF"},
    {"overlong U+07FF in 3 bytes", "\xE0\x9F\xBF"},
    {"overlong U+0000 in 3 bytes", "\xE0\x80\x80"},
    {"overlong U+FFFF in 4 bytes", "\xF0\x8F\xBF\xBF"},
    {"overlong U+0000 in 4 bytes", "\xF0\x80\x80\x80"},
    // surrogates
    {"surrogate U+D800", "\xED\xA0\x80"},
    {"surrogate U+DBFF", "\xED\xAF\xBF"},
    {"surrogate U+DC00", "\xED\xB0\x80"},
    {"surrogate U+DFFF", "\xED\xBF\xBF"},
    {"surrogate pair as CESU-8", "\xED\xA0\xBD\xED\xB8\x80"},
    // beyond U+10FFFF
    {"U+110000", "\xF4\x90\x80\x80"},
    {"U+13FFFF", "\xF4\xBF\xBF\xBF"},
    {"U+140000", "\xF5\x80\x80\x80"},
    // truncated sequences
    {"2-byte lead at the end", "ab\xC3"},
    {"3-byte lead, one continuation, at the end", "\xE2\x82"},
    {"3-byte lead at the end", "\xE2"},
    {"4-byte lead, two continuations, at the end", "\xF0\x9F\x98"},
    {"4-byte lead at the end", "\xF0"},
    {"2-byte lead followed by ASCII", "\xC3" "a"},
    {"3-byte lead, then ASCII in the third byte", "\xE2\x82" "a"},
    {"4-byte lead, then ASCII in the fourth byte", "\xF0\x9F\x98" "a"},
    {"truncated sequence then a new lead", "\xE2\x82\xC3\xA9"},
    // Latin-1 that was never UTF-8 (the %FF of a query string)
    {"Latin-1 e acute", "caf\xE9"},
    {"valid prefix, invalid tail", "shipment-\xC3\xA9-\xFF"},
  };
  for (const auto& s : invalid) {
    INFO(s.name);
    CHECK_FALSE(is_valid_utf8(s.bytes));
  }
}

TEST_CASE("is_valid_utf8 agrees with a decoder on every 2- and 3-byte sequence", "[text]") {
  // Exhaustive over the lead and second byte (the only bytes whose ranges
  // vary): a sequence is valid exactly when it decodes to a scalar value that
  // needs that many bytes.
  for (unsigned lead = 0xC0; lead <= 0xEF; ++lead) {
    for (unsigned second = 0; second <= 0xFF; ++second) {
      std::string s;
      s += static_cast<char>(lead);
      s += static_cast<char>(second);
      bool three = lead >= 0xE0;
      if (three)
        s += '\x80';
      bool cont = (second & 0xC0) == 0x80;
      unsigned cp = three ? ((lead & 0x0F) << 12) | ((second & 0x3F) << 6)
                          : ((lead & 0x1F) << 6) | (second & 0x3F);
      bool expected = cont && (three ? cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF) : cp >= 0x80);
      INFO("lead " << lead << " second " << second);
      CHECK(is_valid_utf8(s) == expected);
    }
  }
}
