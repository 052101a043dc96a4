import { useEffect, useRef, useState } from "react";
import type { Me } from "../api";
import { useEventsConnected } from "../events";
import { useNotifications, type Notice } from "../notifications";
import { NoticeBody } from "./NoticeBody";

export function Header({ me, onLogout }: { me: Me; onLogout: () => void }) {
  const connected = useEventsConnected();
  return (
    <header className="app-header">
      <a className="brand" href="#/">
        waketrain
      </a>
      <nav className="header-nav">
        <a href="#/">Datasets</a>
        <a href="#/negatives" data-testid="nav-negatives">
          Negative bank
        </a>
        <a href="#/boards" data-testid="nav-boards">
          Boards
        </a>
      </nav>
      <div className="header-right">
        <span
          className={`live-dot ${connected ? "on" : "off"}`}
          title={connected ? "Live updates connected" : "Reconnecting to live updates…"}
        />
        <NotificationBell />
        <span className="user" title={me.is_admin ? "administrator" : undefined}>
          {me.username}
        </span>
        <button className="btn ghost small" data-testid="logout" onClick={onLogout}>
          Log out
        </button>
      </div>
    </header>
  );
}

function NotificationBell() {
  const { history, unread, markRead, dismissNotice, dismissAll } = useNotifications();
  const [open, setOpen] = useState(false);
  const root = useRef<HTMLDivElement>(null);

  useEffect(() => {
    if (!open) return undefined;
    markRead();
    const onClick = (event: MouseEvent) => {
      if (root.current && !root.current.contains(event.target as Node)) setOpen(false);
    };
    const onKey = (event: KeyboardEvent) => event.key === "Escape" && setOpen(false);
    document.addEventListener("mousedown", onClick);
    document.addEventListener("keydown", onKey);
    return () => {
      document.removeEventListener("mousedown", onClick);
      document.removeEventListener("keydown", onKey);
    };
  }, [open, markRead, history.length]);

  return (
    <div className="bell" ref={root} data-testid="notifications">
      <button
        className="btn ghost small bell-button"
        // "Notifications, 2 new": the badge's "2" is a word of the name, as speech input needs.
        aria-label={`Notifications${unread ? `, ${unread} new` : ""}`}
        aria-expanded={open}
        data-testid="notifications-button"
        onClick={() => setOpen((v) => !v)}
      >
        <BellIcon />
        {unread > 0 && (
          <span className="bell-count" data-testid="notifications-unread">
            {unread}
          </span>
        )}
      </button>
      {open && (
        <div className="bell-panel" role="dialog" aria-label="Recent notifications" data-testid="notifications-panel">
          <div className="bell-head">
            <h3>Notifications</h3>
            {history.length > 1 && (
              <button className="btn ghost small" data-testid="notifications-dismiss-all" onClick={dismissAll}>
                Dismiss all
              </button>
            )}
          </div>
          {history.length === 0 ? (
            <p className="muted" data-testid="notifications-empty">
              Nothing yet. Finished training jobs and deployments show up here.
            </p>
          ) : (
            <ul>
              {history.map((notice) => (
                <li
                  key={notice.id}
                  className={`bell-item ${notice.kind}`}
                  data-testid="notification"
                  data-event-id={notice.eventId ?? ""}
                >
                  <NoticeBody notice={notice} />
                  <div className="bell-item-side">
                    <button
                      className="toast-close"
                      aria-label={`Dismiss: ${notice.title}`}
                      title="Dismiss"
                      data-testid="notification-dismiss"
                      onClick={() => dismissNotice(notice.id)}
                    >
                      ×
                    </button>
                    <time className="muted small">{noticeTime(notice)}</time>
                  </div>
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
    </div>
  );
}

/** The time of day for today's notices, the date as well for older ones. */
function noticeTime(notice: Notice): string {
  const today = new Date().toDateString() === notice.at.toDateString();
  return today
    ? notice.at.toLocaleTimeString()
    : notice.at.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

function BellIcon() {
  return (
    <svg width="16" height="16" viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" strokeWidth="2">
      <path d="M18 8a6 6 0 0 0-12 0c0 7-3 9-3 9h18s-3-2-3-9" />
      <path d="M13.7 21a2 2 0 0 1-3.4 0" />
    </svg>
  );
}
