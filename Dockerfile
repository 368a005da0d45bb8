# syntax=docker/dockerfile:1
#
# extauthz: a static binary on distroless, run as uid 65532.
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t extauthz .
#   docker run --rm -v $PWD/examples/quickstart:/etc/extauthz/policy:ro -p 9001:9001 -p 9090:9090 extauthz
#
# The build stage runs on the build machine's platform and cross-compiles
# for the target (docker buildx build --platform linux/amd64,linux/arm64).

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
# Dependencies first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w -X main.buildVersion=${VERSION}" \
      -o /out/extauthz ./cmd/extauthz

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/extauthz /extauthz
USER 65532:65532
# gRPC (ext_authz, grpc.health.v1) and HTTP (/healthz, /readyz, /metrics).
EXPOSE 9001 9090
ENTRYPOINT ["/extauthz"]
CMD ["serve", "--policy", "/etc/extauthz/policy"]
