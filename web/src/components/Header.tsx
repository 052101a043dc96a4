import { useEffect, useRef, useState } from "react";
import type { Me } from "../api";
import { useEventsConnected } from "../events";
import { useNotifications } from "../notifications";
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
  const { history, unread, markRead } = useNotifications();
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
        aria-label={`Notifications${unread ? ` (${unread} new)` : ""}`}
        aria-expanded={open}
        onClick={() => setOpen((v) => !v)}
      >
        <BellIcon />
        {unread > 0 && <span className="bell-count">{unread}</span>}
      </button>
      {open && (
        <div className="bell-panel" role="dialog" aria-label="Recent notifications">
          <h3>Notifications</h3>
          {history.length === 0 ? (
            <p className="muted">Nothing yet. Finished training jobs and deployments show up here.</p>
          ) : (
            <ul>
              {history.map((notice) => (
                <li key={notice.id} className={`bell-item ${notice.kind}`}>
                  <NoticeBody notice={notice} />
                  <time className="muted small">{notice.at.toLocaleTimeString()}</time>
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
    </div>
  );
}

function BellIcon() {
  return (
    <svg width="16" height="16" viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" strokeWidth="2">
      <path d="M18 8a6 6 0 0 0-12 0c0 7-3 9-3 9h18s-3-2-3-9" />
      <path d="M13.7 21a2 2 0 0 1-3.4 0" />
    </svg>
  );
}
