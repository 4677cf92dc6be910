// The native tests' check counter: CHECK(cond, printf-style message) counts a check and prints the
// first 50 failures with the current `context` (what is being tested), file and line.
#pragma once

#include <cstdio>
#include <string>

namespace rlhf_test {
inline int failures = 0;
inline int checks = 0;
inline std::string context;
}  // namespace rlhf_test

#define CHECK(cond, ...)                                                                              \
  do {                                                                                                \
    ::rlhf_test::checks++;                                                                            \
    if (!(cond) && ++::rlhf_test::failures <= 50) {                                                   \
      std::printf("FAIL [%s] %s:%d: %s: ", ::rlhf_test::context.c_str(), __FILE__, __LINE__, #cond); \
      std::printf(__VA_ARGS__);                                                                       \
      std::printf("\n");                                                                              \
    }                                                                                                 \
  } while (0)
