/*
 * The native addon registers the `cpu` and `cuda` backends when imported. The suite must run
 * without it (no compiler at install, a failed build), so it is imported at run time by name, and
 * the structural type below is the part of its API the suite calls.
 */

export interface NativeModule {
  readonly nativeStatus?: () => unknown;
  readonly setNumThreads?: (n: number) => void;
  readonly getNumThreads?: () => number;
  readonly cpuIsa?: () => string;
}

/** A module that loaded, or why it did not. */
export type Loaded<M> = { readonly ok: true; readonly module: M } | { readonly ok: false; readonly reason: string };

export interface OptionalModules {
  readonly native: Loaded<NativeModule>;
}

const loadModule = async <M>(name: string, required: readonly string[]): Promise<Loaded<M>> => {
  try {
    // A specifier held in a variable: the compiler does not resolve it, Node (or vitest's alias) does.
    const specifier: string = name;
    const module = (await import(specifier)) as Record<string, unknown>;
    const missing = required.filter((f) => typeof module[f] !== 'function');
    return missing.length === 0
      ? { ok: true, module: module as M }
      : { ok: false, reason: `${name} does not export ${missing.join(', ')}` };
  } catch (e) {
    const message = e instanceof Error ? e.message.split('\n')[0] : String(e);
    return { ok: false, reason: `${name} could not be imported (${message})` };
  }
};

/** Imports the native addon, which registers `cpu` and `cuda` (or records why they are unavailable). */
export const loadOptionalModules = async (): Promise<OptionalModules> => ({
  native: await loadModule<NativeModule>('@rlhf/native', []),
});
