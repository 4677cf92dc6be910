// The cluster part of cooperative_groups for the host emulator (see cuda_runtime.h).
#pragma once

#include "cuda_runtime.h"

namespace cuda_emulator {
void clusterSync();
unsigned clusterRank();
unsigned clusterSize();
// The address `p` (a __shared__ variable of this block) has in block `rank` of the cluster.
void* mapSharedRank(void* p, unsigned rank);
}  // namespace cuda_emulator

namespace cooperative_groups {

class cluster_group {
 public:
  void sync() const { cuda_emulator::clusterSync(); }
  unsigned block_rank() const { return cuda_emulator::clusterRank(); }
  unsigned num_blocks() const { return cuda_emulator::clusterSize(); }
  template <class T>
  T* map_shared_rank(T* p, unsigned rank) const {
    return static_cast<T*>(cuda_emulator::mapSharedRank(const_cast<void*>(static_cast<const void*>(p)), rank));
  }
};

inline cluster_group this_cluster() { return {}; }

}  // namespace cooperative_groups
