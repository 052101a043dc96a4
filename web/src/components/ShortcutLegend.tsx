/** Keys (space-separated in the first string) and what they do, beside a waveform. */
export type Shortcut = [keys: string, action: string];

export function ShortcutLegend({ shortcuts }: { shortcuts: Shortcut[] }) {
  return (
    <ul className="shortcut-legend" aria-label="Keyboard shortcuts">
      {shortcuts.map(([keys, action]) => (
        <li key={keys}>
          {keys.split(" ").map((k) => (
            <kbd key={k}>{k}</kbd>
          ))}{" "}
          {action}
        </li>
      ))}
    </ul>
  );
}
