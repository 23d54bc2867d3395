import { it } from 'vitest';
import { loadModel } from '../src/analysis/ir/load';
import { ShapeInfo } from '../src/analysis/ir/shapes';
it('probe', () => {
  const m = loadModel(process.env.F!);
  const shapes = new ShapeInfo(m.graph);
  const sms = m.graph.nodes.filter((n) => n.opType === 'Softmax');
  const sm = sms[Number(process.env.I ?? 0)];
  const seen = new Set();
  const walk = (v: any, depth: number, pre: string) => {
    if (!v || depth > Number(process.env.D ?? 12) || seen.has(v)) return;
    seen.add(v);
    const p = v.producer;
    const vals = shapes.values(v);
    console.log(pre + (p ? `${p.opType} ${p.name}` : v.initializer ? 'init' : 'input') + ` -> ${v.name} ${JSON.stringify(shapes.shape(v))} ${vals && vals.length < 8 ? JSON.stringify(vals) : ''}`);
    if (p && !v.initializer) for (const i of p.inputs) walk(i, depth + 1, pre + ' ');
  };
  walk(sm.input(0), 0, '');
});
