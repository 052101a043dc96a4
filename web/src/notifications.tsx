// Toasts (transient) and the bell's list of recent job and deployment notifications.
import { createContext, useCallback, useContext, useMemo, useRef, useState, type ReactNode } from "react";

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
}

export interface NotifyOptions {
  kind?: NoticeKind;
  body?: string;
  links?: NoticeLink[];
  /** Keep it in the bell's list (job and deployment outcomes), not only as a toast. */
  record?: boolean;
}

interface NotificationsValue {
  notify: (title: string, options?: NotifyOptions) => void;
  toasts: Notice[];
  history: Notice[];
  unread: number;
  dismiss: (id: number) => void;
  markRead: () => void;
}

const NotificationsContext = createContext<NotificationsValue | null>(null);
const HISTORY_SIZE = 30;
const MAX_TOASTS = 4;

export function NotificationsProvider({ children }: { children: ReactNode }) {
  const [toasts, setToasts] = useState<Notice[]>([]);
  const [history, setHistory] = useState<Notice[]>([]);
  const [unread, setUnread] = useState(0);
  const nextId = useRef(1);

  const dismiss = useCallback((id: number) => {
    setToasts((current) => current.filter((toast) => toast.id !== id));
  }, []);

  const notify = useCallback(
    (title: string, options: NotifyOptions = {}) => {
      const notice: Notice = {
        id: nextId.current++,
        kind: options.kind ?? "info",
        title,
        body: options.body,
        links: options.links,
        at: new Date(),
      };
      setToasts((current) => [...current, notice].slice(-MAX_TOASTS));
      const lifetimeMs = notice.kind === "error" || notice.links?.length ? 8_000 : 4_000;
      window.setTimeout(() => dismiss(notice.id), lifetimeMs);
      if (options.record) {
        setHistory((current) => [notice, ...current].slice(0, HISTORY_SIZE));
        setUnread((n) => n + 1);
      }
    },
    [dismiss],
  );

  const markRead = useCallback(() => setUnread(0), []);

  const value = useMemo(
    () => ({ notify, toasts, history, unread, dismiss, markRead }),
    [notify, toasts, history, unread, dismiss, markRead],
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
