// Helpers shared by the trainer and eval tests.
#pragma once

#include <gtest/gtest.h>

#include <unistd.h>

#include <functional>
#include <string>

#include "util/fs.h"

// Asserts that `fn` throws an Exception whose message contains `needle` (another exception
// type propagates and fails the test).
template <typename Exception = std::exception>
void expect_error(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
  } catch (const Exception& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
        << "message '" << e.what() << "' does not contain '" << needle << "'";
    return;
  }
  ADD_FAILURE() << "no exception; expected one containing '" << needle << "'";
}

// A fresh directory under the system temp dir, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string("centerloss_") + info->test_suite_name() + "_" + info->name() +
                       "_" + std::to_string(::getpid());
    for (char& c : name) c = c == '/' ? '_' : c;  // parameterised test names hold a '/'
    path_ = centerloss::trainer::path_join("/tmp", name);
    centerloss::trainer::remove_tree(path_);
    centerloss::trainer::make_dirs(path_);
  }
  ~TempDir() { centerloss::trainer::remove_tree(path_); }
  std::string operator/(const std::string& name) const {
    return centerloss::trainer::path_join(path_, name);
  }
  const std::string& path() const { return path_; }

 private:
  // std::filesystem is avoided: see util/fs.h
  std::string path_;
};
