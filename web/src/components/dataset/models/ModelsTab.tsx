import { useCallback, useEffect, useState } from "react";
import { api, errorMessage, type JobRecord } from "../../../api";
import { useEvents } from "../../../events";
import { useCoalesced } from "../../../hooks";
import { useNotify } from "../../../notifications";
import { ApplyPanel } from "./ApplyPanel";
import { ModelRow } from "./ModelRow";

export function ModelsTab({
  datasetId,
  highlight,
  onShowJob,
}: {
  datasetId: string;
  highlight: string | null;
  onShowJob: (jobId: string) => void;
}) {
  const notify = useNotify();
  const [jobs, setJobs] = useState<JobRecord[] | null>(null);
  const [currentId, setCurrentId] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [blessing, setBlessing] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      const [list, current] = await Promise.all([api.listJobs(datasetId), api.currentModel()]);
      setJobs(list);
      setCurrentId(current.job?.id ?? null);
      setError(null);
    } catch (e) {
      setError(errorMessage(e));
    }
  }, [datasetId]);

  useEffect(() => {
    void load();
  }, [load]);
  const refresh = useCoalesced(() => void load(), 300, 1_500);
  useEvents((event) => {
    if (event.type === "model.blessed" || (event.dataset_id === datasetId && event.type.startsWith("job."))) refresh();
  });

  const bless = async (job: JobRecord) => {
    setBlessing(job.id);
    try {
      await api.blessJob(job.id);
      setCurrentId(job.id);
      notify("Model is now current", { kind: "success", body: `Job ${job.id.slice(0, 8)}` });
    } catch (e) {
      notify("Could not make the model current", { kind: "error", body: errorMessage(e) });
    } finally {
      setBlessing(null);
    }
  };

  const latest = jobs?.[0] ?? null;

  return (
    <div className="models-tab">
      <ApplyPanel datasetId={datasetId} latestJob={latest} />
      {error && <p className="form-error">{error}</p>}
      {jobs === null && !error && <p className="muted">Loading jobs…</p>}
      {jobs !== null && jobs.length === 0 && (
        <div className="empty-state">
          <h3>No models yet</h3>
          <p>Train this dataset (the Train button above) and its models appear here.</p>
        </div>
      )}
      {jobs !== null && jobs.length > 0 && (
        <div className="table-wrap">
          <table className="data-table models">
            <thead>
              <tr>
                <th>Job</th>
                <th>Status</th>
                <th>Created</th>
                <th className="num">Duration</th>
                <th className="num" title="False reject rate on held-out positives">FRR</th>
                <th className="num" title="False accepts per hour of held-out negative audio">FA/h</th>
                <th className="num">AUC</th>
                <th className="num">Threshold</th>
                <th>Files</th>
                <th aria-label="Actions" />
              </tr>
            </thead>
            <tbody>
              {jobs.map((job) => (
                <ModelRow
                  key={job.id}
                  job={job}
                  isCurrent={job.id === currentId}
                  highlighted={job.id === highlight}
                  blessing={blessing === job.id}
                  onBless={() => void bless(job)}
                  onShowProgress={() => onShowJob(job.id)}
                />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
