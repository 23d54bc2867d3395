import { describe, expect, it } from 'vitest';
import { dashboardTitle } from '../../src/extension/names';

describe('dashboard titles', () => {
  it("name the model's folder and file, so two model.onnx tabs differ", () => {
    expect(dashboardTitle('/models/bert-base/model.onnx')).toBe('bert-base/model.onnx');
    expect(dashboardTitle('/models/gpt2/model.onnx')).not.toBe(dashboardTitle('/models/bert-base/model.onnx'));
    expect(dashboardTitle('/m.onnx')).toBe('m.onnx');
  });
});
