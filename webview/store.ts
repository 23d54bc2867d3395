// The dashboard's state: the host's session snapshot, the running tasks, failures to show, and the view's own choices
// (tab, studio draft, selected site/head/sequence length). `reduce` applies a host message; `persisted` is what goes
// to setState, so hiding, showing and reloading the webview brings back the same view. Pure: tested without a DOM.
import { type HostMessage, type RuleStep, type SessionSnapshot, type TabId, type TaskState, isTabId } from '../src/protocol';
import { checkSteps } from '../src/shared/rule-steps';
import { DEFAULT_BENCH_SEQ, DEFAULT_BUDGETS, type PlanForm } from './logic/advisor';

export interface StudioState {
  rule: string | null;
  /** The texts typed into the rule's fields, by field key. */
  values: Record<string, string>;
  /** Sites for the next step; null = every site. */
  sites: number[] | null;
  steps: RuleStep[];
  /** The name the person typed; empty: the variant is named after its steps. */
  label: string;
}

export interface UiState {
  tab: TabId;
  studio: StudioState;
  mapsSite: number | null;
  mapsHead: number;
  /** The pattern drawn over the map (may differ from the one the runtime measured). */
  mapsPattern: string | null;
  speedSeq: number | null;
  /** The texts typed into the decode, generation, evaluation and Heads forms (checked when their button is pressed). */
  decodePasts: string;
  generationSteps: string;
  /** Empty: the model's default length. */
  evalSeq: string;
  evalWindows: string;
  headsSite: number | null;
  pruneCount: string;
  /** Prune the least important heads of the shown site only, or of every site. */
  pruneScope: 'site' | 'all';
  /** The density budgets typed into the Advisor tab (checked when Find plans is pressed). */
  advisorBudgets: string;
  /** The frontier point whose plan the grid shows (its budget); null: the first, the plan asked for. */
  advisorBudget: number | null;
  /** How Keep as variant writes the plan. */
  advisorForm: PlanForm;
  /** Whether Find plans also times the plans' blocked forms against the dense models, and at what length (as typed). */
  advisorBench: boolean;
  advisorBenchSeq: string;
}

export interface Failure {
  title: string;
  message: string;
}

export interface ViewState {
  session: SessionSnapshot | null;
  tasks: TaskState[];
  failures: Failure[];
  ui: UiState;
}

export interface PersistedState {
  session: SessionSnapshot | null;
  ui: UiState;
}

export function initialUi(): UiState {
  return {
    tab: 'overview',
    studio: { rule: null, values: {}, sites: null, steps: [], label: '' },
    mapsSite: null,
    mapsHead: 0,
    mapsPattern: null,
    speedSeq: null,
    decodePasts: '64, 256, 1024',
    generationSteps: '16',
    evalSeq: '',
    evalWindows: '64',
    headsSite: null,
    pruneCount: '1',
    pruneScope: 'site',
    advisorBudgets: DEFAULT_BUDGETS,
    advisorBudget: null,
    advisorForm: 'mask',
    advisorBench: false,
    advisorBenchSeq: DEFAULT_BENCH_SEQ,
  };
}

export function initialState(): ViewState {
  return { session: null, tasks: [], failures: [], ui: initialUi() };
}

/** Failures kept on screen; older ones are in the output channel. */
const MAX_FAILURES = 3;

export function reduce(state: ViewState, message: HostMessage): ViewState {
  switch (message.type) {
    case 'didChangeSession': {
      const session = message.session;
      const ui = { ...state.ui };
      // A new maps result selects its site and pattern; a head that no longer exists falls back to 0.
      if (session.maps && session.maps !== state.session?.maps) {
        ui.mapsSite = session.maps.site;
        ui.mapsPattern = session.maps.pattern;
        if (ui.mapsHead >= session.maps.dims[0]) ui.mapsHead = 0;
      }
      if (ui.advisorBudget !== null && !session.advisor?.frontier.some((f) => f.budget === ui.advisorBudget)) ui.advisorBudget = null;
      if (ui.speedSeq !== null && session.speed && !session.speed.seqs.includes(ui.speedSeq)) ui.speedSeq = null;
      return { ...state, session, ui };
    }
    case 'didChangeTasks':
      return { ...state, tasks: message.tasks };
    case 'didFail':
      return { ...state, failures: [...state.failures, { title: message.title, message: message.message }].slice(-MAX_FAILURES) };
    case 'didRequestTab':
      return { ...state, ui: { ...state.ui, tab: message.tab } };
  }
}

export function persisted(state: ViewState): PersistedState {
  return { session: state.session, ui: state.ui };
}

/** The state a reloaded webview starts from; anything unreadable is dropped rather than trusted. */
export function restore(saved: unknown): ViewState {
  const base = initialState();
  if (typeof saved !== 'object' || saved === null) return base;
  const s = saved as Partial<PersistedState>;
  const ui = { ...base.ui, ...(typeof s.ui === 'object' && s.ui !== null ? s.ui : {}) };
  if (!isTabId(ui.tab)) ui.tab = 'overview';
  // A draft saved by an older version (command-line flags) or tampered with is dropped, not sent to the host.
  const studio = { ...base.ui.studio, ...(typeof ui.studio === 'object' && ui.studio !== null ? ui.studio : {}) };
  if (studio.steps.length && !checkSteps(studio.steps)) studio.steps = [];
  ui.studio = studio;
  const session = typeof s.session === 'object' && s.session !== null && typeof s.session.modelPath === 'string' ? s.session : null;
  return { ...base, session, ui };
}
