// The public face of the analysis core: load, inspect and save ONNX models. No `vscode`, no onnxruntime here.
export { loadModel, decodeModel, type Model, type LoadOptions } from './ir/load';
export { saveModel, type SaveOptions, type SaveResult } from './ir/save';
export { ModelError, type ModelErrorCode } from './onnx/errors';
export { Tensor } from './onnx/tensor';
export { dtypeName, dtypeFromName, byteSize } from './onnx/dtypes';
export { Graph, Node, Value } from './ir/graph';
export * from './report/types';
export { analyzeModel, analyzeLoaded, analyzeWithSites, attentionCost, type AnalyzeOptions } from './analyze';
export { ShapeInfo } from './ir/shapes';
export { detectAttention } from './attention/detect';
