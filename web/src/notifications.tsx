// Toasts (transient) and the bell's list of recent job and deployment notifications.
// The list is rebuilt from the event log after a reload; which entries the operator dismissed
// and up to which event they have read are remembered in localStorage.
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from "react";

export type NoticeKind = "success" | "error" | "info";

export interface NoticeLink {
  href: string;
  label: string;
  download?: boolean;
}

export interface Notice {
  id: number;
  kind: NoticeKind;
  title: string;
  body?: string;
  links?: NoticeLink[];
  at: Date;
  /** The event it tells of: dismissing the notice is remembered across reloads. */
  eventId?: number;
}

export interface NotifyOptions {
  kind?: NoticeKind;
  body?: string;
  links?: NoticeLink[];
  /** Keep it in the bell's list (job and deployment outcomes), not only as a toast. */
  record?: boolean;
  /** The event it tells of; a notice for an event already listed or dismissed is dropped. */
  eventId?: number;
  /** When it happened (default: now). */
  at?: Date;
  /** `false`: into the bell's list only, no toast (a list rebuilt from history). */
  toast?: boolean;
}

interface NotificationsValue {
  notify: (title: string, options?: NotifyOptions) => void;
  toasts: Notice[];
  history: Notice[];
  unread: number;
  /** Close a toast (its entry in the bell's list stays). */
  dismiss: (id: number) => void;
  /** Remove an entry from the bell's list for good (it stays away after a reload). */
  dismissNotice: (id: number) => void;
  dismissAll: () => void;
  markRead: () => void;
}

const NotificationsContext = createContext<NotificationsValue | null>(null);
export const HISTORY_SIZE = 30;
const MAX_TOASTS = 4;
const DISMISSED_KEY = "waketrain.notifications.dismissed";
const SEEN_KEY = "waketrain.notifications.seenEventId";
const MAX_REMEMBERED = 500;

function loadDismissed(): Set<number> {
  try {
    const stored: unknown = JSON.parse(window.localStorage.getItem(DISMISSED_KEY) ?? "[]");
    return new Set(Array.isArray(stored) ? stored.filter((id): id is number => typeof id === "number") : []);
  } catch {
    return new Set();
  }
}

/** Adds to what is stored (another tab may have dismissed others), keeping the newest ids. */
function rememberDismissed(ids: number[]): Set<number> {
  const all = new Set([...loadDismissed(), ...ids]);
  const kept = [...all].sort((a, b) => b - a).slice(0, MAX_REMEMBERED);
  window.localStorage.setItem(DISMISSED_KEY, JSON.stringify(kept));
  return new Set(kept);
}

function loadSeen(): number {
  return Number(window.localStorage.getItem(SEEN_KEY)) || 0;
}

function newestFirst(a: Notice, b: Notice): number {
  return b.at.getTime() - a.at.getTime() || (b.eventId ?? 0) - (a.eventId ?? 0);
}

export function NotificationsProvider({ children }: { children: ReactNode }) {
  const [toasts, setToasts] = useState<Notice[]>([]);
  const [history, setHistory] = useState<Notice[]>([]);
  // Read: events up to this id (remembered), and notices without an event until this time.
  const [seenEventId, setSeenEventId] = useState(loadSeen);
  const [readAt, setReadAt] = useState(0);
  const nextId = useRef(1);
  const dismissed = useRef<Set<number>>(loadDismissed());
  const listed = useRef(new Set<number>());

  const dismiss = useCallback((id: number) => {
    setToasts((current) => current.filter((toast) => toast.id !== id));
  }, []);

  const notify = useCallback(
    (title: string, options: NotifyOptions = {}) => {
      const { eventId } = options;
      // Listed already (the list was rebuilt from the log as the event came in): a toast at most.
      let record = options.record ?? false;
      if (eventId !== undefined) {
        if (dismissed.current.has(eventId)) return;
        if (listed.current.has(eventId)) {
          if (options.toast === false) return;
          record = false;
        } else if (record) {
          listed.current.add(eventId);
        }
      }
      const notice: Notice = {
        id: nextId.current++,
        kind: options.kind ?? "info",
        title,
        body: options.body,
        links: options.links,
        at: options.at ?? new Date(),
        eventId,
      };
      if (options.toast !== false) {
        setToasts((current) => [...current, notice].slice(-MAX_TOASTS));
        const lifetimeMs = notice.kind === "error" || notice.links?.length ? 8_000 : 4_000;
        window.setTimeout(() => dismiss(notice.id), lifetimeMs);
      }
      if (record) {
        setHistory((current) => [notice, ...current].sort(newestFirst).slice(0, HISTORY_SIZE));
      }
    },
    [dismiss],
  );

  const forget = useCallback((notices: Notice[]) => {
    const eventIds = notices.flatMap((notice) => (notice.eventId === undefined ? [] : [notice.eventId]));
    if (eventIds.length) dismissed.current = rememberDismissed(eventIds);
    const ids = new Set(notices.map((notice) => notice.id));
    setHistory((current) => current.filter((notice) => !ids.has(notice.id)));
    setToasts((current) => current.filter((toast) => !ids.has(toast.id)));
  }, []);
  const dismissNotice = useCallback(
    (id: number) => forget(history.filter((notice) => notice.id === id)),
    [forget, history],
  );
  const dismissAll = useCallback(() => forget(history), [forget, history]);

  const markRead = useCallback(() => {
    const newest = Math.max(seenEventId, ...history.map((notice) => notice.eventId ?? 0));
    if (newest > seenEventId) {
      window.localStorage.setItem(SEEN_KEY, String(newest));
      setSeenEventId(newest);
    }
    setReadAt(Date.now());
  }, [history, seenEventId]);

  // Another tab dismissed or read some: follow it.
  useEffect(() => {
    const onStorage = (event: StorageEvent) => {
      if (event.key === DISMISSED_KEY) {
        dismissed.current = loadDismissed();
        setHistory((current) =>
          current.filter((notice) => notice.eventId === undefined || !dismissed.current.has(notice.eventId)),
        );
      } else if (event.key === SEEN_KEY) {
        setSeenEventId(loadSeen());
      }
    };
    window.addEventListener("storage", onStorage);
    return () => window.removeEventListener("storage", onStorage);
  }, []);

  const unread = history.filter((notice) =>
    notice.eventId === undefined ? notice.at.getTime() > readAt : notice.eventId > seenEventId,
  ).length;

  const value = useMemo(
    () => ({ notify, toasts, history, unread, dismiss, dismissNotice, dismissAll, markRead }),
    [notify, toasts, history, unread, dismiss, dismissNotice, dismissAll, markRead],
  );
  return <NotificationsContext.Provider value={value}>{children}</NotificationsContext.Provider>;
}

export function useNotifications(): NotificationsValue {
  const value = useContext(NotificationsContext);
  if (!value) throw new Error("useNotifications outside NotificationsProvider");
  return value;
}

/** Just the `notify` function (most components need nothing else). */
export function useNotify(): NotificationsValue["notify"] {
  return useNotifications().notify;
}
