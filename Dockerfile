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

# The driver mounts and unmounts its tmpfs with mount(2) and umount2(2), so no mount
# program is needed: k8s.io/mount-utils still runs `umount` once at start to probe its
# "not mounted" message and carries on when it is missing. The run stage only adds the
# CA bundle the AWS and Vault backends verify TLS with; nothing else is installed.
FROM debian:trixie-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/secretmount /usr/local/bin/secretmount
# Non-root by default: the sync controller and provider run as this user. Only the
# driver's container overrides it (runAsUser: 0 in the chart), because mounting
# needs root.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/secretmount"]
