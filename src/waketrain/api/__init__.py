"""The HTTP door: FastAPI app, routers, auth and error translation."""
