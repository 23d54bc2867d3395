// What a model's session needs from the extension around it: the core thread and the runtime worker, the log, the
// settings, a scratch folder, and the dialogs it cannot open itself. Tests hand in their own (test/webview/harness.ts).
import type { CoreClient } from '../cli/core-client';
import type { SessionSettings, Variant } from '../protocol';
import type { RuntimeClient } from '../runtime/client';
import type { ExecutionProvider } from '../runtime/protocol';
import type { Log } from './log';
import type { ModelSession } from './session';

export interface Services {
  core: CoreClient;
  runtime: RuntimeClient;
  log: Log;
  settings: () => SessionSettings;
  /** A folder of this extension host's own, for variant models; removed on deactivation. */
  scratch: string;
  /** Export is a dialog-driven flow; the session only supplies the model and the variant. */
  exportVariant: (session: ModelSession, variant: Variant) => Promise<void>;
  /** Asks for a calibration file (a dialog); undefined when the person cancelled. */
  pickCalibration: (modelPath: string) => Promise<string | undefined>;
  /** A run finished on this provider (the status bar shows it, and marks a fallback). */
  ranOn?: (used: ExecutionProvider) => void;
}
