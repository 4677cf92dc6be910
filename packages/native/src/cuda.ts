// Owned by the CUDA work (issue 4): registers the `cuda` backend from the addon's `cuda` object.
// This first version only reports the backend unavailable; the CUDA helper replaces it.
import { registerUnavailable } from '@rlhf/kernels';

export const registerCuda = (addon: { readonly cudaUnavailable?: string } | undefined, loadError?: string): void =>
  registerUnavailable('cuda', loadError ?? addon?.cudaUnavailable ?? 'the CUDA kernels are not built into this addon');
