/**
 * Registers the native backends when @rlhf/native is installed and built; otherwise the runner
 * goes on with what is available and reports the others as skipped, with the reason.
 */
export const loadNativeBackends = async (): Promise<void> => {
  const name = '@rlhf/native';
  try {
    await import(name);
  } catch {
    // Not installed: the registry already says why cpu and cuda are unavailable.
  }
};
