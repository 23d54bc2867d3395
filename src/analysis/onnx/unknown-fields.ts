// Walks the protobuf wire format next to the schema and lists fields the schema does not know.
//
// protobufjs drops unknown fields while decoding; this walk is how we notice them, so that saving can refuse instead of
// losing data. It never copies payloads: length-delimited fields that are not messages are skipped by length, so a
// model with gigabytes of raw_data is walked in milliseconds.
import * as protobuf from 'protobufjs';

export interface UnknownField {
  /** Dotted path of message types, e.g. `ModelProto.graph.node.attribute`. */
  path: string;
  fieldNumber: number;
}

const LIMIT = 20; // enough to explain the problem; more would only flood the message

export function findUnknownFields(bytes: Uint8Array, type: protobuf.Type): UnknownField[] {
  const found: UnknownField[] = [];
  walk(protobuf.Reader.create(bytes), bytes.length, type, type.name, found);
  return found;
}

function walk(reader: protobuf.Reader, end: number, type: protobuf.Type, path: string, found: UnknownField[]): void {
  while (reader.pos < end && found.length < LIMIT) {
    const tag = reader.uint32();
    const id = tag >>> 3;
    const wire = tag & 7;
    const field = type.fieldsById[id];
    if (!field) {
      found.push({ path, fieldNumber: id });
      reader.skipType(wire);
      continue;
    }
    field.resolve();
    if (wire === 2 && field.resolvedType instanceof protobuf.Type) {
      const len = reader.uint32();
      const subEnd = reader.pos + len;
      if (subEnd > end) throw new Error('length runs past the end of its message');
      walk(reader, subEnd, field.resolvedType, `${path}.${field.name}`, found);
      reader.pos = subEnd;
    } else {
      reader.skipType(wire);
    }
  }
}
