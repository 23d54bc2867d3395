// The ONNX protobuf schema as of IR version 11 (onnx 1.18+), as a protobufjs reflection root.
//
// Why not onnx-proto's generated module alone: it carries onnx 1.10's schema, and protobufjs drops every field it does
// not know while decoding (FunctionProto.attribute_proto/value_info, NodeProto.overload, metadata_props on nodes and
// graphs, device configurations, ...). A model that went through load/save would lose them silently. This descriptor
// follows the current onnx.proto field numbers; anything newer still is caught by `unknown-fields.ts` and refuses to
// save rather than disappear.
import * as protobuf from 'protobufjs';

type Fields = Record<string, { type: string; id: number; rule?: 'repeated'; options?: Record<string, unknown> }>;

const rep = (type: string, id: number, packed?: boolean) =>
  ({ type, id, rule: 'repeated' as const, ...(packed === undefined ? {} : { options: { packed } }) });
const one = (type: string, id: number) => ({ type, id });

const messages: Record<string, { fields: Fields; oneofs?: Record<string, { oneof: string[] }>; nested?: Record<string, unknown> }> = {
  StringStringEntryProto: { fields: { key: one('string', 1), value: one('string', 2) } },
  OperatorSetIdProto: { fields: { domain: one('string', 1), version: one('int64', 2) } },
  AttributeProto: {
    fields: {
      name: one('string', 1), refAttrName: one('string', 21), docString: one('string', 13), type: one('AttributeType', 20),
      f: one('float', 2), i: one('int64', 3), s: one('bytes', 4), t: one('TensorProto', 5), g: one('GraphProto', 6),
      sparseTensor: one('SparseTensorProto', 22), tp: one('TypeProto', 14),
      floats: rep('float', 7, false), ints: rep('int64', 8, false), strings: rep('bytes', 9), tensors: rep('TensorProto', 10),
      graphs: rep('GraphProto', 11), sparseTensors: rep('SparseTensorProto', 23), typeProtos: rep('TypeProto', 15),
    },
  },
  ValueInfoProto: {
    fields: { name: one('string', 1), type: one('TypeProto', 2), docString: one('string', 3), metadataProps: rep('StringStringEntryProto', 4) },
  },
  NodeProto: {
    fields: {
      input: rep('string', 1), output: rep('string', 2), name: one('string', 3), opType: one('string', 4),
      domain: one('string', 7), overload: one('string', 8), attribute: rep('AttributeProto', 5), docString: one('string', 6),
      metadataProps: rep('StringStringEntryProto', 9), deviceConfigurations: rep('NodeDeviceConfigurationProto', 10),
    },
  },
  IntIntListEntryProto: { fields: { key: one('int64', 1), value: rep('int64', 2, false) } },
  NodeDeviceConfigurationProto: {
    fields: { configurationId: one('string', 1), shardingSpec: rep('ShardingSpecProto', 2), pipelineStage: one('int32', 3) },
  },
  ShardingSpecProto: {
    fields: {
      tensorName: one('string', 1), device: rep('int64', 2, false), indexToDeviceGroupMap: rep('IntIntListEntryProto', 3),
      shardedDim: rep('ShardedDimProto', 4),
    },
  },
  ShardedDimProto: { fields: { axis: one('int64', 1), simpleSharding: rep('SimpleShardedDimProto', 2) } },
  SimpleShardedDimProto: {
    fields: { dimValue: one('int64', 1), dimParam: one('string', 2), numShards: one('int64', 3) },
    oneofs: { dim: { oneof: ['dimValue', 'dimParam'] } },
  },
  TrainingInfoProto: {
    fields: {
      initialization: one('GraphProto', 1), algorithm: one('GraphProto', 2),
      initializationBinding: rep('StringStringEntryProto', 3), updateBinding: rep('StringStringEntryProto', 4),
    },
  },
  DeviceConfigurationProto: { fields: { name: one('string', 1), numDevices: one('int32', 2), device: rep('string', 3) } },
  ModelProto: {
    fields: {
      irVersion: one('int64', 1), opsetImport: rep('OperatorSetIdProto', 8), producerName: one('string', 2),
      producerVersion: one('string', 3), domain: one('string', 4), modelVersion: one('int64', 5), docString: one('string', 6),
      graph: one('GraphProto', 7), metadataProps: rep('StringStringEntryProto', 14), trainingInfo: rep('TrainingInfoProto', 20),
      functions: rep('FunctionProto', 25), configuration: rep('DeviceConfigurationProto', 26),
    },
  },
  TensorAnnotation: { fields: { tensorName: one('string', 1), quantParameterTensorNames: rep('StringStringEntryProto', 2) } },
  GraphProto: {
    fields: {
      node: rep('NodeProto', 1), name: one('string', 2), initializer: rep('TensorProto', 5),
      sparseInitializer: rep('SparseTensorProto', 15), docString: one('string', 10), input: rep('ValueInfoProto', 11),
      output: rep('ValueInfoProto', 12), valueInfo: rep('ValueInfoProto', 13), quantizationAnnotation: rep('TensorAnnotation', 14),
      metadataProps: rep('StringStringEntryProto', 16),
    },
  },
  TensorProto: {
    fields: {
      dims: rep('int64', 1, false), dataType: one('int32', 2), segment: one('Segment', 3), floatData: rep('float', 4, true),
      int32Data: rep('int32', 5, true), stringData: rep('bytes', 6), int64Data: rep('int64', 7, true), name: one('string', 8),
      docString: one('string', 12), rawData: one('bytes', 9), externalData: rep('StringStringEntryProto', 13),
      dataLocation: one('DataLocation', 14), doubleData: rep('double', 10, true), uint64Data: rep('uint64', 11, true),
      metadataProps: rep('StringStringEntryProto', 16),
    },
    nested: {
      Segment: { fields: { begin: one('int64', 1), end: one('int64', 2) } },
      DataLocation: { values: { DEFAULT: 0, EXTERNAL: 1 } },
    },
  },
  SparseTensorProto: { fields: { values: one('TensorProto', 1), indices: one('TensorProto', 2), dims: rep('int64', 3, false) } },
  TensorShapeProto: {
    fields: { dim: rep('Dimension', 1) },
    nested: {
      Dimension: {
        fields: { dimValue: one('int64', 1), dimParam: one('string', 2), denotation: one('string', 3) },
        oneofs: { value: { oneof: ['dimValue', 'dimParam'] } },
      },
    },
  },
  TypeProto: {
    fields: {
      tensorType: one('Tensor', 1), sequenceType: one('Sequence', 4), mapType: one('Map', 5), optionalType: one('Optional', 9),
      sparseTensorType: one('SparseTensor', 8), opaqueType: one('Opaque', 7), denotation: one('string', 6),
    },
    oneofs: { value: { oneof: ['tensorType', 'sequenceType', 'mapType', 'optionalType', 'sparseTensorType', 'opaqueType'] } },
    nested: {
      Tensor: { fields: { elemType: one('int32', 1), shape: one('TensorShapeProto', 2) } },
      Sequence: { fields: { elemType: one('TypeProto', 1) } },
      Map: { fields: { keyType: one('int32', 1), valueType: one('TypeProto', 2) } },
      Optional: { fields: { elemType: one('TypeProto', 1) } },
      SparseTensor: { fields: { elemType: one('int32', 1), shape: one('TensorShapeProto', 2) } },
      Opaque: { fields: { domain: one('string', 1), name: one('string', 2) } },
    },
  },
  FunctionProto: {
    fields: {
      name: one('string', 1), input: rep('string', 4), output: rep('string', 5), attribute: rep('string', 6),
      attributeProto: rep('AttributeProto', 11), node: rep('NodeProto', 7), docString: one('string', 8),
      opsetImport: rep('OperatorSetIdProto', 9), domain: one('string', 10), overload: one('string', 13),
      valueInfo: rep('ValueInfoProto', 12), metadataProps: rep('StringStringEntryProto', 14),
    },
  },
};

const enums = {
  AttributeType: {
    values: {
      UNDEFINED: 0, FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, SPARSE_TENSOR: 11, TYPE_PROTO: 13, FLOATS: 6, INTS: 7,
      STRINGS: 8, TENSORS: 9, GRAPHS: 10, SPARSE_TENSORS: 12, TYPE_PROTOS: 14,
    },
  },
};

const root = protobuf.Root.fromJSON({ nested: { onnx: { nested: { ...messages, ...enums } } } });

/** Reflection types, looked up once. */
export const ModelProtoType = root.lookupType('onnx.ModelProto');
export const TensorProtoType = root.lookupType('onnx.TensorProto');
export const GraphProtoType = root.lookupType('onnx.GraphProto');
export const schemaRoot = root;

/** The highest IR version whose fields this schema knows. */
export const MAX_IR_VERSION = 11;
/** IR 3 introduced opset_import; older files are not produced by any current exporter. */
export const MIN_IR_VERSION = 3;
