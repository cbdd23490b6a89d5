/// HTTP API.
