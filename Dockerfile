# syntax=docker/dockerfile:1
# One image for every role: `secretmount driver` (DaemonSet), `secretmount sync`
# (Deployment), `secretmount provider` and `secretmount render`.

FROM --platform=$BUILDPLATFORM golang:1.26-trixie AS build
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/root/go/pkg/mod go mod download
COPY . .
# A static binary: no libc in the run stage is needed for our own code.
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath \
      -ldflags "-s -w -X github.com/secretmount/secretmount/cmd/secretmount/app.version=${VERSION}" \
      -o /out/secretmount ./cmd/secretmount

# The driver mounts tmpfs through k8s.io/mount-utils, which runs mount(8) and umount(8),
# so the run stage needs util-linux; a slim Debian is the smallest base that has it
# (a distroless static image would not). Nothing else is installed.
FROM debian:trixie-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends mount ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/secretmount /usr/local/bin/secretmount
# Non-root by default: the sync controller and provider run as this user. Only the
# driver's container overrides it (runAsUser: 0 in the chart), because mounting
# needs root.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/secretmount"]
