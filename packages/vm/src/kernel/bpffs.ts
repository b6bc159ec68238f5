// A BPF filesystem to pin programs and maps in while the kernel is used as an oracle. When
// /sys/fs/bpf is a bpffs, a fresh subdirectory of it is used; otherwise a private bpffs is
// mounted on a temporary directory. `close()` removes the pins (which frees the programs and
// maps) and undoes the mount.

import { mkdirSync, mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findTool, runTool } from './exec.js';

/** statfs f_type of a bpffs (BPF_FS_MAGIC in include/uapi/linux/magic.h). */
export const BPF_FS_MAGIC = 0xcafe4a11;
const SYS_FS_BPF = '/sys/fs/bpf';

export function isBpffs(path: string): boolean {
  try {
    return statfsSync(path).type === BPF_FS_MAGIC;
  } catch {
    return false;
  }
}

export class Bpffs {
  private closed = false;

  private constructor(
    /** The directory to pin under. */
    readonly dir: string,
    /** True when this object mounted the filesystem (and unmounts it on close). */
    readonly mounted: boolean,
  ) {}

  /** Opens a place to pin: a subdirectory of /sys/fs/bpf if that is a bpffs, else a private mount. */
  static open(): Bpffs {
    if (isBpffs(SYS_FS_BPF)) return new Bpffs(mkdtempSync(join(SYS_FS_BPF, 'rewind-')), false);
    const dir = mkdtempSync(join(tmpdir(), 'rewind-bpffs-'));
    try {
      runTool(findTool('mount') ?? 'mount', ['-t', 'bpf', 'bpf', dir], `cannot mount a bpffs on ${dir}`);
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    return new Bpffs(dir, true);
  }

  /** A new empty directory inside the filesystem, for one object's program and maps. */
  subdir(name: string): string {
    const d = join(this.dir, name);
    mkdirSync(d, { recursive: true });
    return d;
  }

  /** Removes every pin (freeing what only the pins kept alive) and the mount, if this object made it. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.mounted) runTool(findTool('umount') ?? 'umount', [this.dir], `cannot unmount the bpffs on ${this.dir}`);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
