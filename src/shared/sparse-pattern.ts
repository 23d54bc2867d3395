// The sparse-pattern notation of methods.md and its visibility, for the dashboard's map overlay: the runtime's
// definitions (which measure recall with the rewriters' predicate), passed on so the webview imports only shared code
// and draws exactly the mask whose recall it shows.
export { type SparsePattern, isVisible, parsePattern } from '../runtime/measure/sparse-pattern';
