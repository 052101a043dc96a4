import { useCallback, useEffect, useLayoutEffect, useRef, useState, type RefObject } from "react";

/**
 * A trigger that runs `fn` once after a burst of calls settles (`waitMs`), but at least
 * every `maxWaitMs` during a long burst: a reconnect replays many events at once.
 */
export function useCoalesced(fn: () => void, waitMs = 250, maxWaitMs = 1_000): () => void {
  const latest = useRef(fn);
  latest.current = fn;
  const timer = useRef<number | undefined>(undefined);
  const firstCall = useRef<number | null>(null);

  useEffect(() => () => window.clearTimeout(timer.current), []);

  return useCallback(() => {
    const now = Date.now();
    if (firstCall.current === null) firstCall.current = now;
    window.clearTimeout(timer.current);
    const delay = Math.max(0, Math.min(waitMs, firstCall.current + maxWaitMs - now));
    timer.current = window.setTimeout(() => {
      firstCall.current = null;
      latest.current();
    }, delay);
  }, [waitMs, maxWaitMs]);
}

/** Run `fn` every `ms` while `active`. */
export function useInterval(fn: () => void, ms: number, active = true): void {
  const latest = useRef(fn);
  latest.current = fn;
  useEffect(() => {
    if (!active) return undefined;
    const id = window.setInterval(() => latest.current(), ms);
    return () => window.clearInterval(id);
  }, [ms, active]);
}

/** A value that changes only after it has been stable for `ms` (for text filters). */
export function useDebounced<T>(value: T, ms: number): T {
  const [debounced, setDebounced] = useState(value);
  useEffect(() => {
    const id = window.setTimeout(() => setDebounced(value), ms);
    return () => window.clearTimeout(id);
  }, [value, ms]);
  return debounced;
}

/** Whether a keyboard event comes from a place where typing means typing. */
export function isTypingTarget(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  const tag = target.tagName;
  return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable;
}

const FOCUSABLE =
  "a[href], button, input, select, textarea, summary, audio[controls], video[controls], [tabindex], [contenteditable]";

/** The places Tab stops at inside `root`, in document order. */
function tabStops(root: HTMLElement): HTMLElement[] {
  return [...root.querySelectorAll<HTMLElement>(FOCUSABLE)].filter(
    (el) => el.tabIndex >= 0 && !el.matches(":disabled") && el.getClientRects().length > 0,
  );
}

/**
 * Keep the keyboard in a modal dialog while it is mounted: the focus moves to the dialog (which
 * needs tabIndex={-1}), Tab and Shift+Tab wrap round its controls, Escape calls `onEscape`, and
 * on closing the focus goes back to the control that opened it, if that is still on the page.
 */
export function useFocusTrap(ref: RefObject<HTMLElement>, onEscape?: () => void): void {
  const escape = useRef(onEscape);
  escape.current = onEscape;
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return undefined;
    const opener = document.activeElement;
    dialog.focus();
    const onKey = (event: KeyboardEvent) => {
      if (event.key === "Escape" && escape.current) {
        escape.current();
        return;
      }
      if (event.key !== "Tab") return;
      const stops = tabStops(dialog);
      const at = document.activeElement;
      // On the dialog itself, or outside it after a click on the header (usable above the
      // modal): Tab starts from an end.
      const fromEnd = at === dialog || !(at instanceof Node) || !dialog.contains(at);
      if (!stops.length) {
        event.preventDefault();
        dialog.focus();
      } else if (fromEnd || at === (event.shiftKey ? stops[0] : stops[stops.length - 1])) {
        event.preventDefault();
        (event.shiftKey ? stops[stops.length - 1] : stops[0]).focus();
      }
    };
    document.addEventListener("keydown", onKey);
    return () => {
      document.removeEventListener("keydown", onKey);
      if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
    };
  }, [ref]);
}

/** The rendered width of an element in CSS px, kept current; null until measured. */
export function useWidth(ref: RefObject<Element>): number | null {
  const [width, setWidth] = useState<number | null>(null);
  // Measured before the first paint, so nothing is drawn at a guessed width.
  useLayoutEffect(() => {
    const element = ref.current;
    if (!element) return undefined;
    const measure = () => {
      const measured = element.getBoundingClientRect().width;
      if (measured > 0) setWidth(Math.round(measured));
    };
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(element);
    return () => observer.disconnect();
  }, [ref]);
  return width;
}
