// One table per enum maps each value to the name that the CLI, config.json and checkpoints use.
// Parsing, naming and the CLI's list of choices all read that table, so they cannot disagree.
#pragma once

#include <array>
#include <stdexcept>
#include <string>
#include <vector>

#include "centerloss/types.h"

namespace centerloss::trainer {

template <typename E>
using EnumName = centerloss::OptionName<E>;

template <typename E, size_t N>
using EnumNames = std::array<EnumName<E>, N>;

// The table's names, in table order (e.g. for CLI::IsMember).
template <typename E, size_t N>
std::vector<std::string> enum_names(const EnumNames<E, N>& table) {
  std::vector<std::string> names;
  for (const auto& entry : table) names.emplace_back(entry.name);
  return names;
}

// The value called `name`; throws std::invalid_argument naming `what` (e.g. "--reduction") and
// the choices.
template <typename E, size_t N>
E parse_enum(const EnumNames<E, N>& table, const std::string& name, const char* what) {
  for (const auto& entry : table) {
    if (name == entry.name) return entry.value;
  }
  std::string choices;
  for (const auto& entry : table) choices += (choices.empty() ? "" : ", ") + std::string(entry.name);
  throw std::invalid_argument(std::string(what) + ": expected one of " + choices + ", got '" +
                              name + "'");
}

// The first name of `value` in the table.
template <typename E, size_t N>
std::string enum_name(const EnumNames<E, N>& table, E value) {
  for (const auto& entry : table) {
    if (entry.value == value) return entry.name;
  }
  throw std::invalid_argument("enum value " + std::to_string(static_cast<int>(value)) +
                              " has no name");
}

}  // namespace centerloss::trainer
