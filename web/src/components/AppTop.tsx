// The top of every page: the header, then the work under way and the toasts, in the page's flow
// so that none of them lies over a control. All of it sticks to the top of the window; on a phone,
// the header only (styles.css). Their heights are published for --app-top-height, the part that
// sticks, so that a modal opens below it and leaves it usable.
import { useLayoutEffect, useRef, type ReactNode } from "react";

export function AppTop({ header, children }: { header?: ReactNode; children: ReactNode }) {
  const head = useRef<HTMLDivElement>(null);
  const status = useRef<HTMLDivElement>(null);
  useLayoutEffect(() => {
    const style = document.documentElement.style;
    const boxes = [
      ["--app-header-height", head.current],
      ["--app-status-height", status.current],
    ] as const;
    const publish = () => {
      for (const [name, element] of boxes) style.setProperty(name, `${element?.offsetHeight ?? 0}px`);
    };
    publish();
    const observer = new ResizeObserver(publish);
    for (const [, element] of boxes) if (element) observer.observe(element);
    return () => {
      observer.disconnect();
      for (const [name] of boxes) style.removeProperty(name);
    };
  }, []);
  // Siblings, not one box: the header sticks on a phone while the rest scrolls away.
  return (
    <>
      {header && (
        <div className="app-head" ref={head}>
          {header}
        </div>
      )}
      <div className="app-top" ref={status} data-testid="app-top">
        {children}
      </div>
    </>
  );
}
