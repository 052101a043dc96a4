// Hash routing: the API owns real paths like /datasets/... on the same origin.
import { useEffect, useState } from "react";

export interface Route {
  path: string;
  params: URLSearchParams;
}

function currentRoute(): Route {
  const hash = window.location.hash.replace(/^#/, "") || "/";
  const [path, search = ""] = hash.split("?", 2);
  return { path: path || "/", params: new URLSearchParams(search) };
}

export function useHashRoute(): Route {
  const [route, setRoute] = useState(currentRoute);
  useEffect(() => {
    const onChange = () => setRoute(currentRoute());
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return route;
}

export function href(path: string, params: Record<string, string | null | undefined> = {}): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value) search.set(key, value);
  const text = search.toString();
  return `#${path}${text ? `?${text}` : ""}`;
}

export function datasetHref(
  datasetId: string,
  params: Record<string, string | null | undefined> = {},
): string {
  return href(`/datasets/${encodeURIComponent(datasetId)}`, params);
}

/** Change query parameters of the current route; `replace` avoids a history entry. */
export function updateParams(changes: Record<string, string | null>, replace = true): void {
  const { path, params } = currentRoute();
  for (const [key, value] of Object.entries(changes)) {
    if (value === null) params.delete(key);
    else params.set(key, value);
  }
  const text = params.toString();
  const target = `#${path}${text ? `?${text}` : ""}`;
  if (target === window.location.hash) return;
  if (replace) {
    window.history.replaceState(null, "", target);
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  } else {
    window.location.hash = target;
  }
}
