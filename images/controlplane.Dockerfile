# syntax=docker/dockerfile:1
# ecsmesh control plane: a static ecsmesh-cp on distroless. Build from the
# repository root:
#   docker build -f images/controlplane.Dockerfile -t ecsmesh/controlplane:dev .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ecsmesh-cp ./controlplane/cmd/ecsmesh-cp

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ecsmesh-cp /usr/local/bin/ecsmesh-cp
# The RDS CA bundle (every region): the templates verify PostgreSQL with it
# (KUMA_STORE_POSTGRES_TLS_MODE=verifyFull, KUMA_STORE_POSTGRES_TLS_CA_PATH).
ADD --chmod=0444 https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem /etc/ecsmesh/rds-global-bundle.pem
ENV ECSMESH_DATA_DIR=/home/nonroot/ecsmesh-data
# Sidecar API (HTTPS), ADS (gRPC+TLS), admin API.
EXPOSE 5678 5679 5681
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/ecsmesh-cp", "run"]
