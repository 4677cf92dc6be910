# The CUDA sources built for the host emulator (RLHF_CUDA_EMULATOR=ON, tests only): the same targets
# as src/cuda/cuda.cmake (rlhf_cuda_objects, rlhf_cuda, RLHF_CUDA_BINDING_SOURCES), with the .cu files
# compiled as C++ against this directory's cuda_runtime.h instead of by nvcc. Runs without a GPU.
include(${CMAKE_CURRENT_LIST_DIR}/../../src/cuda/sources.cmake)
find_package(Threads REQUIRED)

set_source_files_properties(${RLHF_CUDA_SOURCES} PROPERTIES LANGUAGE CXX COMPILE_OPTIONS "-xc++")
add_library(rlhf_cuda_objects OBJECT ${RLHF_CUDA_SOURCES} ${CMAKE_CURRENT_LIST_DIR}/emulator.cpp)
# BEFORE: the sources' #include <cuda_runtime.h> must find the emulator's.
target_include_directories(rlhf_cuda_objects BEFORE PRIVATE ${CMAKE_CURRENT_LIST_DIR}
                                                            ${CMAKE_CURRENT_LIST_DIR}/../../include)
# -fno-extern-tls-init: the emulator's thread_local built-ins (threadIdx, dynamicShared, ...) have no
# dynamic initialisation, and GCC would otherwise call a TLS init function that nothing defines.
# (#pragma unroll is nvcc's; GCC cannot see that rowKernel reads `ahead` only after loading it.)
target_compile_options(rlhf_cuda_objects PRIVATE -fno-extern-tls-init -Wall -Wextra -Wno-unknown-pragmas
                                                 -Wno-uninitialized)

rlhf_cuda_libraries(Threads::Threads)
