// The running work above the tabs: one row per task with its progress, message and Cancel. Progress arrives many times
// a second, so rows are updated in place rather than rebuilt: a Cancel button replaced under the pointer between
// mouse-down and mouse-up never receives the click, and a person could not stop a run whose progress moves fast.
import type { TaskState } from '../../src/protocol';
import { h } from '../dom';

export function renderTasks(box: HTMLElement, tasks: TaskState[], cancel: ((id: string) => void) | null): void {
  const ids = new Set(tasks.map((t) => rowId(t)));
  for (const row of Array.from(box.children)) if (!ids.has(row.id)) row.remove();
  tasks.forEach((t, i) => {
    const existing = box.querySelector<HTMLElement>(`:scope > [id="${rowId(t)}"]`);
    const row = existing ?? newRow(t, cancel);
    update(row, t);
    if (box.children[i] !== row) box.insertBefore(row, box.children[i] ?? null);
  });
}

const rowId = (t: TaskState) => `task-${t.id}`;

function newRow(t: TaskState, cancel: ((id: string) => void) | null): HTMLElement {
  return h('div', { class: 'task', id: rowId(t) },
    h('span', { class: 'task-indicator' }),
    h('span', { class: 'task-title' }),
    h('progress', { max: 1, 'aria-label': t.title }),
    h('span', { class: 'task-message' }),
    cancel ? h('vscode-button', { appearance: 'secondary', 'aria-label': `cancel ${t.title}`, on: { click: () => cancel(t.id) } }, 'Cancel') : null,
  );
}

function update(row: HTMLElement, t: TaskState): void {
  // No spinner while runs are timed: its animation would run on the machine being measured.
  const indicator = row.querySelector<HTMLElement>('.task-indicator')!;
  if (indicator.dataset.timing !== String(t.timing)) {
    indicator.dataset.timing = String(t.timing);
    indicator.replaceChildren(t.timing ? h('span', { class: 'task-timing', title: 'the dashboard stays still while runs are timed' }, '⏱') : h('vscode-progress-ring', { 'aria-hidden': 'true' }));
  }
  row.querySelector('.task-title')!.textContent = t.title;
  const bar = row.querySelector('progress')!;
  if (t.fraction !== null) bar.value = t.fraction;
  else bar.removeAttribute('value');
  row.querySelector('.task-message')!.textContent = t.timing ? `${t.message} (timing: the dashboard pauses until it is done)` : t.message;
}
