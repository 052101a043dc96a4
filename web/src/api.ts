// Typed client for the waketrain API (same origin, cookie session).

export type Label = "positive" | "negative" | "noise";
export const LABELS: Label[] = ["positive", "negative", "noise"];
export type JobStatus = "queued" | "running" | "succeeded" | "failed" | "cancelled";
export const FINAL_JOB_STATUSES: JobStatus[] = ["succeeded", "failed", "cancelled"];
export type Stage = "data_prep" | "training" | "eval" | "export";
export const STAGES: Stage[] = ["data_prep", "training", "eval", "export"];

export interface Me {
  username: string;
  is_admin: boolean;
}

export interface LabelCounts {
  positive: number;
  negative: number;
  noise: number;
}

export interface JobMetrics {
  frr?: number;
  fa_per_hour?: number;
  auc?: number;
  accuracy?: number;
  threshold?: number;
  target_met?: boolean;
  negative_hours?: number;
  false_accepts?: number;
  fa_per_hour_upper?: number;
  hours_to_decide?: number;
  calibration_hours?: number;
  comparison?: ModelComparison | null;
  not_better_than_current?: boolean;
  missed_positives?: MissedClip[];
  model_id?: string;
  backend?: string;
  stream_cost?: StreamCost | null;
  [key: string]: unknown;
}

// What streaming the model cost on the machine that trained it (80 ms chunks, one thread).
export interface StreamCost {
  cpu_percent: number;
  audio_seconds: number;
  machine: string;
}

// A held-out positive the model did not hear, with what ingest measured and the likely cause.
export interface MissedClip {
  clip_id: string;
  speaker: string | null;
  scores: Record<string, number>;
  missed_at: string[];
  peak_dbfs: number | null;
  rms_dbfs: number | null;
  clipping_ratio: number | null;
  cause: string;
  advice: string;
}

export interface Standing {
  threshold: number;
  frr: number;
  false_accepts: number;
}

// The new model against the current one, both streamed over the same audio.
export interface ModelComparison {
  current_job_id: string;
  positives: number;
  hours: number;
  current: Standing;
  new: Standing;
  at_least_as_good: boolean;
}

export type NegativeKind = "speech" | "music" | "tv" | "room" | "noise" | "mixed";
export const NEGATIVE_KINDS: NegativeKind[] = ["speech", "music", "tv", "room", "noise", "mixed"];

export interface NegativeSet {
  id: string;
  kind: NegativeKind;
  created: string;
  hours: number;
  files: number;
}

export interface BankImport {
  id: string;
  set_id: string;
  kind: NegativeKind;
  state: "queued" | "running" | "done" | "failed";
  file: string | null;
  done_seconds: number;
  total_seconds: number;
  message: string | null;
}

export interface NegativeBank {
  sets: NegativeSet[];
  hours: number;
  imports: BankImport[];
}

export interface LastJob {
  id: string;
  status: JobStatus;
  created_at: string;
  metrics: JobMetrics | null;
}

export interface DatasetSummary {
  id: string;
  phrase: string;
  description: string | null;
  created_at: string;
  created_by: string;
  clip_counts: LabelCounts;
  deleted_clips: number;
  minutes: LabelCounts;
  total_minutes: number;
  balance: { positive_share: number | null; warning: string | null };
  mean_snr_db: number | null;
  quality: {
    analyzed: number;
    pending_analysis: number;
    low_quality: number;
    clipped: number;
    near_silent: number;
    positives_without_speech: number;
    duplicate_clips: number;
  };
  last_reviewed_by: string | null;
  last_reviewed_at: string | null;
  ready_to_train: boolean;
  training_blockers: string[];
  last_job: LastJob | null;
  /** Captures the board sent back that nobody has judged yet. */
  captures_to_review: number;
}

export interface DatasetCreate {
  id: string;
  phrase: string;
  description?: string | null;
}

export type StepKey = "phrase" | "positives" | "voices" | "negatives" | "noise" | "train" | "evaluate" | "apply";

/** One step of a dataset's "what next", from recording to a model on the board. */
export interface ChecklistStep {
  key: StepKey;
  title: string;
  why: string;
  done: boolean;
  required: boolean;
  have: number;
  want: number;
  detail: string;
}

export interface Checklist {
  dataset_id: string;
  steps: ChecklistStep[];
  next: StepKey | null;
}

/** Clips with identical audio; the first (oldest) is the one training keeps. */
export interface DuplicateGroup {
  sha256: string;
  clips: ClipRecord[];
  labels: Label[];
  conflict: boolean;
}

export interface Hygiene {
  groups: DuplicateGroup[];
  left_out: number;
  label_conflicts: number;
}

/** A recording longer than a clip, kept while the operator checks its proposed phrases. */
export interface LongRecording {
  id: string;
  dataset_id: string;
  filename: string | null;
  duration_seconds: number;
  segments: Segment[];
}

export interface Segment {
  start: number;
  end: number;
}

export interface ClipRecord {
  id: string;
  dataset_id: string;
  label: Label;
  speaker: string | null;
  source: string;
  notes: string | null;
  original_filename: string | null;
  original_format: string;
  original_sample_rate: number;
  original_channels: number;
  duration_seconds: number;
  sha256: string;
  created_at: string;
  created_by: string;
  updated_at: string;
  analyzed_at: string | null;
  quality_score: number | null;
  quality_reasons: string[] | null;
  peak_dbfs: number | null;
  rms_dbfs: number | null;
  clipping_ratio: number | null;
  snr_db: number | null;
  speech_seconds: number | null;
  speech_start_seconds: number | null;
  speech_end_seconds: number | null;
  deleted_at: string | null;
  deleted_by: string | null;
}

export type SortKey = "created_at" | "duration_seconds" | "speaker" | "quality_score" | "label";
export type DeletedFilter = "exclude" | "include" | "only";

export interface ClipQuery {
  label?: Label | "";
  speaker?: string;
  deleted: DeletedFilter;
  sort: SortKey;
  order: "asc" | "desc";
  limit: number;
  offset: number;
}

export interface ClipPage {
  total: number;
  limit: number;
  offset: number;
  items: ClipRecord[];
}

export interface ClipUpdate {
  label?: Label;
  speaker?: string | null;
  notes?: string | null;
}

export interface ClipMetadata {
  label: Label;
  speaker?: string | null;
  notes?: string | null;
  source: "upload" | "record";
}

export interface JobRecord {
  id: string;
  dataset_id: string;
  status: JobStatus;
  stage: Stage | null;
  progress: number;
  eta_seconds: number | null;
  config: Record<string, unknown>;
  init_from: string | null;
  worker_id: string | null;
  heartbeat_at: string | null;
  attempt: number;
  cancel_requested: boolean;
  error: string | null;
  metrics: JobMetrics | null;
  export_dir: string | null;
  created_by: string;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

export interface CurrentModel {
  job: JobRecord | null;
  metadata_url: string | null;
}

export interface ScoreResult {
  job_id: string;
  model_id: string;
  phrase: string;
  threshold: number;
  hop_seconds: number;
  times: number[];
  scores: number[];
  fired: boolean;
  detections: number[];
  duration_seconds: number;
}

export interface DeployTarget {
  configured: boolean;
  target: string | null;
  reason: string | null;
  /** The default board's id; null when there is none. */
  board_id: string | null;
}

/** What runs the model on the board: this project's detector, or py-tars wake-activation. */
export type BoardProfile = "detector" | "tars-compose";
export const BOARD_PROFILES: BoardProfile[] = ["detector", "tars-compose"];

export interface HostKey {
  algorithm: string;
  /** "SHA256:...", as `ssh-keygen -lf` prints it. */
  fingerprint: string;
}

/** The key the service logs in with; the private half never leaves the server. */
export interface ClientKey {
  algorithm: string;
  fingerprint: string;
  /** One OpenSSH line for the board's authorized_keys. */
  public_key: string;
}

/** A board models are shipped to over SSH. */
export interface Board {
  /** "env" for the board set by DEPLOY_* environment variables. */
  id: string;
  name: string;
  host: string;
  port: number;
  user: string;
  path: string;
  profile: BoardProfile;
  post_command: string | null;
  health_command: string | null;
  keep_releases: number;
  /** The board "Apply training" ships to unless another is picked. */
  is_default: boolean;
  /** Environment boards are read-only here: they change with DEPLOY_* on the server. */
  source: "registry" | "environment";
  key: ClientKey | null;
  /** The pinned host key; null until one is trusted. */
  host_key: HostKey | null;
  created_at: string | null;
  updated_at: string | null;
}

/** POST /boards; PATCH takes the same fields, all optional. Omitted ones take the DEPLOY_* defaults. */
export interface BoardInput {
  name: string;
  host: string;
  user: string;
  port?: number;
  path?: string;
  profile?: BoardProfile;
  post_command?: string | null;
  health_command?: string | null;
  keep_releases?: number;
  /** Write-only: OpenSSH or PEM text without a passphrase. */
  private_key?: string;
  /** The server makes a new ed25519 key; its public half comes back in `key`. */
  generate_key?: boolean;
}

export type HostKeyStatus = "pinned" | "unpinned" | "mismatch";

/** What a test connection to a board found. */
export interface BoardCheck {
  reachable: boolean;
  /** The host key the board offers now. */
  host_key: HostKey | null;
  /** null when the board was not reachable. */
  host_key_status: HostKeyStatus | null;
  /** null when not tried (the host key is not trusted yet). */
  login: boolean | null;
  path_writable: boolean | null;
  /** Everything a deploy needs holds. */
  ok: boolean;
  /** One sentence: what holds, or what to do. */
  message: string;
}

export type DeploymentStatus =
  | "pending"
  | "transferring"
  | "applying"
  | "succeeded"
  | "rolled_back"
  | "failed"
  | "cancelled";
export const FINAL_DEPLOYMENT_STATUSES: DeploymentStatus[] = ["succeeded", "rolled_back", "failed", "cancelled"];
export const ACTIVE_DEPLOYMENT_STATUSES: DeploymentStatus[] = ["pending", "transferring", "applying"];

export interface Deployment {
  id: string;
  job_id?: string;
  dataset_id?: string;
  target?: string;
  status: DeploymentStatus;
  log: string;
  error: string | null;
  cancel_requested: boolean;
  [key: string]: unknown;
}

export type CaptureStatus = "unreviewed" | "reviewed" | "discarded";
export type CaptureFilter = CaptureStatus | "all";
export const CAPTURE_FILTERS: CaptureFilter[] = ["unreviewed", "reviewed", "discarded", "all"];
/** What the detector thought: it woke, or the score came close to the threshold. */
export type CaptureKind = "wake" | "near_miss";
/** positive: a real wake; negative: a false wake; discard: the audio is deleted. */
export type CaptureVerdict = "positive" | "negative" | "discard";

/** A detection or near miss the board recorded and sent back for review. */
export interface CaptureRecord {
  id: string;
  dataset_id: string;
  status: CaptureStatus;
  kind: CaptureKind;
  model_id: string;
  threshold: number;
  peak_score: number;
  /** Smoothed score per hop over the saved audio; hop i ends at (i + 1) * hop_seconds. */
  scores: number[];
  hop_seconds: number;
  board: string;
  captured_at: string;
  received_at: string;
  duration_seconds: number;
  verdict: "positive" | "negative" | null;
  clip_id: string | null;
  reviewed_by: string | null;
  reviewed_at: string | null;
}

export interface CaptureQuery {
  status: CaptureFilter;
  limit: number;
  offset: number;
}

export interface CapturePage {
  total: number;
  limit: number;
  offset: number;
  items: CaptureRecord[];
}

export interface EventRecord {
  id: number;
  type: string;
  dataset_id: string | null;
  payload: Record<string, unknown>;
  created_at: string;
}

/** An API refusal; `detail` is the server's sentence, shown to the operator as it is. */
export class ApiError extends Error {
  readonly status: number;
  readonly detail: string;

  constructor(status: number, detail: string) {
    super(detail);
    this.name = "ApiError";
    this.status = status;
    this.detail = detail;
  }
}

/** Server clock minus browser clock (ms), from the Date header; events are stamped by the server. */
let serverClockOffsetMs = 0;
function noteServerDate(header: string | null): void {
  const server = header ? Date.parse(header) : NaN;
  if (!Number.isNaN(server)) serverClockOffsetMs = server - Date.now();
}
export function serverNow(): number {
  return Date.now() + serverClockOffsetMs;
}

/** Called on any 401 after login, so the app can return to the login page. */
let onUnauthorized: (() => void) | null = null;
export function setUnauthorizedHandler(handler: (() => void) | null): void {
  onUnauthorized = handler;
}

export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) return error.detail;
  if (error instanceof Error) return error.message;
  return String(error);
}

/** The `detail` sentence of an error body, or a plain description of the status. */
export function detailFromBody(status: number, body: string): string {
  try {
    const parsed: unknown = JSON.parse(body);
    if (parsed && typeof parsed === "object" && "detail" in parsed) {
      const detail = (parsed as { detail: unknown }).detail;
      if (typeof detail === "string") return detail;
      if (detail !== undefined) return JSON.stringify(detail);
    }
  } catch {
    // not JSON: fall through
  }
  if (status === 0) return "The server could not be reached; check the connection and try again.";
  const text = body.trim();
  if (text && text.length < 300 && !text.startsWith("<")) return text;
  return `The server answered HTTP ${status}.`;
}

/** Sent with every request: the API refuses state changes from a session cookie without it,
 * which a page on another site cannot add (CSRF). */
const CSRF_HEADERS: Record<string, string> = { "X-Requested-With": "waketrain" };

async function request<T>(method: string, path: string, body?: unknown, form?: FormData): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      credentials: "same-origin",
      headers: body !== undefined ? { ...CSRF_HEADERS, "Content-Type": "application/json" } : CSRF_HEADERS,
      body: form ?? (body !== undefined ? JSON.stringify(body) : undefined),
    });
  } catch {
    throw new ApiError(0, detailFromBody(0, ""));
  }
  noteServerDate(response.headers.get("Date"));
  const text = await response.text();
  if (!response.ok) {
    if (response.status === 401 && path !== "/auth/login" && path !== "/auth/me") {
      onUnauthorized?.();
    }
    throw new ApiError(response.status, detailFromBody(response.status, text));
  }
  return (text ? JSON.parse(text) : undefined) as T;
}

function query(params: Record<string, string | number | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

const enc = encodeURIComponent;

export const api = {
  me: () => request<Me>("GET", "/auth/me"),
  login: (username: string, password: string) =>
    request<Me>("POST", "/auth/login", { username, password }),
  logout: () => request<void>("POST", "/auth/logout"),

  listDatasets: () => request<DatasetSummary[]>("GET", "/datasets"),
  createDataset: (spec: DatasetCreate) => request<DatasetSummary>("POST", "/datasets", spec),
  getDataset: (id: string) => request<DatasetSummary>("GET", `/datasets/${enc(id)}`),

  splitLongRecording: (datasetId: string, file: File) => {
    const form = new FormData();
    form.append("file", file, file.name);
    return request<LongRecording>("POST", `/datasets/${enc(datasetId)}/long-recordings`, undefined, form);
  },
  acceptSegments: (recordingId: string, metadata: ClipMetadata, segments: Segment[]) =>
    request<ClipRecord[]>("POST", `/long-recordings/${enc(recordingId)}/clips`, { metadata, segments }),
  checklist: (datasetId: string) => request<Checklist>("GET", `/datasets/${enc(datasetId)}/checklist`),
  duplicates: (datasetId: string) => request<Hygiene>("GET", `/datasets/${enc(datasetId)}/duplicates`),
  keepOneDuplicate: (datasetId: string, sha256: string, keep: string) =>
    request<ClipRecord[]>("POST", `/datasets/${enc(datasetId)}/duplicates/resolve`, { sha256, keep }),
  listRecordings: (datasetId: string, q: ClipQuery) =>
    request<ClipPage>(
      "GET",
      `/datasets/${enc(datasetId)}/recordings${query({
        label: q.label,
        speaker: q.speaker,
        deleted: q.deleted,
        sort: q.sort,
        order: q.order,
        limit: q.limit,
        offset: q.offset,
      })}`,
    ),
  updateRecording: (clipId: string, update: ClipUpdate) =>
    request<ClipRecord>("PATCH", `/recordings/${enc(clipId)}`, update),
  discardRecording: (clipId: string) => request<ClipRecord>("DELETE", `/recordings/${enc(clipId)}`),
  restoreRecording: (clipId: string) =>
    request<ClipRecord>("POST", `/recordings/${enc(clipId)}/restore`),

  listCaptures: (datasetId: string, q: CaptureQuery) =>
    request<CapturePage>(
      "GET",
      `/datasets/${enc(datasetId)}/captures${query({ status: q.status, limit: q.limit, offset: q.offset })}`,
    ),
  getCapture: (captureId: string) => request<CaptureRecord>("GET", `/captures/${enc(captureId)}`),
  reviewCapture: (captureId: string, verdict: CaptureVerdict) =>
    request<CaptureRecord>("POST", `/captures/${enc(captureId)}/review`, { verdict }),
  deleteCaptures: (datasetId: string, status: "unreviewed" | "discarded") =>
    request<{ deleted: number }>("POST", `/datasets/${enc(datasetId)}/captures/delete`, { status }),

  negativeBank: () => request<NegativeBank>("GET", "/negatives"),
  uploadNegatives: (files: File[], setId: string, kind: NegativeKind) => {
    const form = new FormData();
    for (const file of files) form.append("files", file, file.name);
    form.append("set_id", setId);
    form.append("kind", kind);
    return request<BankImport>("POST", "/negatives/uploads", undefined, form);
  },
  importNegatives: (path: string, setId: string | null, kind: NegativeKind) =>
    request<BankImport>("POST", "/negatives/imports", { paths: [path], set_id: setId, kind }),
  removeNegativeSet: (setId: string) => request<NegativeSet>("DELETE", `/negatives/${enc(setId)}`),

  train: (datasetId: string, overrides: Record<string, unknown>) =>
    request<JobRecord>("POST", "/train", { dataset_id: datasetId, config_overrides: overrides }),
  listJobs: (datasetId: string) => request<JobRecord[]>("GET", `/jobs${query({ dataset_id: datasetId })}`),
  /** Every queued or running job, of any dataset. */
  activeJobs: () => request<JobRecord[]>("GET", "/jobs?status=queued&status=running"),
  getJob: (jobId: string) => request<JobRecord>("GET", `/jobs/${enc(jobId)}`),
  cancelJob: (jobId: string) => request<JobRecord>("POST", `/jobs/${enc(jobId)}/cancel`),
  blessJob: (jobId: string) => request<JobRecord>("POST", `/jobs/${enc(jobId)}/bless`),
  currentModel: () => request<CurrentModel>("GET", "/models/current"),
  scoreWithCurrentModel: (wav: Blob, filename: string) => {
    const form = new FormData();
    form.append("file", wav, filename);
    return request<ScoreResult>("POST", "/models/current/score", undefined, form);
  },

  deployTarget: () => request<DeployTarget>("GET", "/deploy/target"),
  /** Without a board id, to the default board. */
  startDeployment: (jobId: string, boardId?: string | null) =>
    request<Deployment>("POST", "/deploy", boardId ? { job_id: jobId, board_id: boardId } : { job_id: jobId }),
  getDeployment: (id: string) => request<Deployment>("GET", `/deployments/${enc(id)}`),
  /** Deployments still under way (pending, transferring, applying). */
  activeDeployments: () =>
    request<Deployment[]>("GET", `/deployments?${ACTIVE_DEPLOYMENT_STATUSES.map((s) => `status=${s}`).join("&")}`),

  /** The newest `limit` events of these types, newest first. */
  recentEvents: (types: string[], limit: number) =>
    request<EventRecord[]>(
      "GET",
      `/events?newest=true&limit=${limit}${types.map((t) => `&type=${enc(t)}`).join("")}`,
    ),
  cancelDeployment: (id: string) => request<Deployment>("POST", `/deployments/${enc(id)}/cancel`),

  listBoards: () => request<Board[]>("GET", "/boards"),
  createBoard: (input: BoardInput) => request<Board>("POST", "/boards", input),
  updateBoard: (id: string, changes: Partial<BoardInput>) => request<Board>("PATCH", `/boards/${enc(id)}`, changes),
  removeBoard: (id: string) => request<void>("DELETE", `/boards/${enc(id)}`),
  testBoard: (id: string) => request<BoardCheck>("POST", `/boards/${enc(id)}/test`),
  /** Refused (409) when the board no longer offers the key with this fingerprint. */
  trustHostKey: (id: string, fingerprint: string) =>
    request<Board>("POST", `/boards/${enc(id)}/host-key`, { fingerprint }),
  makeDefaultBoard: (id: string) => request<Board>("POST", `/boards/${enc(id)}/default`),
};

export const urls = {
  clipAudio: (clipId: string) => `/recordings/${enc(clipId)}/audio`,
  longRecordingAudio: (recordingId: string) => `/long-recordings/${enc(recordingId)}/audio`,
  captureAudio: (captureId: string) => `/captures/${enc(captureId)}/audio`,
  artifact: (jobId: string, name: string) => `/jobs/${enc(jobId)}/artifacts/${enc(name)}`,
  bundle: (jobId: string) => `/jobs/${enc(jobId)}/artifacts.zip`,
  boardBundle: (jobId: string) => `/jobs/${enc(jobId)}/deploy-bundle`,
  boardBundleChecksum: (jobId: string) => `/jobs/${enc(jobId)}/deploy-bundle.sha256`,
  jobLogs: (jobId: string) => `/jobs/${enc(jobId)}/logs?follow=true`,
};

export interface UploadHandle {
  promise: Promise<ClipRecord>;
  abort: () => void;
}

/** A new Idempotency-Key: one per file, kept for its retries (crypto.randomUUID needs https). */
export function newUploadKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Upload one audio file with XMLHttpRequest, for per-file progress (fetch has no upload progress).
 * `uploadKey` (from newUploadKey, the same for every try of one file) makes a retry whose first
 * answer was lost return the clip already stored instead of a second one. */
export function uploadRecording(
  datasetId: string,
  file: Blob,
  filename: string,
  metadata: ClipMetadata,
  onProgress: (fraction: number) => void,
  uploadKey: string,
): UploadHandle {
  const xhr = new XMLHttpRequest();
  const promise = new Promise<ClipRecord>((resolve, reject) => {
    const form = new FormData();
    form.append("file", file, filename);
    form.append("metadata", JSON.stringify(metadata));
    xhr.open("POST", `/datasets/${enc(datasetId)}/recordings`);
    xhr.withCredentials = true;
    for (const [name, value] of Object.entries(CSRF_HEADERS)) xhr.setRequestHeader(name, value);
    xhr.setRequestHeader("Idempotency-Key", uploadKey);
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable && event.total > 0) onProgress(event.loaded / event.total);
    };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve(JSON.parse(xhr.responseText) as ClipRecord);
      } else {
        if (xhr.status === 401) onUnauthorized?.();
        reject(new ApiError(xhr.status, detailFromBody(xhr.status, xhr.responseText)));
      }
    };
    xhr.onerror = () => reject(new ApiError(0, detailFromBody(0, "")));
    xhr.onabort = () => reject(new ApiError(0, "Upload cancelled."));
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}

/** Server timestamps are UTC; tolerate ones without a zone suffix. */
export function parseTime(value: string | null | undefined): Date | null {
  if (!value) return null;
  const hasZone = /(Z|[+-]\d\d:?\d\d)$/.test(value);
  const date = new Date(hasZone ? value : `${value}Z`);
  return Number.isNaN(date.getTime()) ? null : date;
}
