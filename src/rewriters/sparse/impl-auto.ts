// The `impl` value that asks for the realisation to be chosen by timing (`rewrite --impl auto`), in the core so that
// the rule declarations (src/shared/rule-decls.ts), the rules (which refuse it: it is resolved before they run) and
// the orchestration that resolves it (src/orchestrate/impl-auto.ts) share one definition. No imports: the webview
// bundle reads it through the declarations.
export const IMPL_AUTO = 'auto';
