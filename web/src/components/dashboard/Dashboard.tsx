import { useCallback, useEffect, useState } from "react";
import { api, errorMessage, type DatasetSummary } from "../../api";
import { useEvents } from "../../events";
import { useCoalesced } from "../../hooks";
import { DatasetCard } from "./DatasetCard";
import { NewDatasetForm } from "./NewDatasetForm";

const REFRESHING_EVENTS = /^(dataset|clip|job|model|capture)\./;

export function Dashboard() {
  const [datasets, setDatasets] = useState<DatasetSummary[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      setDatasets(await api.listDatasets());
      setError(null);
    } catch (e) {
      setError(errorMessage(e));
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  const refresh = useCoalesced(() => void load());
  useEvents((event) => {
    if (REFRESHING_EVENTS.test(event.type)) refresh();
  });

  return (
    <div className="dashboard">
      <div className="page-head">
        <div>
          <h1>Datasets</h1>
          <p className="muted">One dataset per wake phrase: record or upload clips, review them, train.</p>
        </div>
      </div>
      <div className="dashboard-grid">
        <section className="cards" aria-label="Datasets">
          {error && <p className="form-error">{error}</p>}
          {datasets === null && !error && <p className="muted">Loading datasets…</p>}
          {datasets !== null && datasets.length === 0 && (
            <div className="empty-state">
              <h3>No datasets yet</h3>
              <p>Create one with the form: a short id and the wake phrase as people will say it.</p>
            </div>
          )}
          {datasets?.map((dataset) => <DatasetCard key={dataset.id} dataset={dataset} />)}
        </section>
        <aside>
          <NewDatasetForm onCreated={() => void load()} />
        </aside>
      </div>
    </div>
  );
}
