// The ISO 4217 table: known codes with their minor units, the codes it must
// refuse, and the shape find_currency's binary search relies on.

#include "protocol/currency.hpp"

#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

using namespace billing;

TEST_CASE("find_currency knows active codes and their minor units", "[currency]") {
  struct known {
    const char* code;
    int minor_units;
  };
  const std::vector<known> table = {
    // the common ones
    {"usd", 2}, {"eur", 2}, {"gbp", 2}, {"chf", 2}, {"cad", 2}, {"aud", 2}, {"cny", 2},
    {"inr", 2}, {"brl", 2}, {"mxn", 2}, {"sek", 2}, {"nok", 2}, {"dkk", 2}, {"pln", 2},
    {"huf", 2}, {"czk", 2}, {"try", 2}, {"zar", 2}, {"sgd", 2}, {"hkd", 2}, {"twd", 2},
    {"idr", 2}, {"irr", 2}, {"mga", 2}, {"mru", 2},
    // no minor unit
    {"jpy", 0}, {"krw", 0}, {"vnd", 0}, {"clp", 0}, {"isk", 0}, {"pyg", 0}, {"ugx", 0},
    {"bif", 0}, {"djf", 0}, {"gnf", 0}, {"kmf", 0}, {"rwf", 0}, {"vuv", 0}, {"xaf", 0},
    {"xof", 0}, {"xpf", 0}, {"uyi", 0},
    // three
    {"bhd", 3}, {"kwd", 3}, {"jod", 3}, {"omr", 3}, {"tnd", 3}, {"iqd", 3}, {"lyd", 3},
    // four (units of account)
    {"clf", 4}, {"uyw", 4},
    // recent replacements
    {"ves", 2}, {"ved", 2}, {"sle", 2}, {"zwg", 2}, {"xcg", 2}, {"mru", 2}, {"stn", 2},
    {"byn", 2}, {"xcd", 2},
    // funds codes with a minor unit
    {"bov", 2}, {"che", 2}, {"chw", 2}, {"cou", 2}, {"mxv", 2}, {"usn", 2},
  };
  for (const auto& k : table) {
    INFO(k.code);
    auto found = find_currency(k.code);
    REQUIRE(found);
    CHECK(found->code == k.code);
    CHECK(int(found->minor_units) == k.minor_units);
  }
}

TEST_CASE("find_currency accepts either case and answers lower case", "[currency]") {
  for (const char* spelling : {"usd", "USD", "Usd", "uSd", "usD"}) {
    INFO(spelling);
    auto found = find_currency(spelling);
    REQUIRE(found);
    CHECK(found->code == "usd");
    CHECK(found->minor_units == 2);
  }
  auto jpy = find_currency("JPY");
  REQUIRE(jpy);
  CHECK(jpy->code == "jpy");
  CHECK(jpy->minor_units == 0);
}

TEST_CASE("find_currency refuses historic, unit-less, malformed and unknown codes", "[currency]") {
  const std::vector<std::pair<const char*, std::string>> refused = {
    // replaced by the euro
    {"historic: German mark", "dem"},   {"historic: French franc", "frf"},
    {"historic: lira", "itl"},          {"historic: peseta", "esp"},
    {"historic: kuna (2023)", "hrk"},   {"historic: lev (2026)", "bgn"},
    {"historic: Dutch guilder", "nlg"}, {"historic: schilling", "ats"},
    // replaced by a new code
    {"historic: bolivar fuerte", "vef"}, {"historic: old leone", "sll"},
    {"historic: ZWL", "zwl"},            {"historic: Antillean guilder", "ang"},
    {"historic: old ouguiya", "mro"},    {"historic: old dobra", "std"},
    {"historic: old Belarusian rouble", "byr"}, {"historic: old lira", "trl"},
    // no minor unit in ISO 4217
    {"metal: gold", "xau"},       {"metal: silver", "xag"},
    {"metal: platinum", "xpt"},   {"metal: palladium", "xpd"},
    {"SDR", "xdr"},               {"sucre", "xsu"},
    {"ADB unit", "xua"},          {"bond unit xba", "xba"},
    {"bond unit xbd", "xbd"},     {"testing code", "xts"},
    {"no currency", "xxx"},
    // nonsense
    {"nonsense xyz", "xyz"}, {"nonsense aaa", "aaa"}, {"nonsense zzz", "zzz"},
    {"nonsense abc", "abc"}, {"bitcoin (not ISO)", "btc"},
    // wrong length
    {"empty", ""}, {"one letter", "u"}, {"two letters", "us"}, {"four letters", "usdd"},
    {"code with a space", "usd "}, {"leading space", " usd"}, {"long", "usdollar"},
    // not letters
    {"digits (the numeric code)", "840"}, {"digit inside", "u5d"}, {"dash", "us-"},
    {"underscore", "us_"}, {"NUL inside", std::string("u\0d", 3)}, {"at sign", "@sd"},
    {"bracket (between Z and a)", "us["}, {"backtick (just before a)", "`sd"},
    {"brace (just after z)", "us{"},
    // not ASCII
    {"Cyrillic 'usd' lookalike", "\xD1\x83sd"}, {"fullwidth USD", "\xEF\xBC\xB5\xEF\xBC\xB3\xEF\xBC\xA4"},
    {"Latin-1 byte", "us\xE9"}, {"high byte", "\xFFsd"},
  };
  for (const auto& [name, code] : refused) {
    INFO(name << ": \"" << code << "\"");
    CHECK_FALSE(find_currency(code));
  }
}

TEST_CASE("the table is sorted, unique and well formed", "[currency]") {
  auto all = active_currencies();
  // ISO 4217 List One has ~180 entries; minus the unit-less ones, about 165.
  CHECK(all.size() >= 160);
  CHECK(all.size() <= 185);
  std::set<std::string_view> seen;
  for (std::size_t i = 0; i < all.size(); ++i) {
    INFO(all[i].code);
    CHECK(all[i].code.size() == 3);
    for (char c : all[i].code)
      CHECK((c >= 'a' && c <= 'z'));
    CHECK(all[i].minor_units <= 4);
    CHECK(seen.insert(all[i].code).second);
    if (i > 0)
      CHECK(all[i - 1].code < all[i].code);
    // Every entry is found by the search, both spellings.
    auto found = find_currency(all[i].code);
    REQUIRE(found);
    CHECK(*found == all[i]);
    std::string upper{all[i].code};
    for (auto& c : upper)
      c = static_cast<char>(c - 'a' + 'A');
    CHECK(find_currency(upper) == all[i]);
  }
}

TEST_CASE("find_currency finds exactly the table's codes among all three-letter codes", "[currency]") {
  auto all = active_currencies();
  std::set<std::string_view> listed;
  for (auto& e : all)
    listed.insert(e.code);
  std::size_t found = 0;
  std::string code(3, 'a');
  for (char a = 'a'; a <= 'z'; ++a)
    for (char b = 'a'; b <= 'z'; ++b)
      for (char c = 'a'; c <= 'z'; ++c) {
        code[0] = a, code[1] = b, code[2] = c;
        bool in_table = listed.count(code) != 0;
        if (find_currency(code).has_value() != in_table)
          FAIL_CHECK(code);
        found += in_table;
      }
  CHECK(found == all.size());
}
