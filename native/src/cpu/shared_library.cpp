// The rlhf shared library (the C ABI for embedding) is the whole rlhf_cpu archive; CMake wants at
// least one source of its own, and this is it.
#include "rlhf/kernels.h"
