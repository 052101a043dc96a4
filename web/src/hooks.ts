import { useCallback, useEffect, useRef, useState } from "react";

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
