// The one seam between the daemon and the Kubernetes API server: a request and its answer.
// Everything that talks to the API (watches aside) goes through it, so unit tests replace it
// with a fake and the real implementation owns configuration, authentication and retries.

export type KubeMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface KubeRequest {
  method: KubeMethod;
  /** Absolute API path, e.g. `/api/v1/namespaces/default/pods/p1` or `/apis/ovnode.io/v1/ipclaims`. */
  path: string;
  query?: Record<string, string>;
  /** Serialised as JSON. */
  body?: unknown;
  /** For PATCH: `application/merge-patch+json` (default), `application/strategic-merge-patch+json` or `application/json-patch+json`. */
  contentType?: string;
  signal?: AbortSignal;
}

export interface KubeResponse<T = unknown> {
  /** HTTP status; the caller decides what a 404 or 409 means for it. */
  status: number;
  /** Parsed JSON body (a `Status` object for most errors). */
  body: T;
}

export interface KubeApi {
  request<T = unknown>(req: KubeRequest): Promise<KubeResponse<T>>;
}

/** The parts of a Kubernetes `Status` error body callers look at. */
export interface KubeStatus {
  kind?: 'Status';
  status?: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  code?: number;
}
