// The benchmark statistics the Speed dashboard states (a speedup with its interval, the verdict against its model
// bound): the runtime's definitions, passed on so the webview imports only shared code and says exactly what the
// CLI and bench:rewrites say.
export type { Speedup } from '../runtime/measure/stats';
export { type BoundScope, type Verdict, amdahl, boundWarning, dropsMaskBuild, modelBound, projectionRatio, sameKernels, verdict } from '../runtime/measure/trust';
export type { SiteMeasures } from '../analysis/report/site-measures';
