"""The web UI: server-rendered pages over the store the REST API serves.

Pages are Jinja2 templates rendered by FastAPI routes that call the same store and API
functions as the CLI and the REST routes; the only JavaScript is small hand-written files in
``static/`` plus plotly.js, served from the installed ``plotly`` package (no CDN, works offline).
``mltrail server`` serves the UI beside the API, ``mltrail ui`` serves the embedded store.
"""
