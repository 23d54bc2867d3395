// What a view gets from the app shell: the state, a way to change the view's own choices, and the host.
import type { WebviewMessage } from '../../src/protocol';
import type { UiState, ViewState } from '../store';

export interface ViewContext {
  /** The current state, read when used (a getter): event handlers must not act on the state of the last render. */
  readonly state: ViewState;
  /** False in an exported report: no buttons that ask the extension for work. */
  interactive: boolean;
  post(message: WebviewMessage): void;
  /** Changes the view's choices; `rerender: false` for edits that the DOM already shows (typing in a field). */
  setUi(patch: Partial<UiState>, rerender?: boolean): void;
}
