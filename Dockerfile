# syntax=docker/dockerfile:1
# One image for every feedline service: compose.yaml picks the stages with
# --stages. Build: docker build -t feedline .

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
ENV CGO_ENABLED=0
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/feedline ./cmd/feedline && \
    go build -trimpath -ldflags="-s -w" -o /out/probe ./deploy/probe && \
    mkdir -p /out/data

# static-debian12 has CA certificates and time zones but no shell: the
# healthcheck is the probe binary, not curl.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/feedline /out/probe /usr/local/bin/
# A fresh volume copies this directory's owner, so the non-root user can write it.
COPY --from=build --chown=65532:65532 /out/data /data
ENV FEEDLINE_DATA=/data FEEDLINE_HTTP=0.0.0.0:8080
VOLUME /data
EXPOSE 8080
USER 65532:65532
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=6 \
    CMD ["/usr/local/bin/probe", "http://127.0.0.1:8080/readyz"]
ENTRYPOINT ["/usr/local/bin/feedline"]
CMD ["serve"]
