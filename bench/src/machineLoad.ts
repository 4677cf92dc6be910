import { readFileSync } from 'node:fs';

/** Jiffies of the whole machine from /proc/stat's first line (Linux); undefined elsewhere. */
export interface CpuTimes {
  readonly busy: number;
  readonly total: number;
}

export const machineCpuTimes = (): CpuTimes | undefined => {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already inside user)
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields;
    const busy = user + nice + system + irq + softirq + steal;
    return { busy, total: busy + idle + iowait };
  } catch {
    return undefined;
  }
};

/** Cores kept busy on average between two readings (by every process, this one included). */
export const busyCores = (from: CpuTimes | undefined, to: CpuTimes | undefined, cores: number): number | undefined =>
  from && to && to.total > from.total ? ((to.busy - from.busy) / (to.total - from.total)) * cores : undefined;
