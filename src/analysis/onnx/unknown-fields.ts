// Walks the protobuf wire format next to the schema and lists fields the schema does not know.
//
// protobufjs drops unknown fields while decoding; this walk is how we notice them, so that saving can refuse instead of
// losing data. It never copies payloads: length-delimited fields that are not messages are skipped by length, so a
// model with gigabytes of raw_data is walked in milliseconds.
//
// It also bounds how deeply messages nest. protobufjs decodes by recursion, so a file of subgraphs nested thousands
// deep would end its decode in a stack overflow; the walk runs first and refuses such a file by name instead.
import * as protobuf from 'protobufjs';

export interface UnknownField {
  /** Dotted path of message types, e.g. `ModelProto.graph.node.attribute`. */
  path: string;
  fieldNumber: number;
}

const LIMIT = 20; // enough to explain the problem; more would only flood the message

/** protobuf's own default recursion limit (onnxruntime's reader refuses deeper files too). */
export const MAX_DEPTH = 100;

export class NestingTooDeep extends Error {
  constructor() {
    super(`messages nested more than ${MAX_DEPTH} deep`);
  }
}

export function findUnknownFields(bytes: Uint8Array, type: protobuf.Type): UnknownField[] {
  const found: UnknownField[] = [];
  walk(protobuf.Reader.create(bytes), bytes.length, type, type.name, found, 0);
  return found;
}

function walk(reader: protobuf.Reader, end: number, type: protobuf.Type, path: string, found: UnknownField[], depth: number): void {
  if (depth > MAX_DEPTH) throw new NestingTooDeep();
  // After LIMIT unknown fields the walk goes on (without recording more), so that the depth bound still holds.
  while (reader.pos < end) {
    const tag = reader.uint32();
    const id = tag >>> 3;
    const wire = tag & 7;
    const field = type.fieldsById[id];
    if (!field) {
      if (found.length < LIMIT) found.push({ path, fieldNumber: id });
      reader.skipType(wire);
      continue;
    }
    field.resolve();
    if (wire === 2 && field.resolvedType instanceof protobuf.Type) {
      const len = reader.uint32();
      const subEnd = reader.pos + len;
      if (subEnd > end) throw new Error('length runs past the end of its message');
      walk(reader, subEnd, field.resolvedType, `${path}.${field.name}`, found, depth + 1);
      reader.pos = subEnd;
    } else {
      reader.skipType(wire);
    }
  }
}
