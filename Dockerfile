# For those who build images with Docker; `make image` builds the same image
# without it (the controller binary alone, run as nonroot), which is what
# the tests check.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=v0.0.0-dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/tugboatdev/tugboat/version.version=${VERSION}" -o /tugboat ./cmd/tugboat

FROM gcr.io/distroless/static:nonroot
COPY --from=build /tugboat /tugboat
USER 65532:65532
ENTRYPOINT ["/tugboat"]
