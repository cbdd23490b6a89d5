/// Thin Swift layer over libpq.
