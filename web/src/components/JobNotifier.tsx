// Turns fresh job and deployment outcomes from the event feed into notifications.
import { urls } from "../api";
import { useEvents } from "../events";
import { shortId } from "../format";
import { useNotify } from "../notifications";
import { datasetHref } from "../router";

export function JobNotifier() {
  const notify = useNotify();
  useEvents((event, fresh) => {
    if (!fresh) return;
    const payload = event.payload;
    const datasetId = event.dataset_id ?? "";
    const jobId = typeof payload.job_id === "string" ? payload.job_id : null;
    const modelsLink = jobId
      ? { href: datasetHref(datasetId, { tab: "models", highlight: jobId }), label: "Models" }
      : { href: datasetHref(datasetId, { tab: "models" }), label: "Models" };
    const error = typeof payload.error === "string" ? payload.error : undefined;

    switch (event.type) {
      case "job.succeeded":
        if (!jobId) return;
        notify(`Training ${shortId(jobId)} succeeded`, {
          kind: "success",
          body: `Dataset ${datasetId}`,
          links: [modelsLink, { href: urls.bundle(jobId), label: "Download bundle", download: true }],
          record: true,
        });
        return;
      case "job.failed":
        notify(`Training ${jobId ? shortId(jobId) : ""} failed`, {
          kind: "error",
          body: error ?? `Dataset ${datasetId}`,
          links: [modelsLink],
          record: true,
        });
        return;
      case "job.cancelled":
        notify(`Training ${jobId ? shortId(jobId) : ""} cancelled`, {
          kind: "info",
          body: `Dataset ${datasetId}`,
          links: [modelsLink],
          record: true,
        });
        return;
      default:
        break;
    }
    if (event.type.startsWith("deployment.")) {
      const status = typeof payload.status === "string" ? payload.status : event.type.slice("deployment.".length);
      if (!["succeeded", "failed", "rolled_back"].includes(status)) return;
      notify(`Deployment ${status === "rolled_back" ? "rolled back" : status}`, {
        kind: status === "succeeded" ? "success" : "error",
        body: error ?? (jobId ? `Model from job ${shortId(jobId)}` : undefined),
        links: datasetId ? [modelsLink] : undefined,
        record: true,
      });
    }
  });
  return null;
}
