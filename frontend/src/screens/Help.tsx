import { useEffect, useRef } from 'react';

/** Every shortcut of the app (the guide's table, plus the help itself). */
export const SHORTCUTS = [
  { keys: 'Ctrl/Cmd + N', action: 'New job submission' },
  { keys: 'Ctrl/Cmd + R', action: 'Refresh current page' },
  { keys: 'Ctrl/Cmd + 1-4', action: 'Navigate sidebar tabs' },
  { keys: '?', action: 'Show this help' },
];

export function Help({ onClose }: { onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
  }, []);
  return (
    <dialog ref={ref} className="help" aria-labelledby="help-title" onClose={onClose} onCancel={onClose}>
      <h2 id="help-title">Keyboard shortcuts</h2>
      <table>
        <thead>
          <tr>
            <th scope="col">Shortcut</th>
            <th scope="col">Action</th>
          </tr>
        </thead>
        <tbody>
          {SHORTCUTS.map((s) => (
            <tr key={s.keys}>
              <td>
                <kbd>{s.keys}</kbd>
              </td>
              <td>{s.action}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p className="muted">In a browser tab some browsers keep Ctrl+N and Ctrl+1–4 for themselves; the desktop app always gets them.</p>
      <button type="button" onClick={onClose} autoFocus>
        Close
      </button>
    </dialog>
  );
}
