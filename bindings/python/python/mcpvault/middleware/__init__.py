"""Framework middleware for mcpvault tokens (FastAPI: :mod:`mcpvault.middleware.fastapi`)."""
