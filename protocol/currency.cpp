#include "protocol/currency.hpp"

#include <algorithm>
#include <array>

namespace billing {

namespace {

// ISO 4217 List One, the active codes, as of 2026: the iso-codes 4.15 list
// plus the later amendments (XCG replaced ANG in 2025, ZWG replaced ZWL in
// 2024; BGN withdrawn when Bulgaria adopted the euro on 2026-01-01). Left out:
// - historic codes, e.g. dem, frf, itl, esp (euro), hrk (euro, 2023), bgn,
//   vef (now ves), sll (now sle), zwl (now zwg), ang (now xcg), byr, mro, std;
// - codes whose minor unit ISO gives as "N.A.": the precious metals (xau, xag,
//   xpt, xpd), xdr, xsu, xua, the bond-market units xba..xbd, and the test
//   and no-currency codes xts, xxx. An invoice amount in "cents" means
//   nothing for them.
// Kept: the funds codes that have a minor unit (bov, che, chw, clf, cou, mxv,
// usn, uyi, uyw), as ISO lists them; a payment provider may still refuse
// some of these, and that is the provider's answer to give.
// When ISO amends the list, edit this table (the static_assert below keeps it
// sorted for the binary search in find_currency).
constexpr std::array table = std::to_array<currency_info>({
  {"aed", 2}, {"afn", 2}, {"all", 2}, {"amd", 2}, {"aoa", 2}, {"ars", 2},
  {"aud", 2}, {"awg", 2}, {"azn", 2}, {"bam", 2}, {"bbd", 2}, {"bdt", 2},
  {"bhd", 3}, {"bif", 0}, {"bmd", 2}, {"bnd", 2}, {"bob", 2}, {"bov", 2},
  {"brl", 2}, {"bsd", 2}, {"btn", 2}, {"bwp", 2}, {"byn", 2}, {"bzd", 2},
  {"cad", 2}, {"cdf", 2}, {"che", 2}, {"chf", 2}, {"chw", 2}, {"clf", 4},
  {"clp", 0}, {"cny", 2}, {"cop", 2}, {"cou", 2}, {"crc", 2}, {"cuc", 2},
  {"cup", 2}, {"cve", 2}, {"czk", 2}, {"djf", 0}, {"dkk", 2}, {"dop", 2},
  {"dzd", 2}, {"egp", 2}, {"ern", 2}, {"etb", 2}, {"eur", 2}, {"fjd", 2},
  {"fkp", 2}, {"gbp", 2}, {"gel", 2}, {"ghs", 2}, {"gip", 2}, {"gmd", 2},
  {"gnf", 0}, {"gtq", 2}, {"gyd", 2}, {"hkd", 2}, {"hnl", 2}, {"htg", 2},
  {"huf", 2}, {"idr", 2}, {"ils", 2}, {"inr", 2}, {"iqd", 3}, {"irr", 2},
  {"isk", 0}, {"jmd", 2}, {"jod", 3}, {"jpy", 0}, {"kes", 2}, {"kgs", 2},
  {"khr", 2}, {"kmf", 0}, {"kpw", 2}, {"krw", 0}, {"kwd", 3}, {"kyd", 2},
  {"kzt", 2}, {"lak", 2}, {"lbp", 2}, {"lkr", 2}, {"lrd", 2}, {"lsl", 2},
  {"lyd", 3}, {"mad", 2}, {"mdl", 2}, {"mga", 2}, {"mkd", 2}, {"mmk", 2},
  {"mnt", 2}, {"mop", 2}, {"mru", 2}, {"mur", 2}, {"mvr", 2}, {"mwk", 2},
  {"mxn", 2}, {"mxv", 2}, {"myr", 2}, {"mzn", 2}, {"nad", 2}, {"ngn", 2},
  {"nio", 2}, {"nok", 2}, {"npr", 2}, {"nzd", 2}, {"omr", 3}, {"pab", 2},
  {"pen", 2}, {"pgk", 2}, {"php", 2}, {"pkr", 2}, {"pln", 2}, {"pyg", 0},
  {"qar", 2}, {"ron", 2}, {"rsd", 2}, {"rub", 2}, {"rwf", 0}, {"sar", 2},
  {"sbd", 2}, {"scr", 2}, {"sdg", 2}, {"sek", 2}, {"sgd", 2}, {"shp", 2},
  {"sle", 2}, {"sos", 2}, {"srd", 2}, {"ssp", 2}, {"stn", 2}, {"svc", 2},
  {"syp", 2}, {"szl", 2}, {"thb", 2}, {"tjs", 2}, {"tmt", 2}, {"tnd", 3},
  {"top", 2}, {"try", 2}, {"ttd", 2}, {"twd", 2}, {"tzs", 2}, {"uah", 2},
  {"ugx", 0}, {"usd", 2}, {"usn", 2}, {"uyi", 0}, {"uyu", 2}, {"uyw", 4},
  {"uzs", 2}, {"ved", 2}, {"ves", 2}, {"vnd", 0}, {"vuv", 0}, {"wst", 2},
  {"xaf", 0}, {"xcd", 2}, {"xcg", 2}, {"xof", 0}, {"xpf", 0}, {"yer", 2},
  {"zar", 2}, {"zmw", 2}, {"zwg", 2},
});

constexpr bool well_formed(std::span<const currency_info> t) {
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (t[i].code.size() != 3 || t[i].minor_units > 4)
      return false;
    for (char c : t[i].code)
      if (c < 'a' || c > 'z')
        return false;
    if (i > 0 && !(t[i - 1].code < t[i].code))
      return false;
  }
  return true;
}
static_assert(well_formed(table), "codes: three lower-case letters, sorted, each once");

} // namespace

std::span<const currency_info> active_currencies() noexcept {
  return table;
}

std::optional<currency_info> find_currency(std::string_view code) noexcept {
  if (code.size() != 3)
    return std::nullopt;
  char lower[3];
  for (std::size_t i = 0; i < 3; ++i) {
    char c = code[i];
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
    if (c < 'a' || c > 'z')
      return std::nullopt;
    lower[i] = c;
  }
  const std::string_view key{lower, 3};
  auto it = std::lower_bound(table.begin(), table.end(), key,
                             [](const currency_info& e, std::string_view k) { return e.code < k; });
  if (it == table.end() || it->code != key)
    return std::nullopt;
  return *it;
}

} // namespace billing
