# The CUDA kernels (included by ../../CMakeLists.txt after enable_language(CUDA)).
#   rlhf_cuda_objects  the compiled .cu files (position independent, hidden visibility except the C ABI)
#   rlhf_cuda          a static library of those objects, linking the static CUDA runtime
#   RLHF_CUDA_BINDING_SOURCES  the Node-API half (binding/cuda_binding.cc) for the addon
find_package(CUDAToolkit REQUIRED)

include(${CMAKE_CURRENT_LIST_DIR}/sources.cmake)

add_library(rlhf_cuda_objects OBJECT ${RLHF_CUDA_SOURCES})
target_include_directories(rlhf_cuda_objects PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../../include
                                                     ${CUDAToolkit_INCLUDE_DIRS})
set_target_properties(rlhf_cuda_objects PROPERTIES
  POSITION_INDEPENDENT_CODE ON
  CUDA_STANDARD 17
  CUDA_STANDARD_REQUIRED ON
  CUDA_VISIBILITY_PRESET hidden)
# -lineinfo keeps source lines for profilers at no run-time cost.
target_compile_options(rlhf_cuda_objects PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-lineinfo>)

rlhf_cuda_libraries(CUDA::cudart_static)

if(RLHF_TESTS)
  # The online statistics on the host (online.cuh falls back to exp2f): runs without a GPU.
  add_executable(rlhf_cuda_online_test ${CMAKE_CURRENT_LIST_DIR}/online_host_test.cpp)
  target_compile_definitions(rlhf_cuda_online_test PRIVATE __device__= __forceinline__=inline)
  # The row planner (planRows) on the host: compiled by nvcc, run without a GPU.
  add_executable(rlhf_cuda_rows_test ${CMAKE_CURRENT_LIST_DIR}/rows_host_test.cu)
  target_include_directories(rlhf_cuda_rows_test PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../../include)
  set_target_properties(rlhf_cuda_rows_test PROPERTIES CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON)
  target_link_libraries(rlhf_cuda_rows_test PRIVATE CUDA::cudart_static)
endif()
