const SHORTCUTS: [string, string][] = [
  ["Space", "play / pause"],
  ["j ↓", "next"],
  ["k ↑", "previous"],
  ["d", "discard / restore"],
  ["p n x", "positive / negative / noise"],
];

export function ShortcutLegend() {
  return (
    <ul className="shortcut-legend" aria-label="Keyboard shortcuts">
      {SHORTCUTS.map(([keys, action]) => (
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
