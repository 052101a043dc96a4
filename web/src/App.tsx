import { useCallback, useEffect, useState } from "react";
import { api, setUnauthorizedHandler, type Me } from "./api";
import { EventsProvider } from "./events";
import { NotificationsProvider } from "./notifications";
import { useHashRoute } from "./router";
import { AppTop } from "./components/AppTop";
import { BoardsPage } from "./components/BoardsPage";
import { Header } from "./components/Header";
import { Toasts } from "./components/Toasts";
import { LoginPage } from "./components/LoginPage";
import { Dashboard } from "./components/dashboard/Dashboard";
import { DatasetPage } from "./components/dataset/DatasetPage";
import { JobNotifier } from "./components/JobNotifier";
import { NegativeBankPage } from "./components/NegativeBankPage";
import { RunningJobsBar } from "./components/RunningJobsBar";

type Session = { state: "checking" } | { state: "anonymous" } | { state: "signed-in"; me: Me };

export function App() {
  const [session, setSession] = useState<Session>({ state: "checking" });

  useEffect(() => {
    let cancelled = false;
    api
      .me()
      .then((me) => !cancelled && setSession({ state: "signed-in", me }))
      .catch(() => !cancelled && setSession({ state: "anonymous" }));
    setUnauthorizedHandler(() => setSession({ state: "anonymous" }));
    return () => {
      cancelled = true;
      setUnauthorizedHandler(null);
    };
  }, []);

  const logout = useCallback(async () => {
    try {
      await api.logout();
    } finally {
      setSession({ state: "anonymous" });
    }
  }, []);

  return (
    <NotificationsProvider>
      {session.state === "checking" && <div className="splash">Loading…</div>}
      {session.state === "anonymous" && (
        <>
          <AppTop>
            <Toasts />
          </AppTop>
          <LoginPage onLoggedIn={(me) => setSession({ state: "signed-in", me })} />
        </>
      )}
      {session.state === "signed-in" && (
        <EventsProvider>
          <JobNotifier />
          <AppTop header={<Header me={session.me} onLogout={logout} />}>
            <RunningJobsBar />
            <Toasts />
          </AppTop>
          <main className="page">
            <Routes />
          </main>
        </EventsProvider>
      )}
    </NotificationsProvider>
  );
}

function Routes() {
  const route = useHashRoute();
  const match = /^\/datasets\/([^/]+)\/?$/.exec(route.path);
  if (match) {
    const datasetId = decodeURIComponent(match[1]);
    return <DatasetPage key={datasetId} datasetId={datasetId} params={route.params} />;
  }
  if (route.path === "/" || route.path === "") return <Dashboard />;
  if (route.path === "/negatives") return <NegativeBankPage />;
  if (route.path === "/boards") return <BoardsPage />;
  return (
    <div className="empty-state">
      <h2>Page not found</h2>
      <p>
        Nothing lives at <code>{route.path}</code>. <a href="#/">Back to the datasets</a>.
      </p>
    </div>
  );
}
