// The top of every page: the header, the work under way and the toasts, stuck to the top of the
// window but in the page's flow, so none of them lies over a control. Its height is published as
// --app-top-height, so that a modal opens below it and leaves its toasts in view.
import { useLayoutEffect, useRef, type ReactNode } from "react";

export function AppTop({ children }: { children: ReactNode }) {
  const root = useRef<HTMLDivElement>(null);
  useLayoutEffect(() => {
    const element = root.current;
    if (!element) return undefined;
    const style = document.documentElement.style;
    const publish = () => style.setProperty("--app-top-height", `${element.offsetHeight}px`);
    publish();
    const observer = new ResizeObserver(publish);
    observer.observe(element);
    return () => {
      observer.disconnect();
      style.removeProperty("--app-top-height");
    };
  }, []);
  return (
    <div className="app-top" ref={root} data-testid="app-top">
      {children}
    </div>
  );
}
