"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from waketrain import __version__
from waketrain.api.body_auth import CredentialsBeforeBody
from waketrain.api.errors import install_error_handlers
from waketrain.api.headers import SecurityHeaders
from waketrain.api.limits import BodyLimits
from waketrain.api.metrics import RequestObserver, ServiceMetrics
from waketrain.api.password_checks import PasswordChecks
from waketrain.api.rate_limit import RateLimiter
from waketrain.api.routers import (
    auth,
    boards,
    captures,
    datasets,
    deploy,
    docs,
    jobs,
    metrics,
    negatives,
    recordings,
    status,
    ui,
)
from waketrain.jobs.bank_imports import BankImports
from waketrain.jobs.supervisor import WorkerSupervisor
from waketrain.settings import Settings
from waketrain.store.accounts import ADMIN_USERNAME
from waketrain.store.analysis import QualityAnalyzer
from waketrain.store.startup import start_registry

log = structlog.get_logger(__name__)
# Room for the multipart envelope and the metadata field around the largest accepted file.
MULTIPART_OVERHEAD_BYTES = 256 * 1024


def create_app(
    settings: Settings | None = None, worker_command: Sequence[str] | None = None
) -> FastAPI:
    """The app; with `worker_command` it also runs that worker beside it, supervised."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        started = start_registry(settings)
        if started.generated_admin_password:
            # Shown once, on the operator's console; never written to the logs.
            print(
                f"\n  waketrain admin login: {ADMIN_USERNAME} / "
                f"{started.generated_admin_password}\n"
                "  (generated now; set WAKETRAIN_ADMIN_PASSWORD to choose it)\n",
                flush=True,
            )
        app.state.registry = started.registry
        app.state.analyzer = QualityAnalyzer(started.registry)
        app.state.analyzer.start()
        app.state.bank_imports = BankImports(started.registry)
        app.state.bank_imports.start()
        # Started once the database is migrated, so the worker never races the API to it.
        supervisor = WorkerSupervisor(started.registry, worker_command) if worker_command else None
        if supervisor is not None:
            supervisor.start()
        log.info("service started", data_dir=str(started.registry.layout.root))
        try:
            yield
        finally:
            if supervisor is not None:
                supervisor.stop()
            app.state.analyzer.stop()
            app.state.bank_imports.stop()
            started.registry.close()

    app = FastAPI(
        title="waketrain",
        version=__version__,
        description="Self-hosted wake word training service.",
        lifespan=lifespan,
        # Served by the docs router instead: behind login, and without a CDN.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    install_error_handlers(app)
    app.state.upload_limiter = RateLimiter("uploads", settings.uploads_per_minute)
    app.state.login_limiter = RateLimiter(
        "failed logins", settings.login_failures_per_minute, settings.login_window_seconds
    )
    app.state.password_checks = PasswordChecks()
    app.add_middleware(
        BodyLimits,
        max_body_bytes=settings.max_upload_bytes + MULTIPART_OVERHEAD_BYTES,
        timeout_seconds=settings.body_timeout_seconds,
    )
    app.add_middleware(CredentialsBeforeBody, open_paths=auth.PASSWORD_PATHS)
    app.state.metrics = ServiceMetrics(lambda: getattr(app.state, "registry", None))
    # Outside those two, so it also sees (and times) what they refuse.
    app.add_middleware(RequestObserver, metrics=app.state.metrics)
    # Every response, refusals included, leaves with the security headers.
    app.add_middleware(SecurityHeaders)
    if settings.trusted_proxies:
        # Outermost: everything inside sees the client the proxy names as `request.client`.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))
    routers = (
        status, auth, datasets, recordings, captures, jobs, negatives, deploy, boards, metrics,
        docs, ui,
    )  # fmt: skip
    for module in routers:
        app.include_router(module.router)
    ui.mount_assets(app)
    return app
