import { useCallback, useEffect, useRef, useState } from "react";
import { api, errorMessage, type DatasetSummary } from "../../api";
import { eventDatasetId, useEvents } from "../../events";
import { useCoalesced } from "../../hooks";
import { updateParams } from "../../router";
import { SummaryStrip } from "./SummaryStrip";
import { RecordingsTab } from "./recordings/RecordingsTab";
import { RecordTab } from "./RecordTab";
import { UploadTab } from "./UploadTab";
import { ModelsTab } from "./models/ModelsTab";
import { TryTab } from "./try/TryTab";
import { CapturesTab } from "./captures/CapturesTab";
import { TrainingModal } from "./training/TrainingModal";
import { WhatNext } from "./WhatNext";

const TABS = [
  { key: "recordings", label: "Recordings" },
  { key: "record", label: "Record" },
  { key: "upload", label: "Upload" },
  { key: "models", label: "Models" },
  { key: "try", label: "Try it" },
  { key: "captures", label: "Captures" },
] as const;
type TabKey = (typeof TABS)[number]["key"];

function isTab(value: string | null): value is TabKey {
  return TABS.some((tab) => tab.key === value);
}

const openJobKey = (datasetId: string) => `waketrain.trainingJob.${datasetId}`;

export function DatasetPage({ datasetId, params }: { datasetId: string; params: URLSearchParams }) {
  const [summary, setSummary] = useState<DatasetSummary | null>(null);
  const [error, setError] = useState<string | null>(null);
  const requestedTab = params.get("tab");
  const tab: TabKey = isTab(requestedTab) ? requestedTab : "recordings";
  // Tabs stay mounted once visited, so an upload or a recording survives a look at another tab.
  const [visited, setVisited] = useState<Set<TabKey>>(() => new Set([tab]));
  useEffect(() => setVisited((v) => (v.has(tab) ? v : new Set(v).add(tab))), [tab]);
  // On a phone the tab strip scrolls sideways: bring the open tab into it, not the page.
  const tabStrip = useRef<HTMLElement>(null);
  useEffect(() => {
    const strip = tabStrip.current;
    const open = strip?.querySelector('[aria-selected="true"]');
    if (!strip || !open) return;
    const [s, t] = [strip.getBoundingClientRect(), open.getBoundingClientRect()];
    if (t.left < s.left) strip.scrollLeft -= s.left - t.left;
    else if (t.right > s.right) strip.scrollLeft += t.right - s.right;
  }, [tab]);

  const load = useCallback(async () => {
    try {
      setSummary(await api.getDataset(datasetId));
      setError(null);
    } catch (e) {
      setError(errorMessage(e));
    }
  }, [datasetId]);

  useEffect(() => {
    void load();
  }, [load]);
  const refresh = useCoalesced(() => void load());
  useEvents((event) => {
    if (eventDatasetId(event) === datasetId) refresh();
  });

  // The training modal's job: from the URL, else remembered for this dataset across reloads.
  const urlJob = params.get("job");
  const [openJob, setOpenJob] = useState<string | null>(
    () => urlJob ?? window.localStorage.getItem(openJobKey(datasetId)),
  );
  useEffect(() => {
    if (urlJob && urlJob !== openJob) setOpenJob(urlJob);
  }, [urlJob]); // only when the URL names a job, not when the modal closes
  useEffect(() => {
    if (openJob) {
      window.localStorage.setItem(openJobKey(datasetId), openJob);
      updateParams({ job: openJob });
    }
  }, [openJob, datasetId]);

  const closeModal = () => {
    window.localStorage.removeItem(openJobKey(datasetId));
    setOpenJob(null);
    updateParams({ job: null });
  };

  if (error && !summary) {
    return (
      <div className="empty-state">
        <h2>Dataset {datasetId}</h2>
        <p className="form-error">{error}</p>
        <a href="#/">Back to the datasets</a>
      </div>
    );
  }

  return (
    <div className="dataset-page">
      <div className="page-head">
        <div>
          <a className="muted small" href="#/">
            ← Datasets
          </a>
          <h1>{summary ? `“${summary.phrase}”` : "…"}</h1>
          <p className="muted">
            <code>{datasetId}</code>
            {summary?.description && <> · {summary.description}</>}
          </p>
        </div>
      </div>
      {summary && <SummaryStrip summary={summary} onTrainingStarted={(job) => setOpenJob(job.id)} />}
      <WhatNext datasetId={datasetId} />
      <nav className="tabs" role="tablist" ref={tabStrip}>
        {TABS.map(({ key, label }) => (
          <button
            key={key}
            role="tab"
            aria-selected={tab === key}
            className={`tab ${tab === key ? "active" : ""}`}
            data-testid={`tab-${key}`}
            onClick={() => updateParams({ tab: key }, false)}
          >
            {label}
            {key === "captures" && !!summary?.captures_to_review && (
              <span className="tab-count" data-testid="tab-captures-count" title="captures to review">
                {summary.captures_to_review}
              </span>
            )}
          </button>
        ))}
      </nav>
      <div className="tab-panels">
        {visited.has("recordings") && (
          <section role="tabpanel" hidden={tab !== "recordings"}>
            <RecordingsTab datasetId={datasetId} active={tab === "recordings"} />
          </section>
        )}
        {visited.has("record") && (
          <section role="tabpanel" hidden={tab !== "record"}>
            <RecordTab datasetId={datasetId} />
          </section>
        )}
        {visited.has("upload") && (
          <section role="tabpanel" hidden={tab !== "upload"}>
            <UploadTab datasetId={datasetId} />
          </section>
        )}
        {visited.has("models") && (
          <section role="tabpanel" hidden={tab !== "models"}>
            <ModelsTab datasetId={datasetId} highlight={params.get("highlight")} onShowJob={setOpenJob} />
          </section>
        )}
        {visited.has("try") && (
          <section role="tabpanel" hidden={tab !== "try"}>
            <TryTab datasetId={datasetId} />
          </section>
        )}
        {visited.has("captures") && (
          <section role="tabpanel" hidden={tab !== "captures"}>
            <CapturesTab datasetId={datasetId} active={tab === "captures"} toReview={summary?.captures_to_review ?? 0} />
          </section>
        )}
      </div>
      {openJob && <TrainingModal key={openJob} jobId={openJob} onClose={closeModal} />}
    </div>
  );
}
