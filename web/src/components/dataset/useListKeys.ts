// The keyboard of a reviewable list: Space plays, j / k (or the arrows) move, letters act.
import { useEffect, useRef, type RefObject } from "react";
import { isTypingTarget } from "../../hooks";
import type { WaveformHandle } from "../WaveformPlayer";

interface ListKeys<T extends { id: string }> {
  /** Listen only while the tab is shown. */
  active: boolean;
  items: T[];
  selectedId: string | null;
  select: (item: T) => void;
  player: RefObject<WaveformHandle>;
  /** Letter keys that act on the selected item; with nothing selected they pass through. */
  actions: Record<string, (item: T) => void>;
  /** Escape, where the tab has something to close; otherwise it passes through. */
  onEscape?: () => void;
}

export function useListKeys<T extends { id: string }>(options: ListKeys<T>): void {
  // The listener reads what the last render committed, subscribed once while active.
  const latest = useRef(options);
  useEffect(() => {
    latest.current = options;
  });

  const { active } = options;
  useEffect(() => {
    if (!active) return undefined;
    const onKey = (event: KeyboardEvent) => {
      if (event.altKey || event.ctrlKey || event.metaKey || isTypingTarget(event.target)) return;
      if (document.querySelector("[aria-modal='true']")) return;
      const { items, selectedId, select, player, actions, onEscape } = latest.current;
      const index = items.findIndex((item) => item.id === selectedId);
      const current = index >= 0 ? items[index] : null;
      const key = event.key;
      const action = Object.prototype.hasOwnProperty.call(actions, key) ? actions[key] : undefined;
      let handled = true;
      if (key === " " || key === "Spacebar") player.current?.toggle();
      else if (key === "j" || key === "ArrowDown") {
        const next = items[Math.min(items.length - 1, index + 1)];
        if (next) select(next);
      } else if (key === "k" || key === "ArrowUp") {
        const previous = items[Math.max(0, index - 1)];
        if (previous) select(previous);
      } else if (action && current) action(current);
      else if (key === "Escape" && onEscape) onEscape();
      else handled = false;
      // Also stops a focused button from being "clicked" by Space.
      if (handled) event.preventDefault();
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [active]);
}
