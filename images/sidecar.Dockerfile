# ecsmesh sidecar: Envoy (contrib build, for the Go filter) + the ecsmesh-dp
# agent + the filter in both forms. Build from the repository root after
# `make build`:
#   docker build -f images/sidecar.Dockerfile -t ecsmesh/sidecar:dev .
#
# The Envoy version must match the Go filter API the .so is built against
# (go.mod: github.com/envoyproxy/envoy v1.39.0 -> envoy-contrib v1.39.0;
# api/envoyversion names it and its test checks this file and go.mod).
FROM envoyproxy/envoy-contrib:v1.39.0

COPY build/ecsmesh-dp /usr/local/bin/ecsmesh-dp
COPY build/ecsmesh-filter.wasm /etc/ecsmesh/ecsmesh-filter.wasm
COPY build/ecsmesh-filter.so /etc/ecsmesh/ecsmesh-filter.so

# The agent writes the bootstrap and the token file here.
ENV KUMA_DATAPLANE_RUNTIME_CONFIG_DIR=/tmp/ecsmesh-dp \
    KUMA_DATAPLANE_RUNTIME_BINARY_PATH=/usr/local/bin/envoy

# The envoy user (uid 101) of the base image; never root.
USER 101:101

# Container health check: ecsmesh-dp ready (GET 127.0.0.1:9902/ready).
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 CMD ["/usr/local/bin/ecsmesh-dp", "ready"]

ENTRYPOINT ["/usr/local/bin/ecsmesh-dp", "run"]
