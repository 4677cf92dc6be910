# The CUDA sources, compiled by nvcc (cuda.cmake) or as C++ for the host emulator (tests/cuda_emulator).
set(RLHF_CUDA_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/runtime.cu
  ${CMAKE_CURRENT_LIST_DIR}/logprobs.cu
  ${CMAKE_CURRENT_LIST_DIR}/logprobsBackward.cu
  ${CMAKE_CURRENT_LIST_DIR}/logsoftmax.cu
  ${CMAKE_CURRENT_LIST_DIR}/logsoftmaxBackward.cu
  ${CMAKE_CURRENT_LIST_DIR}/klFull.cu
  ${CMAKE_CURRENT_LIST_DIR}/pairwise.cu
  ${CMAKE_CURRENT_LIST_DIR}/ranking.cu
  ${CMAKE_CURRENT_LIST_DIR}/dpo.cu)
set(RLHF_CUDA_BINDING_SOURCES ${CMAKE_CURRENT_LIST_DIR}/../../binding/cuda_binding.cc)
get_filename_component(RLHF_CUDA_BINDING_SOURCES "${RLHF_CUDA_BINDING_SOURCES}" ABSOLUTE)
