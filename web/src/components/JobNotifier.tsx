// Turns job and deployment outcomes from the event feed into notifications: a toast for a fresh
// one, and an entry in the bell's list, which is rebuilt from the event log on every (re)connect
// so that what the operator has not dismissed is still there after a reload.
import { useEffect } from "react";
import { api, parseTime, urls, type EventRecord } from "../api";
import { useEvents, useEventsConnected } from "../events";
import { shortId } from "../format";
import { HISTORY_SIZE, useNotify, type NotifyOptions } from "../notifications";
import { datasetHref } from "../router";

const OUTCOME_TYPES = [
  "job.succeeded",
  "job.failed",
  "job.cancelled",
  "deployment.succeeded",
  "deployment.failed",
  "deployment.rolled_back",
];

export function JobNotifier() {
  const notify = useNotify();
  const connected = useEventsConnected();

  const record = (event: EventRecord, toast: boolean) => {
    const notice = outcomeNotice(event);
    if (!notice) return;
    notify(notice.title, {
      ...notice.options,
      record: true,
      eventId: event.id,
      at: parseTime(event.created_at) ?? new Date(),
      toast,
    });
  };

  useEvents((event, fresh) => record(event, fresh));

  // On load and after each reconnect: the latest outcomes, oldest first (the provider drops
  // those already listed and those the operator dismissed).
  useEffect(() => {
    let cancelled = false;
    api
      .recentEvents(OUTCOME_TYPES, HISTORY_SIZE)
      .then((events) => {
        if (!cancelled) for (const event of [...events].reverse()) record(event, false);
      })
      .catch((error: unknown) => console.warn("could not load recent notifications", error));
    return () => {
      cancelled = true;
    };
  }, [connected]); // `record` only reads `notify`, which never changes
  return null;
}

/** The notice for a job or deployment outcome; null for any other event. */
function outcomeNotice(event: EventRecord): { title: string; options: NotifyOptions } | null {
  const payload = event.payload;
  const datasetId = event.dataset_id ?? "";
  const jobId = typeof payload.job_id === "string" ? payload.job_id : null;
  const modelsLink = jobId
    ? { href: datasetHref(datasetId, { tab: "models", highlight: jobId }), label: "Models" }
    : { href: datasetHref(datasetId, { tab: "models" }), label: "Models" };
  const error = typeof payload.error === "string" ? payload.error : undefined;

  switch (event.type) {
    case "job.succeeded":
      if (!jobId) return null;
      return {
        title: `Training ${shortId(jobId)} succeeded`,
        options: {
          kind: "success",
          body: `Dataset ${datasetId}`,
          links: [modelsLink, { href: urls.bundle(jobId), label: "Download bundle", download: true }],
        },
      };
    case "job.failed":
      return {
        title: `Training ${jobId ? shortId(jobId) : ""} failed`,
        options: { kind: "error", body: error ?? `Dataset ${datasetId}`, links: [modelsLink] },
      };
    case "job.cancelled":
      return {
        title: `Training ${jobId ? shortId(jobId) : ""} cancelled`,
        options: { kind: "info", body: `Dataset ${datasetId}`, links: [modelsLink] },
      };
    default:
      break;
  }
  if (event.type.startsWith("deployment.")) {
    const status = typeof payload.status === "string" ? payload.status : event.type.slice("deployment.".length);
    if (!["succeeded", "failed", "rolled_back"].includes(status)) return null;
    return {
      title: `Deployment ${status === "rolled_back" ? "rolled back" : status}`,
      options: {
        kind: status === "succeeded" ? "success" : "error",
        body: error ?? (jobId ? `Model from job ${shortId(jobId)}` : undefined),
        links: datasetId ? [modelsLink] : undefined,
      },
    };
  }
  return null;
}
