# syntax=docker/dockerfile:1
#
# hms-act: built on the official Swift image, run on debian:bookworm-slim.
#
#   docker build -t hms-act .
#   docker run --rm -p 8100:8100 -e AMQP_URL=amqp://… -e POSTGRES_URL=postgresql://… \
#       -e HMS_API_TOKENS=ops:…:read+operate+admin -e HMS_AUDIT_SIGNING_KEY=… hms-act
#   docker run --rm -e POSTGRES_URL=postgresql://… hms-act migrate
#
# The image runs `hms-act serve` by default (ENTRYPOINT is the binary, CMD its subcommand, so
# `… hms-act migrate` runs the migrations instead). Settings: docs/configuration.md. Kubernetes: k8s/.

# ================================
# Build image
# ================================
FROM swift:6.3-bookworm AS build

# The C client headers behind the system-library targets CLibPQ and CRabbitMQ, found through pkg-config, and
# zlib for AsyncHTTPClient (the `call:` steps' HTTP client; SwiftNIO's HTTP compression links it).
# (The CLI's API client speaks HTTP over a plain socket, not URLSession, so libcurl is not needed.)
RUN export DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true \
    && apt-get -q update \
    && apt-get -q install -y --no-install-recommends pkg-config libpq-dev librabbitmq-dev zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /build

# Resolve the dependencies first: this layer is reused as long as Package.swift does not change.
# (Package.resolved is not in git and .dockerignore keeps a local one out: the versions come from Package.swift.)
COPY ./Package.swift ./
RUN swift package resolve

COPY . .

# Release build with the Swift runtime and Foundation linked in statically: the runtime image needs no
# toolchain, only the C libraries (libpq, librabbitmq) and glibc/libstdc++. Only this product is built: the
# benchmark is the separate product hms-act-bench (scripts/bench), which the image does not ship.
RUN swift build -c release --static-swift-stdlib --product hms-act

# Stage what the runtime image gets: the binary, the crash backtracer, and the SwiftPM resource bundles.
# Bundle.module looks for `<package>_<target>.resources` next to the executable: hms-act_ActStore.resources
# holds the SQL migrations and hms-act_ActHTTP.resources the OpenAPI document and the console's templates.
# Without them the binary stops at the first use (migrations at start) or /ui answers 500. Nothing in /app is writable by the service's user.
WORKDIR /staging
RUN bin="$(swift build --package-path /build -c release --show-bin-path)" \
    && cp "$bin/hms-act" ./ \
    && cp /usr/libexec/swift/linux/swift-backtrace-static ./ \
    && cp -R "$bin/hms-act_ActStore.resources" "$bin/hms-act_ActHTTP.resources" ./ \
    && test -n "$(find hms-act_ActStore.resources/Migrations -name '*.sql')" \
    && test -f hms-act_ActHTTP.resources/Resources/openapi.yaml \
    && test -f hms-act_ActHTTP.resources/Resources/console/layout.mustache \
    && cp -R /build/config /build/playbooks /build/agents ./ \
    && chmod -R a-w ./

# ================================
# Run image
# ================================
FROM debian:bookworm-slim

# Only the shared libraries the binary needs (scripts/check-deploy checks its NEEDED entries): librabbitmq,
# libpq and zlib. Plus CA certificates for amqps://, TLS to PostgreSQL and https:// calls, and time zones.
RUN export DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true \
    && apt-get -q update \
    && apt-get -q install -y --no-install-recommends librabbitmq4 libpq5 zlib1g ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/*

# A numeric user and group: Kubernetes can only prove runAsNonRoot for a numeric USER (k8s/ sets the same ids).
RUN groupadd --system --gid 10001 hms-act \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin hms-act

# The files belong to root and are read-only to the service, which runs with a read-only root filesystem.
# config/hms-act.yaml, playbooks/ and agents/ are found relative to /app (paths.* in the configuration).
WORKDIR /app
COPY --from=build /staging /app

USER 10001:10001

# Crash reports: symbolicated backtraces of every thread on standard error, never an interactive prompt.
ENV SWIFT_BACKTRACE=enable=yes,sanitize=yes,threads=all,images=all,interactive=no,swift-backtrace=/app/swift-backtrace-static

# The HTTP API, /metrics and the probes (http.port, HMS_HTTP_PORT).
EXPOSE 8100

ENTRYPOINT ["/app/hms-act"]
CMD ["serve"]
