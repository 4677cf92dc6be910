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
get_filename_component(RLHF_CUDA_INCLUDE_DIR "${CMAKE_CURRENT_LIST_DIR}/../../include" ABSOLUTE)

# Once rlhf_cuda_objects exists: the static library rlhf_cuda of those objects, and the shared library
# rlhf's share of them, given directly so that it exports every rlhf_cuda_* entry point even though
# nothing inside it calls them (a static archive would contribute nothing); both link `runtime`.
function(rlhf_cuda_libraries runtime)
  add_library(rlhf_cuda STATIC $<TARGET_OBJECTS:rlhf_cuda_objects>)
  set_target_properties(rlhf_cuda PROPERTIES LINKER_LANGUAGE CXX POSITION_INDEPENDENT_CODE ON)
  target_include_directories(rlhf_cuda PUBLIC ${RLHF_CUDA_INCLUDE_DIR})
  target_link_libraries(rlhf_cuda PUBLIC ${runtime})
  if(TARGET rlhf)
    target_sources(rlhf PRIVATE $<TARGET_OBJECTS:rlhf_cuda_objects>)
    target_link_libraries(rlhf PRIVATE ${runtime})
  endif()
endfunction()
