// One reconnecting WebSocket to /status for the whole app; views subscribe to the events they need.
import { createContext, useContext, useEffect, useRef, useState, type ReactNode } from "react";
import { api, parseTime, serverNow, type EventRecord } from "./api";

/** `fresh`: written after this page was opened (a reconnect replays older ones; don't toast those). */
export type EventListener = (event: EventRecord, fresh: boolean) => void;

interface EventsContextValue {
  subscribe: (listener: EventListener) => () => void;
  connected: boolean;
}

const EventsContext = createContext<EventsContextValue | null>(null);
const MAX_BACKOFF_MS = 15_000;
// Events older than page load (in server time, minus this slack) count as history.
const FRESH_SLACK_MS = 5_000;

function statusUrl(after: number): string {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${window.location.host}/status?after=${after}`;
}

export function EventsProvider({ children }: { children: ReactNode }) {
  const listeners = useRef(new Set<EventListener>());
  const [connected, setConnected] = useState(false);

  useEffect(() => {
    // -1: from now. The page loads its state over REST; only later changes matter.
    let lastId = -1;
    let socket: WebSocket | null = null;
    let retryTimer: number | undefined;
    let backoffMs = 1_000;
    let stopped = false;
    const openedAt = serverNow();

    const connect = () => {
      if (stopped) return;
      socket = new WebSocket(statusUrl(lastId));
      socket.onopen = () => {
        backoffMs = 1_000;
        setConnected(true);
      };
      socket.onmessage = (message: MessageEvent<string>) => {
        let event: EventRecord;
        try {
          event = JSON.parse(message.data) as EventRecord;
        } catch {
          return;
        }
        if (typeof event.id !== "number" || event.id <= lastId) return;
        lastId = event.id;
        const created = parseTime(event.created_at)?.getTime() ?? 0;
        const fresh = created >= openedAt - FRESH_SLACK_MS;
        for (const listener of listeners.current) {
          try {
            listener(event, fresh);
          } catch (error) {
            console.error("event listener failed", error);
          }
        }
      };
      socket.onclose = (close) => {
        setConnected(false);
        socket = null;
        if (stopped) return;
        if (close.code === 4401) {
          // The session ended; /auth/me's 401 sends the app back to the login page.
          api.me().catch(() => undefined);
        }
        retryTimer = window.setTimeout(connect, backoffMs);
        backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
      };
    };

    connect();
    return () => {
      stopped = true;
      window.clearTimeout(retryTimer);
      socket?.close();
    };
  }, []);

  const value = useRef<EventsContextValue>({
    subscribe: (listener) => {
      listeners.current.add(listener);
      return () => listeners.current.delete(listener);
    },
    connected: false,
  });

  return (
    <EventsContext.Provider value={{ subscribe: value.current.subscribe, connected }}>
      {children}
    </EventsContext.Provider>
  );
}

/** Call `listener` for every event; the latest closure is always used, subscribed once. */
export function useEvents(listener: EventListener): void {
  const context = useContext(EventsContext);
  const latest = useRef(listener);
  latest.current = listener;
  useEffect(() => {
    if (!context) return undefined;
    return context.subscribe((event, fresh) => latest.current(event, fresh));
  }, [context?.subscribe]);
}

/** The dataset an event concerns: the record's own field, else the payload's. */
export function eventDatasetId(event: EventRecord): string | null {
  if (event.dataset_id) return event.dataset_id;
  const fromPayload = event.payload.dataset_id;
  return typeof fromPayload === "string" ? fromPayload : null;
}

export function useEventsConnected(): boolean {
  return useContext(EventsContext)?.connected ?? false;
}
