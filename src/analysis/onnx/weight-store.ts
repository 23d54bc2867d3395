// Where a rewrite writes the large tensors it computes (pruned slices, group means, dictionary atoms), one at a time,
// as it computes them: a hidden temporary file in the output's folder that the save turns into the output's data file
// by renaming it (no second copy). Each tensor becomes an external reference into that file, so the rewrite never
// holds more than the tensor it is working on, and later rules and the save read it back like any external weight.
//
// The file lives next to the output (same filesystem, so the rename is atomic) under a name that says which output it
// belongs to; a store that is not committed (a failed or cancelled rewrite) deletes its file on dispose.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ExternalRef } from './external-data';

/** Offsets of tensors in data files are aligned like onnx's own writer aligns them. */
export const DATA_ALIGN = 64;

/** Writes bytes at `offset` within the tensor being filled. */
export type TensorWrite = (offset: number, bytes: Uint8Array) => void;

export class WeightStore {
  /** The temporary file (until `commit`), then the file it was renamed to. */
  file: string;
  private fd: number | null = null;
  private end = 0;
  private committed = false;
  private readonly refs = new Set<ExternalRef>();

  /** `dir`: the output's folder; `name`: the data file the store will become (used only in the temporary name). */
  constructor(dir: string, name: string) {
    this.file = path.join(dir, `.${name}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  }

  /** Bytes in the file (tensors and the alignment gaps between them). */
  get bytes(): number {
    return this.end;
  }

  /** The references handed out, in file order. */
  get tensors(): ExternalRef[] {
    return [...this.refs];
  }

  owns(ref: ExternalRef | undefined): boolean {
    return ref !== undefined && this.refs.has(ref);
  }

  /**
   * Reserves `length` bytes, lets `fill` write them (in any order, each byte once or more), and returns the reference.
   * A fill that throws leaves a gap that no reference points at.
   */
  add(length: number, fill: (write: TensorWrite) => void): ExternalRef {
    if (this.committed) throw new Error('the weight store was already committed');
    if (this.fd === null) this.fd = fs.openSync(this.file, 'wx+');
    const fd = this.fd;
    const offset = Math.ceil(this.end / DATA_ALIGN) * DATA_ALIGN;
    this.end = offset + length;
    fill((at, bytes) => {
      if (at < 0 || at + bytes.length > length) throw new RangeError(`write of ${bytes.length} bytes at ${at} is outside the tensor's ${length} bytes`);
      writeAll(fd, bytes, offset + at);
    });
    const ref: ExternalRef = { location: path.basename(this.file), file: this.file, offset, length, temporary: true };
    this.refs.add(ref);
    return ref;
  }

  /** Flushes the file to disk and renames it to `target`; the references follow it. */
  commit(target: string): void {
    if (this.fd === null) throw new Error('the weight store holds no tensors');
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    this.fd = null;
    fs.renameSync(this.file, target);
    this.committed = true;
    this.file = target;
    for (const r of this.refs) {
      r.file = target;
      r.location = path.basename(target);
      r.temporary = false;
    }
  }

  /** Closes the file and, unless committed, deletes it. Safe to call more than once. */
  dispose(): void {
    if (this.fd !== null) {
      try { fs.closeSync(this.fd); } catch { /* already closed */ }
      this.fd = null;
    }
    if (!this.committed) {
      try { fs.unlinkSync(this.file); } catch { /* never created, or already gone */ }
    }
  }
}

export function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done, position + done);
}
