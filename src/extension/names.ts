// Names the editor shows for a model: the tab of its dashboard carries the model's folder and file, because exported
// models are usually all called model.onnx and "Attention Lens: model.onnx" told several tabs apart by nothing.
// No `vscode` here, so it is unit-tested.
import * as path from 'node:path';

export function dashboardTitle(modelPath: string): string {
  const folder = path.basename(path.dirname(modelPath));
  const file = path.basename(modelPath);
  return folder ? `${folder}/${file}` : file;
}
